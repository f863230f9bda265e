"""The embedded demo generator: layouts as docs' formats fix them, honest fakes (they
differ from their originals only around the face), decodable videos, recorded tags, determinism,
and faces the pipeline's detector finds."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from facesleuth.demo import augmenters, fakes, generate_demo, resolve_settings
from facesleuth.demo.layouts import celebdf_counts
from facesleuth.demo.production import TRAIN, film, rng_for
from facesleuth.demo.sources import PHOTO_FACES, load_lfw_faces, load_photos

TINY = {
    "seed": 11,
    "train_parts": 2,
    "originals_per_part": 3,
    "fakes_per_original": 2,
    "test_videos": 8,
    "celebdf_videos": 6,
    "frames": 12,
    "size": [320, 240],
    "fps": 12,
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    summary = generate_demo(out, TINY)
    return out, summary


@pytest.fixture(scope="module")
def mtcnn():
    import torch
    from facenet_pytorch import MTCNN

    torch.set_num_threads(1)
    return MTCNN(keep_all=True, device="cpu")


def read_frames(path: Path, indices: list[int] | None = None) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path))
    indices = list(range(len(reader))) if indices is None else indices
    return reader.get_batch(indices).asnumpy()


def detect(mtcnn, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and probabilities as float arrays (numpy 2 makes facenet-pytorch return objects)."""
    from PIL import Image

    boxes, probs = mtcnn.detect(Image.fromarray(frame))
    if boxes is None:
        return np.zeros((0, 4)), np.zeros(0)
    return np.asarray(boxes, dtype=float), np.asarray(probs, dtype=float)


# ------------------------------------------------------------------ layouts


def test_dfdc_train_parts_follow_the_layout(demo) -> None:
    out, _ = demo
    parts = sorted(p.name for p in (out / "dfdc_train").iterdir())
    assert parts == ["dfdc_train_part_0", "dfdc_train_part_1"]
    for part in parts:
        folder = out / "dfdc_train" / part
        metadata = json.loads((folder / "metadata.json").read_text())
        assert sorted(metadata) == sorted(p.name for p in folder.glob("*.mp4")), "metadata and files on disk differ"
        reals = {name for name, entry in metadata.items() if entry["label"] == "REAL"}
        assert len(reals) == TINY["originals_per_part"]
        assert len(metadata) == len(reals) * (1 + TINY["fakes_per_original"])
        for name, entry in metadata.items():
            assert re.fullmatch(r"[a-z]{10}\.mp4", name)
            assert entry["split"] == "train"
            assert entry["label"] in {"REAL", "FAKE"}
            if entry["label"] == "FAKE":
                assert entry["original"] in reals, f"{part}/{name}: original {entry['original']} is not a real of its part"
            else:
                assert entry["original"] is None


