"""The train and test extraction flows on the sample videos (thesis 2.4.1, 2.4.2)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import facesleuth.extract.flows as extract_module
from facesleuth.extract.detect import FaceDetector
from facesleuth.extract.flows import (
    chunk_rows,
    decode_train_frames,
    extract_chunk,
    extract_video,
    merge_status,
    summarize_status,
)
from facesleuth.io import FACES_SCHEMA, MANIFEST_SCHEMA, STATUS_SCHEMA, write_parquet
from facesleuth.train.preprocess import decode_jpeg
from facesleuth.runtime import chunk_of
from facesleuth.extract.tracking import iou, link_tracks, sample_track_faces
from facesleuth.extract.video import (
    FramePolicy,
    evenly_spaced_indices,
    every_kth_indices,
    read_frames,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
FAST_DETECTION = {"detect_max_side": 480, "batch_size": 8}
TRAIN_FAST = {"frames_per_video": 3}
FFPP_PAIRS = [("519", "519_515", "Deepfakes"), ("634", "634_660", "FaceSwap"), ("004", "004_982", "NeuralTextures")]


def row(video_id, path, label, original=None, status="ok", message="", dataset="test", group=""):
    return {
        "dataset": dataset, "video_id": video_id, "path": str(path), "label": label, "split": "",
        "original": original, "group": group, "tags": [], "status": status, "message": message,
    }


def ffpp_manifest(samples) -> pd.DataFrame:
    """FF++ layout ids; fakes listed BEFORE their originals to prove the order is handled."""
    root = samples / "ffpp"
    reals, fakes = [], []
    for original, fake, method in FFPP_PAIRS:
        original_id = f"original_sequences/youtube/c23/videos/{original}"
        reals.append(row(original_id, root / f"{original_id}.mp4", 0, dataset="ffpp", group="youtube"))
        fake_id = f"manipulated_sequences/{method}/c23/videos/{fake}"
        fakes.append(row(fake_id, root / f"{fake_id}.mp4", 1, original=original_id, dataset="ffpp", group=method))
    return pd.DataFrame(fakes + reals)


def dfdc_manifest(samples) -> pd.DataFrame:
    """As the DFDC adapter lays it out: every metadata entry, the absent ones marked missing."""
    rows = []
    for part in sorted((samples / "dfdc").glob("dfdc_train_part_*")):
        for name, meta in json.loads((part / "metadata.json").read_text()).items():
            path = part / name
            original = f"{part.name}/{Path(meta['original']).stem}" if meta.get("original") else None
            rows.append(
                row(
                    f"{part.name}/{Path(name).stem}", path, 1 if meta["label"] == "FAKE" else 0, original=original,
                    status="ok" if path.exists() else "missing",
                    message="" if path.exists() else "listed in metadata.json but not on disk",
                    dataset="dfdc", group=part.name,
                )
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def detector():
    return FaceDetector.from_config(FAST_DETECTION).load()


@pytest.fixture(scope="module")
def ffpp_result(samples, detector):
    manifest = ffpp_manifest(samples)
    faces, status = extract_chunk(manifest, 0, 1, "train", detector, TRAIN_FAST)
    return manifest, faces, status


# ---------------------------------------------------------------- train flow


@pytest.mark.slow
def test_ffpp_fakes_reuse_their_originals_boxes(ffpp_result):
    manifest, faces, status = ffpp_result
    assert list(status["video_id"]) == list(manifest["video_id"])  # one row each, manifest order
    assert (status["status"] == "ok").all(), status[["video_id", "status", "message"]]
    by_id = status.set_index("video_id")
    for original, fake, method in FFPP_PAIRS:
        original_id = f"original_sequences/youtube/c23/videos/{original}"
        fake_id = f"manipulated_sequences/{method}/c23/videos/{fake}"
        assert by_id.loc[original_id, "box_source"] == "self"
        assert by_id.loc[fake_id, "box_source"] == "original"
        assert original_id in by_id.loc[fake_id, "message"]
        cols = ["frame", "target_frame", "face", "x0", "y0", "x1", "y1", "prob"]
        mine = faces[faces["video_id"] == fake_id][cols].reset_index(drop=True)
        theirs = faces[faces["video_id"] == original_id][cols].reset_index(drop=True)
        assert len(mine) == 3
        pd.testing.assert_frame_equal(mine, theirs)
        assert (faces[faces["video_id"] == fake_id]["box_source"] == "original").all()
        assert (faces[faces["video_id"] == fake_id]["label"] == 1).all()
        assert (faces[faces["video_id"] == original_id]["label"] == 0).all()
    assert faces["face_id"].is_unique
    assert (faces["track"] == -1).all()
    # the train flow's default frame policy, nearest_reference: each face's frame within 2 of the
    # evenly spaced index it stands for (and the fakes read at their originals' frames, above)
    for video_id, own in faces.groupby("video_id"):
        total = int(by_id.loc[video_id, "frames_total"])
        assert sorted(set(own["target_frame"])) == evenly_spaced_indices(total, 3)
        assert ((own["frame"] - own["target_frame"]).abs() <= 2).all()


def assert_landmarks_in_crops(faces):
    """Every face keeps MTCNN's five landmarks, in frame pixels inside its crop's box, eyes
    above the mouth: they went through detection, filtering, reuse and sampling with it."""
    assert faces["landmarks"].notna().all()
    for face in faces.itertuples():
        points = np.asarray(face.landmarks, np.float32).reshape(5, 2)
        assert ((points[:, 0] >= face.x0) & (points[:, 0] <= face.x1)).all(), face.face_id
        assert ((points[:, 1] >= face.y0) & (points[:, 1] <= face.y1)).all(), face.face_id
        assert points[:2, 1].max() < points[3:, 1].min(), face.face_id


@pytest.mark.slow
def test_train_flow_keeps_landmarks(ffpp_result, tmp_path):
    manifest, faces, _ = ffpp_result
    assert_landmarks_in_crops(faces)
    # A fake that reuses its original's boxes reuses its landmarks too.
    for original, fake, method in FFPP_PAIRS:
        mine = faces[faces["video_id"] == f"manipulated_sequences/{method}/c23/videos/{fake}"]
        theirs = faces[faces["video_id"] == f"original_sequences/youtube/c23/videos/{original}"]
        assert np.array_equal(np.stack(mine["landmarks"]), np.stack(theirs["landmarks"]))
    written = pd.read_parquet(write_parquet(faces, tmp_path / "faces.parquet", FACES_SCHEMA))
    assert np.allclose(np.stack(written["landmarks"]), np.stack(faces["landmarks"]))


def test_a_fake_is_read_at_its_originals_frames(samples):
    """nearest_reference picks frames by each file's own B-frames, and FF++ fakes are encoded
    anew; a fake is read at the frames its original was read at, so the boxes still fit."""
    root = samples / "ffpp"
    policy = FramePolicy("nearest_reference", 2)
    original = decode_train_frames(root / "original_sequences/youtube/c23/videos/519.mp4", 10, policy=policy)
    fake_path = root / "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"
    own = decode_train_frames(fake_path, 10, policy=policy)
    assert own.indices != original.indices  # worked out on these files: the original's 563 and 713 are B-frames
    fake = decode_train_frames(fake_path, 10, policy=policy, original=original.frames_used)
    assert fake.indices == original.indices and fake.targets == original.targets == evenly_spaced_indices(751, 10)
    reference = dict(zip(fake.indices, read_frames(fake_path, fake.indices)))  # exact decoding of those frames
    for index, frame in zip(fake.indices, fake.frames, strict=True):
        assert np.array_equal(frame, reference[index])


@pytest.mark.slow
def test_reused_boxes_really_hold_the_fake_face(ffpp_result, samples, detector):
    """The borrowed box must frame a face in the fake too, and the manipulation sits inside it."""
    manifest, faces, _ = ffpp_result
    paths = dict(zip(manifest["video_id"], manifest["path"]))
    originals = dict(zip(manifest["video_id"], manifest["original"]))
    checked = 0
    for face in faces[faces["box_source"] == "original"].itertuples():
        crop = decode_jpeg(face.jpeg)
        assert crop.shape[0] == face.y1 - face.y0 and crop.shape[1] == face.x1 - face.x0
        found = detector.detect([crop])[0]
        assert found.detected >= 1
        centre = [(found.boxes[:, 0] + found.boxes[:, 2]) / 2, (found.boxes[:, 1] + found.boxes[:, 3]) / 2]
        central = (np.abs(centre[0] - crop.shape[1] / 2) < crop.shape[1] / 4) & (
            np.abs(centre[1] - crop.shape[0] / 2) < crop.shape[0] / 4
        )
        assert central.any(), f"{face.face_id}: no face near the middle of the reused crop"
        # the manipulation (fake - original) is stronger inside the box than outside
        fake_frame = read_frames(paths[face.video_id], [face.frame])[0].astype(int)
        real_frame = read_frames(paths[originals[face.video_id]], [face.frame])[0].astype(int)
        diff = np.abs(fake_frame - real_frame).max(axis=2)
        inside = np.zeros(diff.shape, bool)
        inside[int(face.y0):int(face.y1), int(face.x0):int(face.x1)] = True
        assert diff[inside].mean() > 1.3 * diff[~inside].mean(), face.face_id
        if "NeuralTextures" not in face.video_id:  # 004 and its fake differ in bitrate everywhere
            strong = diff > 40
            assert strong[inside].sum() >= 0.9 * strong.sum(), face.face_id
        checked += 1
    assert checked == 9


@pytest.mark.slow
def test_fake_detects_on_itself_when_the_original_does_not_fit(samples, detector):
    root = samples / "ffpp"
    manifest = pd.DataFrame(
        [
            row("519", root / "original_sequences/youtube/c23/videos/519.mp4", 0),
            # wrong pairing on purpose: 004_982 is 1280x720 and 309 frames, 519 is 640x480 and 751
            row("004_982", root / "manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4", 1, original="519"),
        ]
    )
    _, status = extract_chunk(manifest, 0, 1, "train", detector, TRAIN_FAST)
    fake = status.set_index("video_id").loc["004_982"]
    assert fake["status"] == "ok" and fake["box_source"] == "self"
    assert "751 frames at 640x480" in fake["message"] and "309 frames at 1280x720" in fake["message"]


@pytest.mark.slow
def test_reuse_can_be_switched_off(samples, detector, ffpp_result):
    root = samples / "ffpp"
    manifest = pd.DataFrame(
        [
            row("519", root / "original_sequences/youtube/c23/videos/519.mp4", 0),
            row("519_515", root / "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4", 1, original="519"),
        ]
    )
    faces, status = extract_chunk(
        manifest, 0, 1, "train", detector, {**TRAIN_FAST, "reuse_original_boxes": False}
    )
    assert list(status["box_source"]) == ["self", "self"]
    own = faces[faces["video_id"] == "519_515"]
    assert len(own) == 3
    # detected independently, yet on the same face as the original's boxes
    _, reused, _ = ffpp_result
    borrowed = reused[reused["video_id"].str.endswith("519_515")]
    for a, b in zip(own[["x0", "y0", "x1", "y1"]].values, borrowed[["x0", "y0", "x1", "y1"]].values):
        assert iou(a, b) > 0.6


@pytest.mark.slow
def test_partial_dfdc_parts(samples, detector):
    manifest = dfdc_manifest(samples)
    assert len(manifest) == 6 and (manifest["status"] == "missing").sum() == 3
    faces, status = extract_chunk(manifest, 0, 1, "train", detector, TRAIN_FAST)
    assert sorted(status["video_id"]) == sorted(manifest["video_id"])
    by_id = status.set_index("video_id")
    for video in manifest.itertuples():
        got = by_id.loc[video.video_id]
        if video.status == "missing":
            assert got["status"] == "missing" and "not on disk" in got["message"]
            assert got["faces_kept"] == 0
        else:
            # the originals are not in this partial download: detect on the fake itself
            assert got["status"] == "ok", got["message"]
            assert got["box_source"] == "self"
            assert f"original {video.original} is not in the manifest" in got["message"]
            assert got["frames_read"] == 3 and got["frames_total"] in (300, 301)
    portrait = faces[faces["video_id"] == "dfdc_train_part_0/brtujopkby"]
    assert len(portrait) >= 2
    assert (portrait["x1"] <= 1080).all() and (portrait["y1"] <= 1920).all()
    assert (portrait["y1"] > 1080).any() or (portrait["y0"] >= 0).all()
    first = portrait.iloc[0]
    assert decode_jpeg(first["jpeg"]).shape[:2] == (first["y1"] - first["y0"], first["x1"] - first["x0"])
    assert (faces["box_source"] == "self").all()


@pytest.mark.slow
def test_broken_inputs_become_status_rows_and_the_chunk_goes_on(tmp_path, samples, detector):
    data = (samples / "ffpp/original_sequences/youtube/c23/videos/004.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 50)
    good = samples / "ffpp/original_sequences/youtube/c23/videos/519.mp4"
    manifest = pd.DataFrame(
        [
            row("truncated", tmp_path / "truncated.mp4", 0),
            row("empty", tmp_path / "empty.mp4", 0),
            row("good", good, 0),
            row("text", tmp_path / "text.mp4", 1),
            row("vanished", tmp_path / "gone.mp4", 0),
        ]
    )
    faces, status = extract_chunk(manifest, 0, 1, "train", detector, TRAIN_FAST)
    got = status.set_index("video_id")
    assert got.loc["truncated", "status"] == "unreadable"
    assert got.loc["empty", "status"] == "unreadable" and "empty" in got.loc["empty", "message"]
    assert got.loc["text", "status"] == "unreadable"
    assert got.loc["vanished", "status"] == "missing" and "gone.mp4" in got.loc["vanished", "message"]
    assert got.loc["good", "status"] == "ok"
    assert set(faces["video_id"]) == {"good"} and len(faces) == 3
    write_parquet(status, tmp_path / "status.parquet", STATUS_SCHEMA)  # fits the contract
    write_parquet(faces, tmp_path / "faces.parquet", FACES_SCHEMA)


@pytest.mark.slow
def test_an_unexpected_failure_is_an_error_row(samples, monkeypatch):
    class Flaky(FaceDetector):
        def detect(self, frames, full_size=None):
            if frames[0].shape[1] == 1280:  # 004.mp4 is 1280x720
                raise RuntimeError("simulated CUDA out of memory")
            return super().detect(frames, full_size)

    root = samples / "ffpp/original_sequences/youtube/c23/videos"
    manifest = pd.DataFrame([row("004", root / "004.mp4", 0), row("519", root / "519.mp4", 0)])
    faces, status = extract_chunk(manifest, 0, 1, "train", Flaky(**FAST_DETECTION), {"frames_per_video": 1})
    got = status.set_index("video_id")
    assert got.loc["004", "status"] == "error" and "simulated CUDA" in got.loc["004", "message"]
    assert got.loc["519", "status"] == "ok"
    assert set(faces["video_id"]) == {"519"}


@pytest.mark.slow
def test_nonhuman_animation(samples, detector):
    path = samples / "nonhuman/Megamind.avi"
    faces, status = extract_video(path, "train", detector, TRAIN_FAST, label=0)
    assert status.iloc[0]["status"] in ("ok", "no_face")
    assert status.iloc[0]["frames_read"] == 3 and len(faces) == status.iloc[0]["faces_kept"]
    faces, status = extract_video(
        path, "test", detector, {"frame_step": 10, "max_frames": 12, "min_track_length": 2, "faces_per_video": 5}
    )
    assert status.iloc[0]["status"] in ("ok", "no_face", "no_track")
    assert status.iloc[0]["frames_read"] == 12


# ---------------------------------------------------------------- test flow

STREET_DETECTION = {"detect_max_side": 960, "min_face_size": 30, "batch_size": 8}
STREET_FLOW = {"frame_step": 2, "max_frames": 16, "iou_threshold": 0.5, "min_track_length": 7, "faces_per_video": 20}


@pytest.fixture(scope="module")
def street(samples):
    detector = FaceDetector.from_config(STREET_DETECTION).load()
    path = samples / "multiface/street.mp4"
    faces, status = extract_video(path, "test", detector, STREET_FLOW, label=0, video_id="multiface/street")
    return path, detector, faces, status


@pytest.mark.slow
def test_street_tracks_and_proportional_sampling(street):
    path, detector, faces, status = street
    assert status.iloc[0]["status"] == "ok", status.iloc[0]["message"]
    assert status.iloc[0]["frames_read"] == 16
    indices = every_kth_indices(105, 2, 16)
    assert set(faces["frame"]) <= set(indices)
    per_track = faces.groupby("track").size()
    assert len(per_track) >= 2, "several people walk through the street video"
    assert list(per_track.index) == list(range(len(per_track)))
    assert per_track.sum() == 20 == status.iloc[0]["faces_kept"]
    # Independent recomputation: detect, link and sample the same frames here.
    detections = detector.detect(read_frames(path, indices))
    tracks = link_tracks([found.boxes for found in detections], STREET_FLOW["iou_threshold"])
    expected = sample_track_faces(tracks, STREET_FLOW["min_track_length"], STREET_FLOW["faces_per_video"])
    assert list(per_track) == [len(members) for members in expected.values()]
    lengths = [len(tracks[i]) for i in expected]
    assert all(length > STREET_FLOW["min_track_length"] for length in lengths)
    # longer tracks never get fewer samples
    order = np.argsort(lengths)
    assert all(np.diff(np.array(list(per_track))[order]) >= 0)
    for number, members in enumerate(expected.values()):
        want = sorted((indices[p], f) for p, f in members)
        have = sorted(map(tuple, faces[faces["track"] == number][["frame", "face"]].values.tolist()))
        assert have == want
    assert faces["face_id"].is_unique
    assert_landmarks_in_crops(faces)


@pytest.mark.slow
def test_test_flow_nearest_reference_frames_are_the_frames_cut(samples, detector):
    """Under nearest_reference the test flow detects on the frames it records: detection on
    those frames read exactly gives the rows' boxes."""
    path = samples / "dfdc/dfdc_train_part_0/brtujopkby.mp4"
    flow = {"frame_step": 3, "max_frames": 8, "iou_threshold": 0.3, "min_track_length": 0, "faces_per_video": 1000,
            "frame_policy": "nearest_reference", "max_frame_offset": 1}
    faces, status = extract_video(path, "test", detector, flow, label=0, video_id="brtujopkby")
    assert status.iloc[0]["status"] == "ok", status.iloc[0]["message"]
    targets = every_kth_indices(300, 3, 8)
    assert set(faces["target_frame"]) <= set(targets)
    assert ((faces["frame"] - faces["target_frame"]).abs() <= 1).all()
    assert (faces["frame"] != faces["target_frame"]).any()  # some targets are B-frames here
    used = sorted(set(faces["frame"]))
    frames = read_frames(path, used)  # exact decoding of the frames recorded
    for index, frame, found in zip(used, frames, detector.detect(frames), strict=True):
        rows = faces[faces["frame"] == index].sort_values("face")
        expected = [detector.crop(frame, box)[1] for box in found.boxes]
        assert rows[["x0", "y0", "x1", "y1"]].to_numpy().tolist() == [list(map(float, box)) for box in expected]


