"""``facesleuth scan``: real samples through a real trained run; statuses, formats, exit codes.

One tiny run is trained per session (scan_helpers.make_trained_run). Videos are scanned with few
frames and detection at 480 px so the module stays within CI's budget on 2 cores.
"""

from __future__ import annotations

import base64
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scan_helpers import (
    FAST_DETECTION_YAML,
    copy_without_threshold,
    make_trained_run,
    truncated_copy,
)

from facesleuth.cli import main as facesleuth_main
from facesleuth.scan import (
    RUN_FOLDER_HELP,
    RunFolderError,
    Scanner,
    ScanOptions,
    load_scan_run,
    scan_paths,
)
from facesleuth.scan.discover import discover
from facesleuth.scan.schema import DOCUMENT_SCHEMA, RESULT_SCHEMA
from facesleuth.extract.video import every_kth_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FFPP_VIDEOS = [
    "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
    "ffpp/manipulated_sequences/FaceSwap/c23/videos/634_660.mp4",
    "ffpp/manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
    "ffpp/original_sequences/youtube/c23/videos/004.mp4",
    "ffpp/original_sequences/youtube/c23/videos/519.mp4",
    "ffpp/original_sequences/youtube/c23/videos/634.mp4",
]
DFDC_VIDEOS = {  # path: (width, height)
    "dfdc/dfdc_train_part_0/brtujopkby.mp4": (1080, 1920),  # portrait
    "dfdc/dfdc_train_part_10/widuwuoiur.mp4": (1920, 1080),
    "dfdc/dfdc_train_part_10/yhffcuhhjy.mp4": (720, 1280),
}
FAST = ["--frames", "4", "--no-progress"]  # --threads auto: 1 on a busy CI machine


@pytest.fixture(scope="session")
def scan_run(samples, tmp_path_factory) -> Path:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_trained_run(samples, tmp_path_factory.mktemp("scan_run") / "mobilenetv3_small_050-none")
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scan_config") / "config.yaml"
    path.write_text(FAST_DETECTION_YAML)
    return path


@pytest.fixture(scope="module")
def scanner(scan_run) -> Scanner:
    return Scanner(scan_run, ScanOptions(frames=4, device="cpu", detection={"detect_max_side": 480}, thumbnails=2))


def scan_cli(*argv: str) -> int:
    return facesleuth_main(["scan", *map(str, argv)])


def check_scored(result: dict, threshold: float) -> None:
    """Invariants of an ``ok`` result: faces inside the frame, mean score, verdict at the threshold."""
    assert result["status"] == "ok", result
    scores = [face["score"] for face in result["faces"]]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    assert result["score"] == pytest.approx(np.mean(scores), abs=1e-5)
    assert result["verdict"] == ("fake" if result["score"] >= threshold else "real")
    for face in result["faces"]:
        x0, y0, x1, y1 = face["box"]
        assert 0 <= x0 < x1 <= result["width"] and 0 <= y0 < y1 <= result["height"], (face, result["path"])
        assert 0 <= face["frame"] < (result["frames_total"] or 1)


# ---------------------------------------------------------------------------- the samples