def test_dfdc_test_set_follows_the_layout(demo) -> None:
    out, summary = demo
    root = out / "dfdc_test"
    with open(root / "labels.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["filename", "label", "augmenters", "distractors"]
        rows = list(reader)
    assert sorted(r["filename"] for r in rows) == sorted(p.name for p in root.glob("*.mp4"))
    labels = [int(r["label"]) for r in rows]
    assert set(labels) == {0, 1} and sum(labels) == TINY["test_videos"] // 2
    records = {Path(r["path"]).name: r for r in summary["videos"] if r["dataset"] == "dfdc_test"}
    for row in rows:
        record = records[row["filename"]]
        assert int(row["label"]) == record["label"]
        assert (row["augmenters"].split(";") if row["augmenters"] else []) == record["augmenters"]
        assert (row["distractors"].split(";") if row["distractors"] else []) == record["distractors"]
        assert set(record["augmenters"]) <= set(augmenters.AUGMENTERS)
        assert set(record["distractors"]) <= set(augmenters.DISTRACTORS)
    assert summary["datasets"]["dfdc_test"]["tagged"] == sum(bool(r["augmenters"] or r["distractors"]) for r in rows)


def test_celebdf_follows_the_layout(demo) -> None:
    out, _ = demo
    root = out / "Celeb-DF-v2"
    patterns = {
        "Celeb-real": r"id\d+_\d{4}\.mp4",
        "YouTube-real": r"\d{5}\.mp4",
        "Celeb-synthesis": r"id\d+_id\d+_\d{4}\.mp4",
    }
    on_disk = set()
    for folder, pattern in patterns.items():
        for path in (root / folder).glob("*.mp4"):
            assert re.fullmatch(pattern, path.name), f"{folder}/{path.name} breaks the Celeb-DF naming"
            on_disk.add(f"{folder}/{path.name}")
    for path in (root / "Celeb-synthesis").glob("*.mp4"):
        target, _, number = path.stem.split("_")
        assert (root / "Celeb-real" / f"{target}_{number}.mp4").is_file(), f"{path.name}: its target video is missing"
    listed = [line.split(" ") for line in (root / "List_of_testing_videos.txt").read_text().splitlines()]
    assert len(listed) == TINY["celebdf_videos"]
    for flag, name in listed:
        assert name in on_disk
        assert flag == ("0" if name.startswith("Celeb-synthesis/") else "1"), f"flag {flag} disagrees with {name}'s folder"
    assert sum(flag == "0" for flag, _ in listed) > sum(flag == "1" for flag, _ in listed), "Celeb-DF is mostly fakes"
    assert len(on_disk) > len(listed), "a few videos stay off the test list, as in Celeb-DF-v2"


def test_summary_names_every_video_on_disk(demo) -> None:
    out, summary = demo
    assert json.loads((out / "demo.json").read_text()) == summary
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert sorted(r["path"] for r in summary["videos"]) == on_disk
    assert not (out / ".staging").exists()
    by_path = {r["path"]: r for r in summary["videos"]}
    for record in summary["videos"]:
        if record["label"] == 1 and record["dataset"] != "dfdc_test":
            assert by_path[record["original"]]["label"] == 0


def test_manifest_adapters_read_the_demo(demo) -> None:
    """The layouts round-trip through the pipeline's own adapters (docs' formats, both sides)."""
    from facesleuth.manifests import build_manifest

    out, summary = demo
    datasets = {
        "dfdc_train": {"format": "dfdc_train", "root": str(out / "dfdc_train"), "flow": "train", "labels": None},
        "dfdc_test": {"format": "dfdc_test", "root": str(out / "dfdc_test"), "flow": "test", "labels": None},
        "celebdf": {
            "format": "celebdf", "root": str(out / "Celeb-DF-v2"), "flow": "test", "labels": "List_of_testing_videos.txt"
        },
    }
    for name, dataset in datasets.items():
        manifest = build_manifest(name, dataset)
        records = [r for r in summary["videos"] if r["dataset"] == name and r.get("listed", True)]
        assert (manifest["status"] == "ok").all(), manifest[manifest["status"] != "ok"]
        assert sorted(manifest["label"]) == sorted(r["label"] for r in records), name
        if name == "dfdc_train":
            reals = set(manifest.loc[manifest["label"] == 0, "video_id"])
            assert set(manifest.loc[manifest["label"] == 1, "original"]) <= reals
        if name == "dfdc_test":
            tags = {Path(r["path"]).stem: sorted([f"augmenter:{a}" for a in r["augmenters"]] + [f"distractor:{d}" for d in r["distractors"]]) for r in records}
            assert {row.video_id: sorted(row.tags) for row in manifest.itertuples()} == tags


# ------------------------------------------------------------------ videos


def test_videos_decode_with_the_recorded_size_and_length(demo) -> None:
    import decord

    out, summary = demo
    width, height = TINY["size"]
    orientations = set()
    for record in summary["videos"]:
        reader = decord.VideoReader(str(out / record["path"]))
        frame = reader.get_batch([0, len(reader) - 1]).asnumpy()
        assert len(reader) == record["frames"], record["path"]
        assert frame.shape[1:] == (record["height"], record["width"], 3), record["path"]
        orientations.add(record["width"] > record["height"])
        scaled = "resolution_change" in record["augmenters"]
        assert ((record["width"], record["height"]) in {(width, height), (height, width)}) != scaled
        assert (record["frames"] == TINY["frames"]) != ("framerate_change" in record["augmenters"])
    assert orientations == {True, False}, "DFDC mixes landscape and portrait; so does the demo"


def test_fakes_keep_their_originals_frame_count_and_size(demo) -> None:
    _out, summary = demo
    by_path = {r["path"]: r for r in summary["videos"]}
    fakes_seen = 0
    for record in summary["videos"]:
        if record["label"] == 1 and record["dataset"] != "dfdc_test":  # test-set videos are perturbed one by one
            original = by_path[record["original"]]
            assert (record["frames"], record["width"], record["height"]) == (
                original["frames"], original["width"], original["height"]
            )
            fakes_seen += 1
    celebdf_fakes = celebdf_counts(TINY["celebdf_videos"])["synthesis"] + 1  # one unlisted
    assert fakes_seen == TINY["train_parts"] * TINY["originals_per_part"] * TINY["fakes_per_original"] + celebdf_fakes


def test_fakes_differ_from_their_originals_only_around_the_face(demo, mtcnn) -> None:
    """As in FaceForensics++: the pixel difference to the original sits inside the face box."""
    out, summary = demo
    methods = set()
    for record in [r for r in summary["videos"] if r["dataset"] == "dfdc_train" and r["label"] == 1]:
        fake, original = read_frames(out / record["path"], [5]), read_frames(out / record["original"], [5])
        boxes, probs = detect(mtcnn, original[0])
        assert len(boxes) >= 1 and probs.max() > 0.95
        x0, y0, x1, y1 = boxes[np.argmax(probs)]
        difference = np.abs(fake[0].astype(int) - original[0].astype(int)).max(axis=2)
        changed = difference > 24  # above what re-encoding alone moves
        ys, xs = np.nonzero(changed)
        grow_x, grow_y = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
        inside = (xs >= x0 - grow_x) & (xs <= x1 + grow_x) & (ys >= y0 - grow_y) & (ys <= y1 + grow_y)
        assert changed.sum() > 50, f"{record['path']}: barely differs from its original"
        assert inside.mean() > 0.99, f"{record['path']}: {(~inside).sum()} changed pixels lie outside the face"
        methods.add(record["method"])
    assert methods == set(fakes.METHODS)


def test_manipulations_leave_every_pixel_outside_the_face_untouched() -> None:
    """Before compression the difference is exactly zero outside the mask's region."""
    rng = rng_for(3, "unit")
    photo = load_photos()[0]
    video = film(photo, TRAIN, {"size": [320, 240], "frames": 4, "fps": 12}, rng)
    swap_style = fakes.swap_style(rng)
    for frames, style in (
        (fakes.face_swap(video, load_lfw_faces()[0], swap_style, rng), swap_style),
        (fakes.self_blend(video, blend := fakes.blend_style(rng), rng), blend),
    ):
        assert len(frames) == len(video.frames)
        offset = getattr(style, "mask_offset", (0.0, 0.04))
        for fake, original, face in zip(frames, video.frames, video.faces):
            assert fake.shape == original.shape
            x0, y0, x1, y1 = fakes.mask_region(face, style.mask_scale, style.feather, offset, video.size)
            outside = np.ones(fake.shape[:2], dtype=bool)
            outside[y0:y1, x0:x1] = False
            assert np.array_equal(fake[outside], original[outside])
            assert np.abs(fake[y0:y1, x0:x1].astype(int) - original[y0:y1, x0:x1]).mean() > 0.5


def test_mtcnn_finds_the_face_in_real_demo_frames(demo, mtcnn) -> None:
    """Big enough for the demo config's extraction (min_face_size 40) in every sampled frame."""
    out, summary = demo
    reals = [r for r in summary["videos"] if r["label"] == 0 and not r["augmenters"] and not r["distractors"]]
    for record in reals[:4]:
        frames = read_frames(out / record["path"], [0, record["frames"] // 2, record["frames"] - 1])
        for frame in frames:
            boxes, probs = detect(mtcnn, frame)
            keep = (probs > 0.9) & (boxes[:, 2] - boxes[:, 0] >= 40) & (boxes[:, 3] - boxes[:, 1] >= 40)
            assert keep.sum() == 1, f"{record['path']}: {keep.sum()} faces of 40 px or more (probs {probs})"


def test_source_landmarks_agree_with_mtcnn(mtcnn) -> None:
    from PIL import Image

    for photo in load_photos():
        boxes, probs, landmarks = mtcnn.detect(Image.fromarray(photo.image), landmarks=True)
        boxes, landmarks = np.asarray(boxes, dtype=float), np.asarray(landmarks, dtype=float)
        best = int(np.argmax(np.asarray(probs, dtype=float)))
        assert np.abs(boxes[best] - np.array(PHOTO_FACES[photo.name]["box"])).max() < 4, photo.name
        assert np.abs(landmarks[best] - np.array(PHOTO_FACES[photo.name]["landmarks"])).max() < 3, photo.name


# ------------------------------------------------------------------ tags, determinism, settings


def test_tags_are_drawn_like_dfdc() -> None:
    rng = np.random.default_rng(0)
    draws = [augmenters.draw_tags(rng) for _ in range(2000)]
    untagged = sum(not a and not d for a, d in draws) / len(draws)
    assert abs(untagged - (1 - augmenters.TAGGED_SHARE)) < 0.03
    assert {x for a, _ in draws for x in a} == set(augmenters.AUGMENTERS)
    assert {x for _, d in draws for x in d} == set(augmenters.DISTRACTORS)


@pytest.mark.parametrize("name", augmenters.AUGMENTERS)
def test_each_augmenter_changes_the_video(name: str) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(40, 200, size=(240, 320, 3), dtype=np.uint8) for _ in range(12)]
    changed, fps = augmenters.apply_augmenters(frames, 12.0, [name], rng)
    same_shape = len(changed) == len(frames) and changed[0].shape == frames[0].shape
    assert not (same_shape and all(np.array_equal(a, b) for a, b in zip(changed, frames))), name
    assert fps <= 12.0 and changed[0].dtype == np.uint8


@pytest.mark.parametrize("name", augmenters.DISTRACTORS)
def test_each_distractor_draws_something(name: str) -> None:
    rng = np.random.default_rng(2)
    frames = [np.full((240, 320, 3), 128, np.uint8) for _ in range(12)]
    boxes = np.tile([110.0, 70.0, 210.0, 190.0], (12, 1))
    drawn = augmenters.apply_distractors(frames, boxes, [name], rng, {"textures": [np.zeros((300, 300, 3), np.uint8)], "faces": load_lfw_faces()[:3]})
    assert any(not np.array_equal(a, b) for a, b in zip(drawn, frames)), name
    assert all(np.array_equal(f, np.full((240, 320, 3), 128, np.uint8)) for f in frames), "inputs must stay untouched"


def test_same_seed_gives_the_same_files_and_another_seed_does_not(demo, tmp_path) -> None:
    out, summary = demo
    # in two worker processes this time: parts and test sets built side by side, same bytes
    again = generate_demo(tmp_path / "again", TINY, workers=2)
    assert again == summary

    def digest(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(tmp_path / "again") == digest(out)
    first = summary["videos"][0]["path"]
    assert np.array_equal(read_frames(out / first, [0]), read_frames(tmp_path / "again" / first, [0]))
    other = generate_demo(tmp_path / "other", {**TINY, "seed": 12, "celebdf_videos": 4, "test_videos": 4})
    assert {r["path"] for r in other["videos"] if r["dataset"] == "dfdc_train"} != {
        r["path"] for r in summary["videos"] if r["dataset"] == "dfdc_train"
    }


def test_regenerating_replaces_the_old_datasets(tmp_path) -> None:
    small = {**TINY, "train_parts": 1, "originals_per_part": 1, "fakes_per_original": 1, "test_videos": 4, "celebdf_videos": 4, "frames": 8}
    generate_demo(tmp_path, {**small, "seed": 1})
    summary = generate_demo(tmp_path, {**small, "seed": 2})
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4"))
    assert on_disk == sorted(r["path"] for r in summary["videos"]), "videos of the previous seed were left behind"


def test_settings_are_checked_and_completed() -> None:
    resolved = resolve_settings({"seed": 3})
    assert resolved["seed"] == 3 and resolved["frames"] >= 8 and len(resolved["size"]) == 2
    with pytest.raises(ValueError, match=r"demo\.size"):
        resolve_settings({"size": [321, 240]})
    with pytest.raises(ValueError, match=r"demo\.test_videos"):
        resolve_settings({"test_videos": 2})