@pytest.mark.slow
def test_test_flow_hands_over_every_face_it_cuts_as_it_cuts_it(street, monkeypatch):
    """on_crops gets each detected batch's faces while detection goes on: every kept face among
    them under (target_frame, face), its crop the one the row's JPEG encodes, and no face twice."""
    path, detector, faces, _ = street
    handed: list[list] = []
    events: list[str] = []
    detect = detector.detect

    def recording_detect(frames, *args, **kwargs):
        events.append("detect")
        return detect(frames, *args, **kwargs)

    def on_crops(batch):
        events.append("crops")
        handed.append(batch)

    monkeypatch.setattr(detector, "detect", recording_detect)
    again, status = extract_video(path, "test", detector, STREET_FLOW, label=0, video_id="multiface/street",
                                  on_crops=on_crops)
    assert status.iloc[0]["status"] == "ok"
    pd.testing.assert_frame_equal(faces, again)  # handing over changes nothing
    last_detect = len(events) - 1 - events[::-1].index("detect")
    assert events.index("crops") < last_detect  # handed over before detection ends
    crops = {key: crop for batch in handed for key, crop in batch}
    assert len(crops) == sum(len(batch) for batch in handed) > len(faces)  # dropped short tracks too
    for row in faces.itertuples():
        assert detector.encode(crops[(row.target_frame, row.face)]) == row.jpeg


