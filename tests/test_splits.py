"""Train/validation split: no leaks, stratified, down-sampled reproducibly, exclusions."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow.parquet as pq
import pytest

from facesleuth.io import FACES_SCHEMA, SPLITS_SCHEMA, write_parquet
from facesleuth.train.splits import SplitError, make_splits, write_split

SETTINGS = {"validation_fraction": 0.25, "group_by": "original", "fake_downsample": 2, "seed": 42, "exclude": None}


def dfdc_like(parts=3, originals=4, fakes_per_original=2, faces_per_video=6, dataset="dfdc_train"):
    """Manifest, status and faces of a DFDC-style train set: parts of originals with their fakes."""
    manifest, faces = [], []
    for p in range(parts):
        group = f"dfdc_train_part_{p}"
        for o in range(originals):
            real = f"{group}/real{o}"
            family = [(real, 0, None)] + [(f"{group}/fake{o}_{k}", 1, real) for k in range(fakes_per_original)]
            for video_id, label, original in family:
                manifest.append({"dataset": dataset, "video_id": video_id, "label": label, "group": group, "original": original})
                for frame in range(faces_per_video):
                    faces.append(
                        {"dataset": dataset, "video_id": video_id, "face_id": f"{video_id}/{frame * 10}/0", "label": label}
                    )
    manifest = pd.DataFrame(manifest)
    status = manifest[["dataset", "video_id", "label"]].assign(status="ok")
    return pd.DataFrame(faces), status, manifest


def sides_of(split, key):
    return split.groupby(key)["split"].nunique()


@pytest.mark.parametrize("group_by", ["original", "video", "group"])
def test_no_unit_straddles_the_split(group_by):
    faces, status, manifest = dfdc_like()
    split, _ = make_splits(faces, status, {**SETTINGS, "group_by": group_by}, manifest)
    assert (sides_of(split, "video_id") == 1).all()
    if group_by in ("original", "group"):
        family = split["original"].fillna(split["video_id"])
        assert (split.assign(family=family).groupby("family")["split"].nunique() == 1).all()
    if group_by == "group":
        assert (sides_of(split, "group") == 1).all()
    for name in ("train", "val"):
        assert set(split.loc[split["split"] == name, "label"]) == {0, 1}


def test_labels_propagate_from_video_and_columns_follow_schema():
    faces, status, manifest = dfdc_like(parts=1)
    faces.loc[faces["video_id"].str.contains("fake0_0"), "label"] = 0  # a face carrying a wrong label
    split, summary = make_splits(faces, status, {**SETTINGS, "fake_downsample": 1}, manifest)
    assert list(split.columns) == [c for c in SPLITS_SCHEMA.names if c not in ("landmarks", "jpeg")]
    assert (split.loc[split["video_id"].str.contains("fake"), "label"] == 1).all()
    assert (split.loc[split["video_id"].str.contains("real"), "label"] == 0).all()
    assert split.loc[split["video_id"] == "dfdc_train_part_0/fake1_0", "original"].iloc[0] == "dfdc_train_part_0/real1"
    # the validation share is of units: 4 families -> 1 held out
    assert split.loc[split["split"] == "val", "video_id"].nunique() == 3
    assert summary.set_index(["split", "class"]).loc[("val", "fake"), "videos"] == 2


def test_fake_downsampling_factor_and_seed():
    faces, status, manifest = dfdc_like(parts=2, originals=5, fakes_per_original=4)
    full, _ = make_splits(faces, status, {**SETTINGS, "fake_downsample": 1}, manifest)
    split, summary = make_splits(faces, status, {**SETTINGS, "fake_downsample": 5}, manifest)
    for name in ("train", "val"):
        before = full[full["split"] == name]
        after = split[split["split"] == name]
        n_fake = int((before["label"] == 1).sum())
        assert (after["label"] == 1).sum() == math.ceil(n_fake / 5)
        assert (after["label"] == 0).sum() == (before["label"] == 0).sum()  # reals untouched
        row = summary.set_index(["split", "class"]).loc[(name, "fake")]
        assert row["faces_before_downsampling"] == n_fake and row["faces"] == math.ceil(n_fake / 5)
    # the same faces in another row order and the same seed: the same choice
    again, _ = make_splits(faces.sample(frac=1, random_state=1), status, {**SETTINGS, "fake_downsample": 5}, manifest)
    assert set(again["face_id"]) == set(split["face_id"])
    other, _ = make_splits(faces, status, {**SETTINGS, "fake_downsample": 5, "seed": 7}, manifest)
    assert set(other.loc[other["label"] == 1, "face_id"]) != set(split.loc[split["label"] == 1, "face_id"])


def test_exclusion_list(tmp_path):
    faces, status, manifest = dfdc_like(parts=1)
    dropped = ["dfdc_train_part_0/real0/0/0", "dfdc_train_part_0/fake1_1/20/0"]
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("# non-faces cleaned by hand\n" + "\n".join(dropped) + "\n\nno/such/face\n")
    with pytest.warns(UserWarning, match="1 of 3 face ids are not among the faces"):
        split, _ = make_splits(faces, status, {**SETTINGS, "fake_downsample": 1, "exclude": str(exclude)}, manifest)
    assert not set(dropped) & set(split["face_id"])
    assert len(split) == len(faces) - 2
    with pytest.raises(SplitError, match="not found"):
        make_splits(faces, status, {**SETTINGS, "exclude": str(tmp_path / "missing.txt")}, manifest)


def test_missing_class_is_a_clear_error():
    faces, status, manifest = dfdc_like(parts=1, fakes_per_original=1)
    reals_only = faces[~faces["video_id"].str.contains("fake")]
    with pytest.raises(SplitError, match=r"no fake faces.*dfdc_train: 4 real / 4 fake videos, 24 real / 0 fake faces"):
        make_splits(reals_only, status, SETTINGS, manifest)


def test_both_classes_on_both_sides_without_families():
    # originals unknown (FF++-like csv): real-only and fake-only units, one of each class would
    # not split, but two of each must put one of each on each side
    faces, status, manifest = dfdc_like(parts=1, originals=2, fakes_per_original=1)
    manifest["original"] = None
    split, _ = make_splits(faces, status, {**SETTINGS, "validation_fraction": 0.1}, manifest)
    for name in ("train", "val"):
        assert set(split.loc[split["split"] == name, "label"]) == {0, 1}


def test_grouping_needs_manifest():
    faces, status, _ = dfdc_like(parts=1)
    with pytest.raises(SplitError, match="needs the manifests"):
        make_splits(faces, status, SETTINGS)
    split, _ = make_splits(faces, status, {**SETTINGS, "group_by": "video"})
    assert (sides_of(split, "video_id") == 1).all()


def test_write_split_carries_jpeg_bytes(tmp_path, samples):
    faces, status, manifest = dfdc_like(parts=1, originals=2, fakes_per_original=1, faces_per_video=3)
    jpeg = (samples / "images" / "multiface.jpg").read_bytes()[:4096]  # bytes are carried, not decoded
    frame_points = [30.0, 40.0, 50.0, 40.0, 40.0, 50.0, 32.0, 60.0, 48.0, 60.0]  # frame pixels
    full = faces.assign(
        frame=0, target_frame=0, face=0, track=-1, x0=10.0, y0=20.0, x1=70.0, y1=80.0, prob=0.99, box_source="self",
        landmarks=[frame_points] * len(faces), jpeg=[jpeg + f.encode() for f in faces["face_id"]],
    )
    paths = []
    for i, chunk in enumerate((full.iloc[::2], full.iloc[1::2])):
        paths.append(write_parquet(chunk, tmp_path / f"{i:03d}.parquet", FACES_SCHEMA))
    split, _ = make_splits(faces, status, {**SETTINGS, "fake_downsample": 1}, manifest)
    out = tmp_path / "split.parquet"
    assert write_split(split, paths, out) == len(split)
    table = pq.read_table(out)
    assert table.schema.equals(SPLITS_SCHEMA)
    written = table.to_pandas().set_index("face_id")
    assert set(written.index) == set(split["face_id"])
    some = split["face_id"].iloc[0]
    assert written.loc[some, "jpeg"] == jpeg + some.encode()
    # landmarks arrive in the crop's pixels: minus the crop's corner (10, 20)
    assert list(written.loc[some, "landmarks"]) == [20.0, 20.0, 40.0, 20.0, 30.0, 30.0, 22.0, 40.0, 38.0, 40.0]
    assert not list(tmp_path.glob(".*tmp"))
