"""The scanner's calibrated probability, --aggregation and ensembles, on a real tiny run.

Expected values are recomputed here from the run folder's own files with scipy and pandas
(temperature scaling, aggregation, the EER threshold), not taken from the scanner.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from scan_helpers import make_calibrated_copy, make_trained_run
from scipy import special

from facesleuth.cli import main as facesleuth_main
from facesleuth.evaluate.ensembles import write_spec
from facesleuth.evaluate.metrics import equal_error_rate
from facesleuth.scan import Scanner, ScanOptions
from facesleuth.scan.schema import DOCUMENT_SCHEMA, RESULT_SCHEMA

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DETECTION = {"detect_max_side": 480}


@pytest.fixture(scope="module")
def calibrated_run(samples, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scan_studies")
    run = make_trained_run(samples, root / "mobilenetv3_small_050-none")
    return make_calibrated_copy(run, root / "calibrated")


def _scan(run, samples, **options):
    scanner = Scanner(run, ScanOptions(frames=4, device="cpu", detection=DETECTION, **options))
    return scanner, scanner.scan_file(samples / "images" / "multiface.jpg")


def test_the_score_is_the_calibrated_probability_and_says_so(calibrated_run, samples):
    temperature = json.loads((calibrated_run / "calibration.json").read_text())["temperature"]
    raw_threshold = json.loads((calibrated_run / "threshold.json").read_text())["eer_threshold"]
    scanner, result = _scan(calibrated_run, samples)
    faces = [face.score for face in result.faces]
    assert result.status == "ok" and result.calibrated and scanner.run.calibrated
    assert result.raw_score == pytest.approx(np.mean(faces), abs=1e-5)
    expected = special.expit(special.logit(np.mean(faces)) / temperature)
    # The reported face scores are rounded to 6 decimals, so their mean is off by up to 5e-7, which the
    # calibration multiplies by its slope there: about 20 where the fitted temperature is 0.05 (the
    # tiny run's training, and with it the temperature, differs from run to run). Allowed: 1e-5 as
    # everywhere, plus twice that rounding through the slope.
    slope = expected * (1 - expected) / (temperature * np.mean(faces) * (1 - np.mean(faces)))
    assert result.score == pytest.approx(expected, abs=1e-5 + 1e-6 * slope)
    assert result.threshold == pytest.approx(special.expit(special.logit(raw_threshold) / temperature))
    assert result.verdict == ("fake" if result.raw_score >= raw_threshold else "real")
    jsonschema.validate(result.to_dict(), RESULT_SCHEMA)
    described = scanner.run.describe()
    assert described["calibrated"] and described["temperature"] == pytest.approx(temperature)

    _, plain = _scan(calibrated_run, samples, calibrate=False)
    assert not plain.calibrated and plain.score == pytest.approx(result.raw_score, abs=1e-6)
    assert plain.threshold == pytest.approx(raw_threshold)


def test_another_aggregation_gets_its_own_threshold(calibrated_run, samples):
    scanner, result = _scan(calibrated_run, samples, aggregation="max", calibrate=False)
    assert result.aggregation == "max"
    assert result.score == pytest.approx(max(face.score for face in result.faces), abs=1e-5)
    # the threshold chosen again, on the validation faces' per-video maxima
    faces = pd.read_parquet(calibrated_run / "validation.faces.parquet")
    videos = faces.groupby("video_id").agg(label=("label", "first"), score=("score", "max"))
    _, threshold = equal_error_rate(videos["label"], videos["score"])
    assert scanner.run.raw_threshold == pytest.approx(threshold)
    assert any("chosen again" in note for note in scanner.run.notes)


def test_an_ensemble_of_one_run_twice_scans_as_that_run(calibrated_run, samples, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(calibrated_run, twin)
    _, single = _scan(calibrated_run, samples, calibrate=False)
    for method in ("mean_probability", "mean_logit"):
        scanner, pair = _scan([calibrated_run, twin], samples, calibrate=False, ensemble_method=method)
        assert len(scanner.run.members) == 2 and scanner.run.ensemble_method == method
        assert pair.score == pytest.approx(single.score, abs=1e-5)
        assert [f.score for f in pair.faces] == pytest.approx([f.score for f in single.faces], abs=1e-5)
        # its threshold comes from the members' validation scores: the run's own here
        assert pair.threshold == pytest.approx(single.threshold, abs=1e-6)

    folder = tmp_path / "ensembles" / "pair"
    folder.mkdir(parents=True)
    write_spec(folder, "pair", [calibrated_run, twin], "mean_logit")
    scanner, from_folder = _scan(folder, samples)
    assert scanner.run.name == "ensemble pair" and from_folder.calibrated
    assert from_folder.raw_score == pytest.approx(single.score, abs=1e-5)


def test_cli_takes_several_models_and_an_aggregation(calibrated_run, samples, tmp_path, capsys):
    twin = tmp_path / "twin"
    shutil.copytree(calibrated_run, twin)
    out = tmp_path / "scan.json"
    code = facesleuth_main(["scan", str(samples / "images" / "multiface.jpg"), "--model", str(calibrated_run),
                            "--model", str(twin), "--aggregation", "top2_mean", "--frames", "4", "--no-progress",
                            "--format", "json", "--output", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    jsonschema.validate(document, DOCUMENT_SCHEMA)
    result = document["results"][0]
    assert document["model"]["members"] and document["model"]["ensemble_method"] == "mean_probability"
    top2 = np.mean(sorted(face["score"] for face in result["faces"])[-2:])
    assert result["aggregation"] == "top2_mean" and result["raw_score"] == pytest.approx(top2, abs=1e-5)
    assert result["calibrated"]
    assert facesleuth_main(["scan", str(samples / "images" / "multiface.jpg"), "--model", str(calibrated_run),
                            "--aggregation", "mode"]) == 2
    assert "--aggregation must be one of" in capsys.readouterr().err