@pytest.mark.slow
def test_second_pass_gives_the_same_crops(street, monkeypatch):
    """Past the crop memory budget the sampled frames are decoded again: same result."""
    path, detector, faces, _ = street
    monkeypatch.setattr(extract_module, "CROP_MEMORY_BUDGET", 1000)
    again, status = extract_video(path, "test", detector, STREET_FLOW, label=0, video_id="multiface/street")
    assert status.iloc[0]["status"] == "ok"
    pd.testing.assert_frame_equal(faces, again)


@pytest.mark.slow
def test_no_track_when_tracks_are_too_short(samples):
    detector = FaceDetector.from_config(STREET_DETECTION)
    flow = {**STREET_FLOW, "max_frames": 6, "min_track_length": 50}
    faces, status = extract_video(samples / "multiface/street.mp4", "test", detector, flow)
    assert status.iloc[0]["status"] == "no_track"
    assert "needs more than 50" in status.iloc[0]["message"]
    assert status.iloc[0]["faces_detected"] > 0 and len(faces) == 0


# ---------------------------------------------------------------- chunks, status merge, scripts


def test_chunks_keep_fakes_with_their_originals(samples):
    manifest = pd.concat([ffpp_manifest(samples), dfdc_manifest(samples)], ignore_index=True)
    chunks = 4
    seen = []
    for chunk in range(chunks):
        rows = chunk_rows(manifest, chunk, chunks)
        seen += list(rows["video_id"])
        for video in rows.itertuples():
            key = video.original if isinstance(video.original, str) else video.video_id
            assert chunk_of(key, chunks) == chunk
    assert sorted(seen) == sorted(manifest["video_id"])


