"""Manifest adapters: the real DFDC and FF++ sample layouts, small fake layouts for the others,
every error path, the Parquet round trip and the Snakemake rule."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from facesleuth.io import MANIFEST_SCHEMA
from facesleuth.manifests import ManifestError, build_manifest, parse_label, source_files, write_manifest


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def by_id(df: pd.DataFrame) -> dict[str, dict]:
    return {row["video_id"]: row for row in df.to_dict("records")}


def check_contract(df: pd.DataFrame, name: str) -> None:
    """What every manifest promises: schema columns, unique sorted ids, ok/missing status."""
    assert list(df.columns) == MANIFEST_SCHEMA.names
    assert df["video_id"].is_unique
    assert df["video_id"].tolist() == sorted(df["video_id"])
    assert set(df["dataset"]) == {name}
    assert set(df["status"]) <= {"ok", "missing"}
    for row in df.to_dict("records"):
        assert Path(row["path"]).is_file() == (row["status"] == "ok"), row
        assert Path(row["path"]).with_suffix("").as_posix().endswith(row["video_id"])


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "value, expected",
    [("FAKE", 1), ("REAL", 0), ("fake", 1), ("real", 0), ("Fake", 1), (" REAL ", 0), (1, 1), (0, 0), ("1", 1), ("0", 0), (1.0, 1)],
)
def test_parse_label_accepts_the_spellings(value, expected):
    assert parse_label(value) == expected


@pytest.mark.parametrize("value", ["2", "-1", "", "yes", None, True, 0.5, 2, "FAKEE"])
def test_parse_label_rejects_anything_else(value):
    with pytest.raises(ValueError, match="unknown label"):
        parse_label(value)


# ---------------------------------------------------------------- DFDC train: the real partial download


def test_dfdc_train_samples(samples, caplog):
    caplog.set_level(logging.INFO, logger="facesleuth.manifests")
    root = samples / "dfdc"
    df = build_manifest("dfdc", {"format": "dfdc_train", "root": str(root), "flow": "train"})
    check_contract(df, "dfdc")

    counts = df.groupby("group")["status"].value_counts().unstack(fill_value=0)
    assert counts.loc["dfdc_train_part_0"].to_dict() == {"missing": 1, "ok": 1}
    assert counts.loc["dfdc_train_part_1"].to_dict() == {"missing": 2, "ok": 0}
    assert counts.loc["dfdc_train_part_10"].to_dict() == {"missing": 0, "ok": 2}
    assert len(df) == 6 and (df["label"] == 1).all() and set(df["split"]) == {"train"}

    rows = by_id(df)
    on_disk = rows["dfdc_train_part_0/brtujopkby"]
    assert on_disk["status"] == "ok" and on_disk["message"] == ""
    assert on_disk["path"] == str(root / "dfdc_train_part_0" / "brtujopkby.mp4")
    assert on_disk["original"] == "dfdc_train_part_0/gnmmhlbzge"
    assert rows["dfdc_train_part_10/widuwuoiur"]["original"] == "dfdc_train_part_10/ybqmttnept"
    assert rows["dfdc_train_part_10/yhffcuhhjy"]["original"] == "dfdc_train_part_10/wdpsifpppf"

    absent = rows["dfdc_train_part_1/vtfpbtmgfh"]
    assert absent["status"] == "missing"
    assert str(root / "dfdc_train_part_1" / "metadata.json") in absent["message"]
    assert absent["original"] == "dfdc_train_part_1/pdufsewrec"
    assert "manifest dfdc: 6 videos, 6 fakes, 0 reals, 3 missing" in caplog.text


def dfdc_part(root: Path, part: int, entries: dict, on_disk: list[str]) -> Path:
    folder = root / f"dfdc_train_part_{part}"
    touch(folder / "metadata.json", json.dumps(entries))
    for name in on_disk:
        touch(folder / name)
    return folder


def test_dfdc_train_resolves_originals_across_parts_and_warns(tmp_path, caplog):
    root = tmp_path / "dfdc"
    dfdc_part(
        root,
        0,
        {
            "a.mp4": {"label": "FAKE", "split": "train", "original": "r1.mp4"},  # r1 is listed in part 2 only
            "b.mp4": {"label": "FAKE", "split": "train", "original": "r0.mp4"},
            "r0.mp4": {"label": "REAL", "split": "train", "original": None},
            "c.mp4": {"label": "FAKE", "split": "train", "original": "gone.mp4"},  # listed nowhere
        },
        ["a.mp4", "b.mp4", "r0.mp4", "c.mp4", "stray.mp4"],
    )
    dfdc_part(root, 2, {"r1.mp4": {"label": "REAL", "split": "train"}}, ["r1.mp4"])
    touch(root / "dfdc_train_part_3" / "nolabels.mp4")  # a part without metadata.json
    caplog.set_level(logging.INFO, logger="facesleuth.manifests")
    df = build_manifest("t", {"format": "dfdc_train", "root": str(root), "flow": "train"})
    check_contract(df, "t")
    rows = by_id(df)
    assert rows["dfdc_train_part_0/a"]["original"] == "dfdc_train_part_2/r1"
    assert rows["dfdc_train_part_0/b"]["original"] == "dfdc_train_part_0/r0"
    assert rows["dfdc_train_part_0/c"]["original"] == "dfdc_train_part_0/gone"
    assert pd.isna(rows["dfdc_train_part_0/r0"]["original"]) and rows["dfdc_train_part_0/r0"]["label"] == 0
    assert "dfdc_train_part_0/stray" not in rows and "dfdc_train_part_3/nolabels" not in rows
    assert "1 video(s) on disk are not listed" in caplog.text and "stray.mp4" in caplog.text
    assert "dfdc_train_part_3 has no metadata.json" in caplog.text
    assert "manifest t: 5 videos, 3 fakes, 2 reals, 0 missing" in caplog.text


def test_dfdc_train_duplicated_json_key_keeps_the_first(tmp_path, caplog):
    folder = tmp_path / "dfdc_train_part_0"
    touch(
        folder / "metadata.json",
        '{"a.mp4": {"label": "FAKE", "original": "r.mp4"}, "a.mp4": {"label": "REAL"}}',
    )
    df = build_manifest("t", {"format": "dfdc_train", "root": str(tmp_path), "flow": "train"})
    assert df["label"].tolist() == [1]
    assert "1 duplicated entry, kept the first" in caplog.text and "a.mp4" in caplog.text


# ---------------------------------------------------------------- FaceForensics++


def test_ffpp_samples(samples):
    root = samples / "ffpp"
    df = build_manifest("ffpp", {"format": "ffpp", "root": str(root), "flow": "test"})
    check_contract(df, "ffpp")
    rows = by_id(df)
    fakes = {vid: (r["group"], r["original"]) for vid, r in rows.items() if r["label"] == 1}
    assert fakes == {
        "manipulated_sequences/Deepfakes/c23/videos/519_515": ("Deepfakes", "original_sequences/youtube/c23/videos/519"),
        "manipulated_sequences/FaceSwap/c23/videos/634_660": ("FaceSwap", "original_sequences/youtube/c23/videos/634"),
        "manipulated_sequences/NeuralTextures/c23/videos/004_982": ("NeuralTextures", "original_sequences/youtube/c23/videos/004"),
    }
    reals = df[df["label"] == 0]
    assert sorted(reals["video_id"].str.rsplit("/", n=1).str[-1]) == ["004", "519", "634"]
    assert set(reals["group"]) == {"youtube"} and reals["original"].isna().all()
    # every fake's original is itself a row of the manifest
    assert set(df.loc[df["label"] == 1, "original"]) <= set(df["video_id"])
    assert (df["status"] == "ok").all()


def test_ffpp_methods_restrict_and_wrong_compression_hints(samples):
    root = str(samples / "ffpp")
    df = build_manifest("ffpp", {"format": "ffpp", "root": root, "flow": "test", "methods": ["Deepfakes"]})
    assert sorted(df["group"]) == ["Deepfakes", "youtube", "youtube", "youtube"]
    with pytest.raises(ManifestError, match=r"compressions found: c23.*datasets\.ffpp\.root, \.compression"):
        build_manifest("ffpp", {"format": "ffpp", "root": root, "flow": "test", "compression": "c40"})


def test_ffpp_deepfakedetection_layout(tmp_path):
    touch(tmp_path / "original_sequences/actors/c23/videos/01__walk_down_hall_angry.mp4")
    touch(tmp_path / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walk_down_hall_angry__YVGY8LOK.mp4")
    touch(tmp_path / "manipulated_sequences/Face2Face/c23/videos/oddname.mp4")
    df = build_manifest("f", {"format": "ffpp", "root": str(tmp_path), "flow": "test"})
    check_contract(df, "f")
    rows = by_id(df)
    fake = rows["manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walk_down_hall_angry__YVGY8LOK"]
    assert fake["original"] == "original_sequences/actors/c23/videos/01__walk_down_hall_angry"
    assert fake["group"] == "DeepFakeDetection" and fake["label"] == 1
    assert rows["original_sequences/actors/c23/videos/01__walk_down_hall_angry"]["group"] == "actors"
    assert pd.isna(rows["manipulated_sequences/Face2Face/c23/videos/oddname"]["original"])
    without_dfd = build_manifest("f", {"format": "ffpp", "root": str(tmp_path), "flow": "test", "methods": ["Face2Face"]})
    assert without_dfd["video_id"].tolist() == ["manipulated_sequences/Face2Face/c23/videos/oddname"]


# ---------------------------------------------------------------- DFDC test / validation


def test_dfdc_test_labels_csv_with_tags_subfolder_and_missing(tmp_path, caplog):
    touch(
        tmp_path / "labels.csv",
        "filename,label,augmenters,distractors\n"
        "videos/aa.mp4,1,blur;flip,\n"
        "videos/bb.mp4,0,,text;dots\n"
        "videos/cc.mp4,FAKE,,\n"
        "videos/aa.mp4,0,,\n",  # duplicate: the first wins
    )
    for name in ["aa.mp4", "bb.mp4", "zz.mp4"]:  # cc is missing, zz is unlisted
        touch(tmp_path / "videos" / name)
    df = build_manifest("test", {"format": "dfdc_test", "root": str(tmp_path), "labels": None, "flow": "test"})
    check_contract(df, "test")
    rows = by_id(df)
    assert list(rows) == ["videos/aa", "videos/bb", "videos/cc"]
    assert rows["videos/aa"]["label"] == 1 and list(rows["videos/aa"]["tags"]) == ["augmenter:blur", "augmenter:flip"]
    assert rows["videos/bb"]["label"] == 0 and list(rows["videos/bb"]["tags"]) == ["distractor:text", "distractor:dots"]
    assert list(rows["videos/cc"]["tags"]) == [] and rows["videos/cc"]["status"] == "missing"
    assert str(tmp_path / "labels.csv") in rows["videos/cc"]["message"]
    assert set(df["group"]) == {"test"} and set(df["split"]) == {"test"}
    assert "1 duplicated entry" in caplog.text
    assert "1 video(s) on disk are not listed" in caplog.text and "videos/zz.mp4" in caplog.text


def test_dfdc_test_metadata_json(tmp_path):
    touch(
        tmp_path / "metadata.json",
        json.dumps(
            {
                "x.mp4": {"label": "FAKE", "augmenters": ["grayscale"], "distractors": []},
                "y.mp4": {"label": "REAL", "augmenters": [], "distractors": ["shapes"]},
            }
        ),
    )
    touch(tmp_path / "x.mp4")
    touch(tmp_path / "y.mp4")
    df = build_manifest("test", {"format": "dfdc_test", "root": str(tmp_path), "flow": "test"})
    check_contract(df, "test")
    assert df["label"].tolist() == [1, 0]
    assert [list(t) for t in df["tags"]] == [["augmenter:grayscale"], ["distractor:shapes"]]


def test_dfdc_test_prefers_labels_csv_and_honours_the_labels_key(tmp_path):
    touch(tmp_path / "labels.csv", "filename,label\nx.mp4,1\n")
    touch(tmp_path / "metadata.json", json.dumps({"x.mp4": {"label": "REAL"}}))
    touch(tmp_path / "x.mp4")
    auto = build_manifest("t", {"format": "dfdc_test", "root": str(tmp_path), "flow": "test"})
    named = build_manifest("t", {"format": "dfdc_test", "root": str(tmp_path), "labels": "metadata.json", "flow": "test"})
    assert auto["label"].tolist() == [1] and named["label"].tolist() == [0]
    with pytest.raises(ManifestError, match=r"nope\.csv does not exist; fix datasets\.t\.labels"):
        build_manifest("t", {"format": "dfdc_test", "root": str(tmp_path), "labels": "nope.csv", "flow": "test"})


def test_dfdc_test_as_released_labels_csv_without_tags(tmp_path, caplog):
    # The public DFDC test set's labels.csv: filename,label with 1 = fake, 0 = real, no tags.
    touch(tmp_path / "labels.csv", "filename,label\naalscayrfi.mp4,1\naapnvogymq.mp4,0\nabarnvbtwb.mp4,1\n")
    for name in ["aalscayrfi.mp4", "aapnvogymq.mp4", "abarnvbtwb.mp4"]:
        touch(tmp_path / "videos" / name)
    dataset = {"format": "dfdc_test", "root": str(tmp_path), "labels": None, "flow": "test", "videos": "videos"}
    with caplog.at_level(logging.WARNING):
        df = build_manifest("test", dataset)
    check_contract(df, "test")
    assert df["video_id"].tolist() == ["videos/aalscayrfi", "videos/aapnvogymq", "videos/abarnvbtwb"]
    assert df["label"].tolist() == [1, 0, 1] and set(df["status"]) == {"ok"}
    assert all(len(t) == 0 for t in df["tags"])
    assert "no video carries an augmenter or distractor tag" in caplog.text


def test_dfdc_test_tags_from_named_columns_and_from_a_separate_file(tmp_path, caplog):
    touch(tmp_path / "labels.csv", "filename,label,aug,dis\na.mp4,1,blur,\nb.mp4,0,,logo;text\nc.mp4,0,,\n")
    for name in "abc":
        touch(tmp_path / f"{name}.mp4")
    columns = {"format": "dfdc_test", "root": str(tmp_path), "flow": "test",
               "tags": {"augmenters": "aug", "distractors": "dis"}}
    df = build_manifest("t", columns)
    assert [list(t) for t in df["tags"]] == [["augmenter:blur"], ["distractor:logo", "distractor:text"], []]

    touch(tmp_path / "meta" / "tags.csv", "filename,augmenters,distractors\nc.mp4,flip;noise,shapes\ngone.mp4,blur,\n")
    separate = {"format": "dfdc_test", "root": str(tmp_path), "flow": "test", "tags": {"file": "meta/tags.csv"}}
    with caplog.at_level(logging.WARNING):
        df = build_manifest("t", separate)
    # The file's tags replace the labels file's columns; a video it does not list has none.
    assert [list(t) for t in df["tags"]] == [[], [], ["augmenter:flip", "augmenter:noise", "distractor:shapes"]]
    assert "1 video(s) are not in" in caplog.text and "gone.mp4" in caplog.text
    assert source_files("t", separate) == [tmp_path / "labels.csv", tmp_path / "meta" / "tags.csv"]

    touch(tmp_path / "bad.csv", "filename,what\na.mp4,x\n")
    with pytest.raises(ManifestError, match=r"none of the tag columns"):
        build_manifest("t", {**separate, "tags": {"file": "bad.csv"}})
    with pytest.raises(ManifestError, match=r"tags file .*nope\.csv does not exist"):
        build_manifest("t", {**separate, "tags": {"file": "nope.csv"}})


# ---------------------------------------------------------------- Celeb-DF-v2


def celebdf_layout(root: Path) -> None:
    for rel in [
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id1_0003.mp4",
        "YouTube-real/00170.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4",
        "Celeb-synthesis/id1_id0_0003.mp4",
        "Celeb-synthesis/id1_id2_0003.mp4",
    ]:
        touch(root / rel)


def test_celebdf_every_video_without_list(tmp_path):
    celebdf_layout(tmp_path)
    df = build_manifest("celebdf", {"format": "celebdf", "root": str(tmp_path), "labels": None, "flow": "test"})
    check_contract(df, "celebdf")
    rows = by_id(df)
    assert len(rows) == 6 and (df["status"] == "ok").all() and set(df["split"]) == {"test"}
    assert (rows["Celeb-real/id0_0000"]["label"], rows["Celeb-real/id0_0000"]["group"]) == (0, "id0")
    assert (rows["YouTube-real/00170"]["label"], rows["YouTube-real/00170"]["group"]) == (0, "youtube")
    fake = rows["Celeb-synthesis/id1_id2_0003"]
    assert (fake["label"], fake["group"], fake["original"]) == (1, "id1", "Celeb-real/id1_0003")
    assert rows["Celeb-synthesis/id0_id1_0000"]["original"] == "Celeb-real/id0_0000"


def test_celebdf_testing_list_flags_restriction_and_missing(tmp_path, caplog):
    celebdf_layout(tmp_path)
    touch(
        tmp_path / "List_of_testing_videos.txt",
        "1 YouTube-real/00170.mp4\n"
        "0 Celeb-synthesis/id0_id1_0000.mp4\n"
        "1 Celeb-real/id0_0000.mp4\n"
        "1 Celeb-synthesis/id1_id0_0003.mp4\n"  # flag says REAL, folder says fake
        "0 Celeb-synthesis/id5_id6_0001.mp4\n"  # not on disk
        "1 Extra-real/clip.mp4\n"  # outside the layout: the flag gives the label
        "\n",
    )
    caplog.set_level(logging.INFO, logger="facesleuth.manifests")
    df = build_manifest(
        "celebdf", {"format": "celebdf", "root": str(tmp_path), "labels": "List_of_testing_videos.txt", "flow": "test"}
    )
    check_contract(df, "celebdf")
    rows = by_id(df)
    assert set(rows) == {
        "YouTube-real/00170",
        "Celeb-synthesis/id0_id1_0000",
        "Celeb-real/id0_0000",
        "Celeb-synthesis/id1_id0_0003",
        "Celeb-synthesis/id5_id6_0001",
        "Extra-real/clip",
    }
    assert rows["Extra-real/clip"]["label"] == 0 and "1 video(s) outside Celeb-real" in caplog.text
    assert "2 video(s) on disk are not in" in caplog.text  # Celeb-real/id1_0003, id1_id2_0003
    # flag 1 is REAL (label 0), flag 0 is FAKE (label 1); the folder wins where they disagree
    assert rows["YouTube-real/00170"]["label"] == 0 and rows["Celeb-synthesis/id0_id1_0000"]["label"] == 1
    assert rows["Celeb-synthesis/id1_id0_0003"]["label"] == 1
    assert "1 flag(s) disagree with their folder" in caplog.text and "line 4" in caplog.text
    absent = rows["Celeb-synthesis/id5_id6_0001"]
    assert absent["status"] == "missing" and "List_of_testing_videos.txt" in absent["message"]
    assert (absent["group"], absent["original"]) == ("id5", "Celeb-real/id5_0001")


def test_celebdf_bad_list_line_names_file_and_line(tmp_path):
    celebdf_layout(tmp_path)
    touch(tmp_path / "list.txt", "1 Celeb-real/id0_0000.mp4\nFAKE Celeb-synthesis/id0_id1_0000.mp4\n")
    with pytest.raises(ManifestError, match=r"list\.txt, line 2: expected '<flag> <folder>/<file>\.mp4'"):
        build_manifest("c", {"format": "celebdf", "root": str(tmp_path), "labels": "list.txt", "flow": "test"})


def test_celebdf_root_without_its_folders(tmp_path):
    touch(tmp_path / "something.mp4")
    with pytest.raises(ManifestError, match=r"none of Celeb-real/.*datasets\.c\.root"):
        build_manifest("c", {"format": "celebdf", "root": str(tmp_path), "flow": "test"})


# ---------------------------------------------------------------- plain CSV


def test_csv_dataset(tmp_path):
    touch(
        tmp_path / "list.csv",
        "path,label,split,original,group,tags\n"
        "clips/real1.mp4,REAL,train,,g1,\n"
        "clips/fake1.mp4,1,,clips/real1.mp4,g1,lowlight;blur\n"
        "clips/gone.mp4,fake,val,clips/real1,,\n",
    )
    touch(tmp_path / "clips/real1.mp4")
    touch(tmp_path / "clips/fake1.mp4")
    df = build_manifest("mine", {"format": "csv", "root": str(tmp_path), "labels": "list.csv", "flow": "train"})
    check_contract(df, "mine")
    rows = by_id(df)
    fake = rows["clips/fake1"]
    assert (fake["label"], fake["original"], fake["group"], fake["split"]) == (1, "clips/real1", "g1", "train")
    assert list(fake["tags"]) == ["lowlight", "blur"]
    assert rows["clips/gone"]["status"] == "missing" and rows["clips/gone"]["original"] == "clips/real1"
    assert rows["clips/gone"]["split"] == "val" and pd.isna(rows["clips/gone"]["group"])
    assert rows["clips/real1"]["label"] == 0 and pd.isna(rows["clips/real1"]["original"])


def test_csv_needs_labels_and_its_columns(tmp_path):
    with pytest.raises(ManifestError, match=r"datasets\.mine\.labels"):
        build_manifest("mine", {"format": "csv", "root": str(tmp_path), "labels": None, "flow": "train"})
    touch(tmp_path / "list.csv", "file,label\na.mp4,1\n")
    with pytest.raises(ManifestError, match=r"list\.csv: missing column\(s\) path; expected path,label"):
        build_manifest("mine", {"format": "csv", "root": str(tmp_path), "labels": "list.csv", "flow": "train"})
    touch(tmp_path / "list.csv", "path,label\n/abs/a.mp4,1\n")
    with pytest.raises(ManifestError, match=r"line 2: path '/abs/a\.mp4' must be relative"):
        build_manifest("mine", {"format": "csv", "root": str(tmp_path), "labels": "list.csv", "flow": "train"})


# ---------------------------------------------------------------- error paths


def test_broken_json_names_the_file_and_the_json_error(tmp_path):
    bad = touch(tmp_path / "dfdc_train_part_0" / "metadata.json", '{"a.mp4": {"label": "FAKE",}')
    with pytest.raises(ManifestError) as err:
        build_manifest("d", {"format": "dfdc_train", "root": str(tmp_path), "flow": "train"})
    assert str(bad) in str(err.value)
    assert "invalid JSON" in str(err.value) and "line 1 column" in str(err.value)


def test_json_entry_without_label(tmp_path):
    touch(tmp_path / "dfdc_train_part_0" / "metadata.json", '{"a.mp4": "FAKE"}')
    with pytest.raises(ManifestError, match=r"metadata\.json: entry 'a\.mp4' should be an object with a \"label\""):
        build_manifest("d", {"format": "dfdc_train", "root": str(tmp_path), "flow": "train"})


@pytest.mark.parametrize("fmt", ["dfdc_train", "dfdc_test", "celebdf", "ffpp", "csv"])
def test_missing_root_names_the_config_key(tmp_path, fmt):
    root = tmp_path / "not-here"
    with pytest.raises(ManifestError, match=rf"{root}.*does not exist.*datasets\.ds\.root"):
        build_manifest("ds", {"format": fmt, "root": str(root), "labels": "x.csv", "flow": "test"})


def test_root_without_the_layout(tmp_path):
    touch(tmp_path / "video.mp4")
    with pytest.raises(ManifestError, match=r"no dfdc_train_part_<N>/metadata\.json.*datasets\.d\.root"):
        build_manifest("d", {"format": "dfdc_train", "root": str(tmp_path), "flow": "train"})
    with pytest.raises(ManifestError, match=r"neither labels\.csv nor metadata\.json.*datasets\.d\.root"):
        build_manifest("d", {"format": "dfdc_test", "root": str(tmp_path), "flow": "test"})


def test_unknown_label_names_the_file_and_line(tmp_path):
    touch(tmp_path / "labels.csv", "filename,label\na.mp4,1\nb.mp4,maybe\n")
    with pytest.raises(ManifestError, match=r"labels\.csv, line 3: unknown label 'maybe'"):
        build_manifest("t", {"format": "dfdc_test", "root": str(tmp_path), "flow": "test"})
    touch(tmp_path / "dfdc_train_part_0" / "metadata.json", '{"a.mp4": {"label": "SYNTH"}}')
    with pytest.raises(ManifestError, match=r"metadata\.json, entry 'a\.mp4': unknown label 'SYNTH'"):
        build_manifest("d", {"format": "dfdc_train", "root": str(tmp_path), "flow": "train"})


def test_unknown_format(tmp_path):
    with pytest.raises(ManifestError, match=r"datasets\.d\.format: unknown format 'vox'"):
        build_manifest("d", {"format": "vox", "root": str(tmp_path), "flow": "test"})


# ---------------------------------------------------------------- Parquet and Snakemake


def test_written_manifest_round_trips_with_the_schema(samples, tmp_path):
    df = build_manifest("dfdc", {"format": "dfdc_train", "root": str(samples / "dfdc"), "flow": "train"})
    path = write_manifest(df, tmp_path / "m" / "dfdc.parquet")
    table = pq.read_table(path)
    assert table.schema.remove_metadata().equals(MANIFEST_SCHEMA)
    back = table.to_pandas()
    pd.testing.assert_frame_equal(back.drop(columns="tags"), df.drop(columns="tags"))
    assert [list(t) for t in back["tags"]] == [list(t) for t in df["tags"]]
    assert back["original"].notna().all()  # every DFDC sample is a fake with an original


def test_manifest_rule_through_snakemake(samples, repo_root, tmp_path):
    """The real rule file and script, with stand-ins for the common.smk helpers it uses."""
    (tmp_path / "config.yaml").write_text(
        json.dumps({"datasets": {"ffpp": {"format": "ffpp", "root": str(samples / "ffpp"), "flow": "test"}}})
    )
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n'
        "def manifest_inputs(wildcards):\n    return []\n\n"
        'def log_path(stage, name):\n    return f"logs/{stage}/{name}.log"\n\n'
        'def bench_path(stage, name):\n    return f"results/benchmarks/{stage}/{name}.tsv"\n\n'
        f'include: "{repo_root / "workflow" / "rules" / "manifests.smk"}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/manifests/ffpp.parquet", "--cores", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = pd.read_parquet(tmp_path / "results/manifests/ffpp.parquet")
    assert len(written) == 6 and (written["label"] == 1).sum() == 3
    assert "manifest ffpp: 6 videos, 3 fakes, 3 reals, 0 missing" in (tmp_path / "logs/manifests/ffpp.log").read_text()


def test_source_files_are_the_labels_files_a_manifest_reads(samples, tmp_path):
    dfdc = source_files("dfdc", {"format": "dfdc_train", "root": str(samples / "dfdc"), "flow": "train"})
    assert sorted(p.parent.name for p in dfdc) == ["dfdc_train_part_0", "dfdc_train_part_1", "dfdc_train_part_10"]
    assert all(p.name == "metadata.json" for p in dfdc)
    assert source_files("ffpp", {"format": "ffpp", "root": str(samples / "ffpp"), "flow": "train"}) == []
    (tmp_path / "labels.csv").write_text("filename,label\na.mp4,1\n")
    test = source_files("t", {"format": "dfdc_test", "root": str(tmp_path), "flow": "test", "labels": None})
    assert test == [tmp_path / "labels.csv"]
    with pytest.raises(ManifestError, match=r"datasets\.gone\.root"):
        source_files("gone", {"format": "celebdf", "root": str(tmp_path / "nope"), "flow": "test"})


def test_ffpp_official_split_keeps_its_pairs_only(samples, tmp_path):
    # a copy of the layout's file names only (empty files): the adapter lists, never decodes
    root = tmp_path / "ffpp"
    for video in (samples / "ffpp").rglob("*.mp4"):
        target = root / video.relative_to(samples / "ffpp")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    (root / "splits").mkdir()
    # pairs (519, 515) and (982, 004): originals 519 and 004 are on disk, 515 and 982 are not;
    # fakes 519_515 and 004_982 (the reversed name of the second pair) are kept, 634 and 634_660 not
    (root / "splits" / "test.json").write_text(json.dumps([["519", "515"], ["982", "004"]]))
    dataset = {"format": "ffpp", "root": str(root), "flow": "test", "labels": "splits/test.json"}
    df = build_manifest("ffpp_test", dataset)
    assert sorted(df["video_id"].str.rsplit("/", n=1).str[-1]) == ["004", "004_982", "519", "519_515"]
    assert sorted(df["label"].tolist()) == [0, 0, 1, 1]
    assert source_files("ffpp_test", dataset) == [root / "splits" / "test.json"]
    (root / "splits" / "bad.json").write_text(json.dumps({"519": "515"}))
    with pytest.raises(ManifestError, match="list of \\[target, source\\] pairs"):
        build_manifest("f", {**dataset, "labels": "splits/bad.json"})
