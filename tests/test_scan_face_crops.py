"""A trained run's face-crop settings (run.yaml ``face_crops``) are the scanner's by default.

The run is trained with crops unlike the schema's defaults (margin 12 px at detect_max_side 192,
against 30 px at 960), as the embedded demo trains; a scan cuts its faces the same way, a
``--config`` overrides the keys it writes, and the output says which settings were used.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
from scan_helpers import make_trained_run

from facesleuth.cli import main as facesleuth_main
from facesleuth.config import extraction_settings, face_crop_settings
from facesleuth.scan import Scanner, ScanOptions, load_scan_run
from facesleuth.scan.schema import DOCUMENT_SCHEMA

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VIDEO = "ffpp/original_sequences/youtube/c23/videos/004.mp4"
# The schema's defaults but for the margin and the detection resolution.
RUN_CROPS = {"detect_max_side": 192, "thresholds": [0.6, 0.7, 0.7], "min_detection_size": 20,
             "min_probability": 0.9, "min_face_size": 70, "margin": 12, "jpeg_quality": 95}


@pytest.fixture(scope="module")
def cropped_run(samples, tmp_path_factory) -> Path:
    return make_trained_run(samples, tmp_path_factory.mktemp("cropped_run") / "mobilenetv3_small_050-none",
                            face_crops=RUN_CROPS)


def scan_document(run: Path, video: Path, folder: Path, *config: str) -> dict:
    report = folder / "report.json"
    code = facesleuth_main(["scan", str(video), "--model", str(run), *config, "--format", "json",
                            "--output", str(report), "--frames", "4", "--no-progress"])
    assert code == 0
    document = json.loads(report.read_text())
    jsonschema.validate(document, DOCUMENT_SCHEMA)
    return document


def test_the_crop_settings_are_the_detection_settings_that_change_faces():
    defaults = face_crop_settings(extraction_settings(None)["detection"])
    assert defaults == {"detect_max_side": 960, "thresholds": [0.6, 0.7, 0.7], "min_detection_size": 20,
                        "min_probability": 0.9, "min_face_size": 70, "margin": 30, "jpeg_quality": 95}


@pytest.mark.slow
def test_a_scan_cuts_faces_as_the_run_was_trained_and_a_config_overrides(cropped_run, samples, tmp_path):
    video = samples / VIDEO
    by_run = scan_document(cropped_run, video, tmp_path)
    assert by_run["settings"]["face_crops"] == {"source": "run", **RUN_CROPS}
    assert by_run["settings"]["detection"]["detect_max_side"] == 192

    config = tmp_path / "margin.yaml"
    config.write_text("extraction:\n  detection:\n    margin: 40\n")
    by_config = scan_document(cropped_run, video, tmp_path, "--config", str(config))
    # the config's margin; what it does not write stays the run's
    assert by_config["settings"]["face_crops"] == {"source": "config", **RUN_CROPS, "margin": 40}

    # Same detections at 192 px, so each crop is the run's crop grown by 40 - 12 = 28 px on
    # every side, clipped to the frame.
    [run_result], [config_result] = by_run["results"], by_config["results"]
    assert run_result["status"] == config_result["status"] == "ok"
    width, height = run_result["width"], run_result["height"]
    run_boxes = {(face["frame"], face["face"]): face["box"] for face in run_result["faces"]}
    config_boxes = {(face["frame"], face["face"]): face["box"] for face in config_result["faces"]}
    assert run_boxes and set(run_boxes) == set(config_boxes)
    for key, (x0, y0, x1, y1) in run_boxes.items():
        assert config_boxes[key] == [max(0, x0 - 28), max(0, y0 - 28), min(width, x1 + 28), min(height, y1 + 28)]


def test_a_run_without_a_record_cuts_with_the_package_defaults(cropped_run):
    recorded = load_scan_run(cropped_run, "cpu")
    assert recorded.face_crops == RUN_CROPS
    older = dataclasses.replace(recorded, face_crops=None)  # as a run trained before runs recorded them
    scanner = Scanner(older, ScanOptions(device="cpu"))
    assert (scanner.detector.margin, scanner.detector.detect_max_side) == (30, 960)
    assert scanner.options.describe()["face_crops"] == {
        "source": "defaults", "detect_max_side": 960, "thresholds": [0.6, 0.7, 0.7], "min_detection_size": 20,
        "min_probability": 0.9, "min_face_size": 70, "margin": 30, "jpeg_quality": 95}