def test_missing_rows_need_no_decoding_and_every_row_is_reported(samples):
    manifest = dfdc_manifest(samples)
    manifest = manifest[manifest["status"] == "missing"]
    statuses = [extract_chunk(manifest, c, 3, "train", FAST_DETECTION, TRAIN_FAST)[1] for c in range(3)]
    merged = merge_status(manifest, statuses)
    assert sorted(merged["video_id"]) == sorted(manifest["video_id"])
    assert (merged["status"] == "missing").all()


def test_bad_arguments_are_rejected():
    manifest = pd.DataFrame([row("a", "/nowhere/a.mp4", 0)])
    with pytest.raises(ValueError, match="flow"):
        extract_chunk(manifest, 0, 1, "sideways", FAST_DETECTION, {})
    with pytest.raises(ValueError, match="frames_per_vidoe"):
        extract_chunk(manifest, 0, 1, "train", FAST_DETECTION, {"frames_per_vidoe": 3})
    with pytest.raises(ValueError, match="chunk 5"):
        extract_chunk(manifest, 5, 2, "train", FAST_DETECTION, {})
    with pytest.raises(ValueError, match="more than once"):
        extract_chunk(pd.concat([manifest, manifest]), 0, 1, "train", FAST_DETECTION, {})


def _status(video_id, status="ok", label=0, faces_kept=0):
    return {
        "dataset": "d", "video_id": video_id, "path": f"{video_id}.mp4", "label": label, "status": status,
        "message": "", "frames_total": 10, "frames_read": 3, "faces_detected": faces_kept,
        "faces_kept": faces_kept, "box_source": "self", "seconds": 0.1,
    }