@pytest.mark.slow
def test_ffpp_dfdc_and_image_scan_to_a_valid_json_report(scan_run, fast_config, samples, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = scan_cli(samples / "ffpp", samples / "dfdc", samples / "images" / "ex_deepfakes.png",
                    "--model", scan_run, "--config", fast_config, "--format", "json", "--output", report, *FAST)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == ""  # the document went to --output
    document = json.loads(report.read_text())
    jsonschema.validate(document, DOCUMENT_SCHEMA)

    threshold = json.loads((scan_run / "threshold.json").read_text())["eer_threshold"]
    assert document["model"]["threshold"] == pytest.approx(threshold)
    assert document["model"]["threshold_source"] == "validation" and document["model"]["aggregation"] == "mean"
    assert document["model"]["trained_on"] == ["samples"] and document["settings"]["frames"] == 4
    assert document["settings"]["detection"]["detect_max_side"] == 480
    # the run records no crop settings; the config's are reported as such
    assert document["settings"]["face_crops"]["source"] == "config"
    assert document["settings"]["face_crops"]["detect_max_side"] == 480
    assert (document["settings"]["frame_policy"], document["settings"]["max_frame_offset"]) == ("nearest_reference", 2)
    by_path = {Path(r["path"]).relative_to(samples).as_posix(): r for r in document["results"]}
    assert set(by_path) == {*FFPP_VIDEOS, *DFDC_VIDEOS, "images/ex_deepfakes.png"}  # folders walked
    # the DFDC parts' metadata.json are neither video nor image: skipped, and said so
    assert sorted(Path(p).name for p in document["summary"]["skipped_files"]) == ["metadata.json"] * 3
    assert document["summary"]["statuses"] == {"ok": 10} and document["summary"]["failed"] == 0

    for path, result in by_path.items():
        check_scored(result, threshold)
        if path.endswith(".mp4"):
            assert result["kind"] == "video" and 1 <= result["frames_read"] <= 4
            assert result["tracks_scored"] >= 1 and all(face["track"] is not None for face in result["faces"])
            assert "thumbnail" not in result["faces"][0]  # thumbnails are for the HTML report only
    for path, size in DFDC_VIDEOS.items():  # portrait stays portrait: boxes checked inside width x height
        assert (by_path[path]["width"], by_path[path]["height"]) == size
    image = by_path["images/ex_deepfakes.png"]
    assert image["kind"] == "image" and len(image["faces"]) == 1 and image["faces"][0]["track"] is None
    assert (image["width"], image["height"]) == (640, 480)


@pytest.mark.slow
def test_frame_policy_decides_the_frames_faces_come_from(scanner, samples):
    """DFDC is H.264 with B-frames: under nearest_reference (the default) faces come from
    frames within the bound of the sampled ones, some of them other frames; under exact, from
    the sampled frames themselves."""
    path = samples / "dfdc/dfdc_train_part_0/brtujopkby.mp4"
    sampled = every_kth_indices(300, 25, 12)  # --frames 12 of 300: every 25th
    frames = {}
    for policy in ("nearest_reference", "exact"):
        options = ScanOptions(frames=12, device="cpu", detection={"detect_max_side": 480}, frame_policy=policy)
        result = Scanner(scanner.run, options).scan_file(path)
        assert result.status == "ok", result.message
        frames[policy] = {face.frame for face in result.faces}
    assert frames["exact"] <= set(sampled)
    assert all(min(abs(frame - s) for s in sampled) <= 2 for frame in frames["nearest_reference"])
    assert frames["nearest_reference"] - set(sampled), "no sampled frame of this video is a B-frame?"


@pytest.mark.slow
def test_street_video_yields_several_tracks(scanner, samples):
    # 32 frames (the default) of 105: people walking towards the camera stay tracked 4 frames apart
    street = Scanner(scanner.run, ScanOptions(frames=32, device="cpu", detection={"detect_max_side": 640}))
    result = street.scan_file(samples / "multiface" / "street.mp4")
    assert result.status == "ok" and "no face was tracked" not in result.message, result.message
    tracks = {face.track for face in result.faces}
    assert result.tracks_scored == len(tracks) >= 2
    assert result.tracks >= result.tracks_scored
    per_frame = {}
    for face in result.faces:
        per_frame.setdefault(face.frame, set()).add(face.track)
    assert max(len(t) for t in per_frame.values()) >= 2  # two people in one frame, on different tracks
    assert result.score == pytest.approx(np.mean([f.score for f in result.faces]), abs=1e-5)
    assert f"from {len(tracks)} of {result.tracks} tracks" in result.message


def test_video_faces_and_scores_are_the_pipelines(scanner, scan_run, samples):
    """The scan equals the pipeline's test flow (extract_video) scored by predict_faces (load_run)."""
    from facesleuth.extract.flows import extract_video
    from facesleuth.evaluate.inference import load_run
    from facesleuth.evaluate.predict import predict_faces

    video = samples / "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"
    result = scanner.scan_file(video)
    assert result.status == "ok" and result.frames_total == 751
    flow = {"frame_step": math.ceil(751 / 4), "max_frames": 4, "iou_threshold": 0.3, "min_track_length": 0,
            "faces_per_video": 50,  # and the scanner's frame policy
            "frame_policy": scanner.options.frame_policy, "max_frame_offset": scanner.options.max_frame_offset}
    faces, status = extract_video(video, "test", {"detect_max_side": 480, "device": "cpu"}, flow)
    assert status.iloc[0]["status"] == "ok"
    model, info = load_run(scan_run, "cpu")
    pipeline = {(row.frame, row.face): (row, score)
                for row, score in zip(faces.itertuples(), predict_faces(model, info, faces, "cpu"))}
    assert {(f.frame, f.face) for f in result.faces} <= set(pipeline)
    for face in result.faces:
        row, score = pipeline[(face.frame, face.face)]
        assert face.box == (row.x0, row.y0, row.x1, row.y1) and face.track == row.track
        assert face.score == pytest.approx(float(score), abs=1e-5)


@pytest.mark.slow
def test_decoding_in_the_scanning_thread_finds_the_same_faces(scanner, samples, monkeypatch):
    """decode_ahead=False (a one-thread service worker) starts no decoding thread and scans the
    same frames, faces and scores as decoding ahead (whose batches ramp up from one frame: the
    same faces whatever the batches)."""
    import threading

    started = []
    real_start = threading.Thread.start

    def recording_start(thread):
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    path = samples / "dfdc/dfdc_train_part_0/brtujopkby.mp4"
    results = {}
    for ahead in (True, False):
        started.clear()
        options = ScanOptions(frames=12, device="cpu", detection={"detect_max_side": 480}, decode_ahead=ahead)
        results[ahead] = Scanner(scanner.run, options).scan_file(path)
        assert results[ahead].status == "ok", results[ahead].message
        assert ("facesleuth-prefetch" in started) == ahead, started
    ahead, inline = results[True], results[False]
    assert [(f.frame, f.face, f.box, f.track) for f in inline.faces] == [
        (f.frame, f.face, f.box, f.track) for f in ahead.faces]
    assert [f.score for f in inline.faces] == pytest.approx([f.score for f in ahead.faces], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("video, frames, detect_max_side", [
    ("multiface/street.mp4", 32, 640),  # short tracks dropped: faces scored ahead that the scan does not report
    ("dfdc/dfdc_train_part_0/brtujopkby.mp4", 12, 480),  # B-frames: faces from frames other than the sampled
])
def test_classifying_ahead_gives_the_same_scores(scanner, samples, monkeypatch, video, frames, detect_max_side):
    """classify_ahead (faces scored in a second thread while later frames are detected) reports
    the same faces and scores as scoring after detection, and uses what it scored ahead; off, no
    such thread scores."""
    import threading
    import time

    import facesleuth.scan.scanner as scanner_module

    scored_in: list[tuple[str, int]] = []  # (thread, faces) of each call of the classifier
    predict_crops = scanner_module.predict_crops

    def recording_predict_crops(model, info, crops, *args, **kwargs):
        scored_in.append((threading.current_thread().name, len(crops)))
        return predict_crops(model, info, crops, *args, **kwargs)

    class ScoresAheadToTheEnd(scanner_module.ScoresAhead):
        """Finishes only once every face handed over is scored, so no face is left to the scan."""

        handed_over = 0

        def submit(self, faces):
            self.handed_over += len(faces)
            super().submit(faces)

        def finish(self):
            deadline = time.monotonic() + 60
            while len(self._scores) < self.handed_over and time.monotonic() < deadline:
                time.sleep(0.01)
            return super().finish()

    monkeypatch.setattr(scanner_module, "predict_crops", recording_predict_crops)
    monkeypatch.setattr(scanner_module, "ScoresAhead", ScoresAheadToTheEnd)
    results, threads = {}, {}
    for ahead in (True, False):
        scored_in.clear()
        options = ScanOptions(frames=frames, device="cpu", detection={"detect_max_side": detect_max_side},
                              classify_ahead=ahead)
        results[ahead] = Scanner(scanner.run, options).scan_file(samples / video)
        assert results[ahead].status == "ok", results[ahead].message
        threads[ahead] = {}
        for name, count in scored_in:
            threads[ahead][name] = threads[ahead].get(name, 0) + count
    here = threading.current_thread().name
    assert threads[False] == {here: len(results[False].faces)}
    assert set(threads[True]) <= {here, "facesleuth-scores-ahead"}
    # every face reported was scored ahead and taken from there
    assert here not in threads[True] and threads[True]["facesleuth-scores-ahead"] >= len(results[True].faces)
    ahead, after = results[True], results[False]
    if "street" in video:
        assert ahead.tracks > ahead.tracks_scored
    else:
        sampled = set(every_kth_indices(300, math.ceil(300 / frames), frames))
        assert {f.frame for f in ahead.faces} - sampled
    assert [(f.frame, f.face, f.box, f.track) for f in ahead.faces] == [
        (f.frame, f.face, f.box, f.track) for f in after.faces]
    assert [f.score for f in ahead.faces] == pytest.approx([f.score for f in after.faces], abs=1e-6)
    assert ahead.score == pytest.approx(after.score, abs=1e-6) and ahead.verdict == after.verdict


def test_short_tracks_fall_back_to_scoring_every_track(scanner, samples):
    # IoU above 0.99 between frames 3 s apart never holds: every face is its own 1-frame track.
    strict = Scanner(scanner.run, ScanOptions(frames=4, device="cpu", detection={"detect_max_side": 480},
                                              iou_threshold=0.99, min_track_fraction=0.5))
    result = strict.scan_file(samples / "ffpp/original_sequences/youtube/c23/videos/519.mp4")
    assert result.status == "ok" and result.tracks == result.tracks_scored == len(result.faces) >= 2
    assert "no face was tracked over more than 2 of 4 sampled frames" in result.message


def test_images_score_each_face_and_report_no_face(scanner, samples):
    group = scanner.scan_file(samples / "images" / "multiface.jpg")
    assert group.status == "ok" and group.kind == "image" and len(group.faces) >= 2
    assert [f.face for f in group.faces] == list(range(len(group.faces)))
    assert group.score == pytest.approx(np.mean([f.score for f in group.faces]), abs=1e-5)
    # thumbnails (HTML) for the 2 most suspicious faces only, as real JPEGs
    with_thumbs = [f for f in group.faces if f.thumbnail]
    assert len(with_thumbs) == 2 and min(f.score for f in with_thumbs) >= max(
        f.score for f in group.faces if not f.thumbnail)
    assert base64.b64decode(with_thumbs[0].thumbnail)[:3] == b"\xff\xd8\xff"

    mask = scanner.scan_file(samples / "images" / "ex_deepfakes_mask.png")  # a black and white mask
    assert (mask.status, mask.score, mask.verdict, mask.faces) == ("no_face", None, None, [])
    assert "min_face_size" in mask.message and not mask.failed


# ---------------------------------------------------------------------------- bad inputs


@pytest.fixture
def mixed_folder(samples, tmp_path) -> Path:
    folder = tmp_path / "uploads"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "b" / "holiday.dat").write_bytes((samples / "images" / "ex_original.png").read_bytes())
    (folder / "clip.mp4").write_text("this is a text file with a video's name\n")
    (folder / "notes.txt").write_text("not media, no media name: skipped inside a folder\n")
    (folder / "empty.mov").write_bytes(b"")
    # moov atom at the end: the cut file cannot be opened at all
    truncated_copy(samples / "ffpp/original_sequences/youtube/c23/videos/519.mp4", folder / "cut.mp4", 0.3)
    # an AVI opens without its index: it holds fewer frames than its header promises
    truncated_copy(samples / "nonhuman/Megamind.avi", folder / "a" / "cut.avi", 0.3)
    return folder


def test_mixed_folder_as_json_lines(scan_run, fast_config, mixed_folder, tmp_path, capsys):
    text_file = tmp_path / "readme.txt"
    text_file.write_text("hello\n")
    missing = tmp_path / "gone.mp4"
    code = scan_cli(mixed_folder, text_file, missing, "--model", scan_run, "--config", fast_config, "--jsonl", *FAST)
    captured = capsys.readouterr()
    assert code == 1  # some inputs could not be scanned
    lines = captured.out.splitlines()
    results = [json.loads(line) for line in lines]
    for result in results:
        jsonschema.validate(result, RESULT_SCHEMA)
    by_name = {Path(r["path"]).name: r for r in results}
    assert len(lines) == len(results) == len(by_name) == 7  # one line per input; notes.txt skipped
    assert by_name["holiday.dat"]["status"] == "ok" and by_name["holiday.dat"]["kind"] == "image"  # by content
    assert by_name["clip.mp4"]["status"] == "unsupported" and "named like media" in by_name["clip.mp4"]["message"]
    assert by_name["readme.txt"]["status"] == "unsupported"  # named explicitly: reported
    assert by_name["gone.mp4"]["status"] == "missing" and "check the path" in by_name["gone.mp4"]["message"]
    assert by_name["empty.mov"]["status"] == "unreadable" and "empty" in by_name["empty.mov"]["message"]
    assert by_name["cut.mp4"]["status"] == "unreadable" and by_name["cut.mp4"]["kind"] == "video"
    # the frames the cut AVI holds are scanned, and the result says the file is short of its header
    cut_avi = by_name["cut.avi"]
    assert cut_avi["status"] in ("ok", "no_face") and cut_avi["frames_claimed"] == 270
    assert cut_avi["frames_total"] < 100 and "header claims 270 frames" in cut_avi["message"]
    assert "re-download or re-encode" in by_name["cut.mp4"]["message"]
    assert "notes.txt" not in by_name
    assert "7 inputs in" in captured.err and "1 file(s) in folders skipped" in captured.err
    # input order: the folder (sorted, recursively), then the files named after it
    assert [Path(r["path"]).name for r in results][-2:] == ["readme.txt", "gone.mp4"]


def test_html_report_names_every_input(scan_run, fast_config, samples, mixed_folder, tmp_path, capsys):
    report = tmp_path / "report.html"
    code = scan_cli(samples / "images", mixed_folder / "clip.mp4", tmp_path / "gone.png", "--model", scan_run,
                    "--config", fast_config, "--format", "html", "-o", report, "--html-faces", "3", *FAST)
    assert code == 1
    assert capsys.readouterr().out == ""

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.text, self.images, self.stack = [], [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.images.append(dict(attrs)["src"])

        def handle_data(self, data):
            self.text.append(data)

    page = report.read_text()
    parser = Collect()
    parser.feed(page)
    parser.close()
    text = " ".join(parser.text)
    inputs = [samples / "images" / name for name in
              ("ex_deepfakes.png", "ex_deepfakes_mask.png", "ex_original.png", "multiface.jpg")]
    for path in [*inputs, mixed_folder / "clip.mp4", tmp_path / "gone.png"]:
        assert str(path) in text, path
    assert "missing" in text and "unsupported" in text and "no_face" in text
    assert parser.images and all(src.startswith("data:image/jpeg;base64,") for src in parser.images)
    assert base64.b64decode(parser.images[0].split(",", 1)[1])[:3] == b"\xff\xd8\xff"
    # at most 3 thumbnails per input: 1 + 1 + 3 for the two FF++ frames and the group photo
    assert len(parser.images) == 5
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:|#)', page)  # self-contained


def test_table_is_the_default_output(scan_run, fast_config, samples, tmp_path, capsys):
    code = scan_cli(samples / "images" / "ex_original.png", tmp_path / "nothing.mp4", "--model", scan_run,
                    "--config", fast_config, *FAST)
    out = capsys.readouterr().out
    assert code == 1
    assert "validation EER threshold" in out and "STATUS" in out and "PATH" in out
    row = next(line for line in out.splitlines() if line.endswith("ex_original.png"))
    assert row.split()[0] == "ok" and row.split()[1] in ("FAKE", "REAL")
    assert "missing" in out and "-> no such file or folder" in out
    assert "2 inputs in" in out and "1 failed (1 missing)" in out


# ---------------------------------------------------------------------------- the run folder, exit codes


def test_run_without_threshold_uses_half_and_says_so(scan_run, samples, tmp_path, capsys):
    bare = copy_without_threshold(scan_run, tmp_path / "bare")
    run = load_scan_run(bare / "best.pt", "cpu")  # the checkpoint alone is enough
    assert (run.threshold, run.threshold_source) == (0.5, "default")
    assert any("threshold.json" in note and "snakemake" in note for note in run.notes)
    assert run.input_size == 64 and run.info["model"] == "mobilenetv3_small_050"
    code = scan_cli(samples / "images" / "ex_original.png", "--model", bare, *FAST)
    out = capsys.readouterr().out
    assert code == 0
    assert ">= 0.5000 (default threshold: the run has no threshold.json)" in out


def test_usage_errors_exit_2_and_say_what_to_do(scan_run, samples, tmp_path, capsys):
    image = samples / "images" / "ex_original.png"
    not_a_run = tmp_path / "not_a_run"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("x")
    broken = tmp_path / "broken_run"
    broken.mkdir()
    (broken / "best.pt").write_text("not a checkpoint")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("extraction:\n  detection:\n    min_face_sise: 40\n")

    def usage(*argv, expect: str) -> None:
        assert scan_cli(image, *argv) == 2, argv
        err = capsys.readouterr().err
        assert expect in err, err

    usage("--model", tmp_path / "absent", expect="snakemake results/models/<model>/<setup>/best.pt")
    usage("--model", not_a_run, expect="it has no best.pt")
    usage("--model", broken, expect="cannot load")
    usage("--model", scan_run, "--frames", "0", expect="--frames must be at least 1")
    usage("--model", scan_run, "--iou", "1.5", expect="--iou")
    usage("--model", scan_run, "--max-frame-offset", "-1", expect="--max-frame-offset must be 0 or more")
    usage("--model", scan_run, "--threads", "0", expect="--threads must be a positive number or auto")
    usage("--model", scan_run, "--format", "json", "--jsonl", expect="contradict")
    usage("--model", scan_run, "--config", bad_config, expect="min_face_sise")
    usage("--model", scan_run, "--config", tmp_path / "nope.yaml", expect="no such file")
    usage("--model", scan_run, "--output", tmp_path / "no" / "dir" / "x.json", expect="does not exist")
    usage("--model", scan_run, "--output", tmp_path, expect="is a folder")
    import torch

    if not torch.cuda.is_available():
        usage("--model", scan_run, "--device", "cuda", expect="no CUDA GPU")
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        scan_cli(image, "--model", scan_run, "--frames", "many")
    assert exit_info.value.code == 2
    with pytest.raises(RunFolderError, match="threshold.json"):
        bad_threshold = copy_without_threshold(scan_run, tmp_path / "bad_threshold")
        (bad_threshold / "threshold.json").write_text("{}")
        load_scan_run(bad_threshold, "cpu")
    assert "snakemake results/models/<model>/<setup>/best.pt" in RUN_FOLDER_HELP


def test_scan_paths_is_a_generator_in_input_order(scan_run, samples, scanner):
    images = samples / "images"
    results = scan_paths([images / "ex_original.png", images, images / "ex_original.png"], scanner.run,
                         ScanOptions(frames=2, device="cpu"))
    assert iter(results) is results
    paths = [Path(r.path).name for r in results]
    # the file named first is not scanned again inside the folder, nor when named twice
    assert paths == ["ex_original.png", "ex_deepfakes.png", "ex_deepfakes_mask.png", "multiface.jpg"]


def test_discover_walks_sorted_and_keeps_named_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "c.bin").write_text("c")
    found = discover([tmp_path, tmp_path / "b" / "z.txt", tmp_path / "missing.mp4"])
    assert [(c.path.relative_to(tmp_path).as_posix(), c.explicit) for c in found] == [
        ("a.txt", False), ("c.bin", False), ("b/z.txt", True), ("missing.mp4", True)]


def test_scan_is_registered_and_help_is_light(capsys):
    import subprocess
    import sys

    from facesleuth.cli import SUBCOMMANDS

    assert SUBCOMMANDS["scan"].module == "facesleuth.cli.scan"
    code = ("import sys, facesleuth.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'cv2', 'timm', 'pandas') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