def test_merge_status_names_the_videos_that_do_not_match():
    manifest = pd.DataFrame({"video_id": ["a", "b", "c"]})
    first = pd.DataFrame([_status("a"), _status("b")])
    with pytest.raises(ValueError, match=r"no status row: \['c'\]"):
        merge_status(manifest, [first])
    with pytest.raises(ValueError, match=r"more than one status row: \['b'\]"):
        merge_status(manifest, [first, pd.DataFrame([_status("b"), _status("c")])])
    with pytest.raises(ValueError, match=r"not in the manifest: \['z'\]"):
        merge_status(manifest, [first, pd.DataFrame([_status("c"), _status("z")])])
    merged = merge_status(manifest, [first, pd.DataFrame([_status("c")])])
    assert list(merged["video_id"]) == ["a", "b", "c"]


def test_summary_counts_per_status_and_label():
    status = pd.DataFrame(
        [_status("a", "ok", 0, 10), _status("b", "ok", 1, 7), _status("c", "ok", 1, 3),
         _status("d", "no_face", 1), _status("e", "missing", 0)]
    )
    summary = summarize_status(status).set_index(["status", "label"])
    assert summary.loc[("ok", "1"), "videos"] == 2 and summary.loc[("ok", "1"), "faces_kept"] == 10
    assert summary.loc[("ok", "all"), "videos"] == 3 and summary.loc[("ok", "all"), "faces_kept"] == 20
    assert summary.loc[("no_face", "1"), "videos"] == 1
    assert summary.loc[("missing", "all"), "videos"] == 1


@pytest.mark.slow
def test_snakemake_scripts(tmp_path, samples):
    root = samples / "ffpp/original_sequences/youtube/c23/videos"
    manifest = pd.DataFrame(
        [
            row("519", root / "519.mp4", 0),
            row("lost", tmp_path / "lost.mp4", 1, status="missing", message="not on disk"),
        ]
    )
    write_parquet(manifest, tmp_path / "manifest.parquet", MANIFEST_SCHEMA)
    params = {"faces_columns": FACES_SCHEMA.names, "flow": "train", "detection": FAST_DETECTION,
              "flow_settings": {"frames_per_video": 2}, "chunks": 1}
    extract = SimpleNamespace(
        input=SimpleNamespace(manifest=str(tmp_path / "manifest.parquet")),
        output=SimpleNamespace(faces=str(tmp_path / "000.parquet"), status=str(tmp_path / "000.status.parquet")),
        params=SimpleNamespace(extraction=params),
        wildcards=SimpleNamespace(chunk="000"),
        threads=1,
        log=[str(tmp_path / "logs" / "extract.log")],
    )
    runpy.run_path(str(REPO / "workflow/scripts/extract_faces.py"), init_globals={"snakemake": extract})
    faces = pd.read_parquet(tmp_path / "000.parquet")
    assert len(faces) == 2 and set(faces["video_id"]) == {"519"}
    assert "519: ok" in (tmp_path / "logs" / "extract.log").read_text()

    summary = SimpleNamespace(
        input=SimpleNamespace(
            manifest=str(tmp_path / "manifest.parquet"), status=[str(tmp_path / "000.status.parquet")]
        ),
        output=SimpleNamespace(status=str(tmp_path / "status.parquet"), summary=str(tmp_path / "summary.csv")),
        log=[str(tmp_path / "logs" / "summary.log")],
    )
    runpy.run_path(str(REPO / "workflow/scripts/extraction_summary.py"), init_globals={"snakemake": summary})
    counts = pd.read_csv(tmp_path / "summary.csv", dtype={"label": str}).set_index(["status", "label"])
    assert counts.loc[("ok", "0"), "videos"] == 1 and counts.loc[("ok", "0"), "faces_kept"] == 2
    assert counts.loc[("missing", "1"), "videos"] == 1
    assert len(pd.read_parquet(tmp_path / "status.parquet")) == 2
