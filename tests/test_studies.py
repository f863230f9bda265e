"""Aggregation, calibration and ensemble records against scikit-learn and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.metrics import log_loss, roc_auc_score

from facesleuth.evaluate import studies as S
from facesleuth.evaluate.metrics import equal_error_rate, evaluate


def _manifest(labels: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "t", "video_id": list(labels), "label": list(labels.values()),
                         "tags": [[] for _ in labels], "status": "ok"})


def test_aggregation_metrics_by_hand():
    manifest = _manifest({"a": 1, "b": 0, "c": 1, "d": 0, "e": 1})
    faces = pd.DataFrame({
        "video_id": ["a", "a", "a", "b", "b", "c", "c", "d"],
        "track":    [0,   0,   1,   0,   1,   0,   0,   0],
        "score":    [0.2, 0.4, 0.9, 0.3, 0.1, 0.6, 0.8, 0.7],
    })
    # e has no face: it takes the no-face score 0.5
    by_hand = {
        "mean": [0.5, 0.2, 0.7, 0.7, 0.5],
        "max_track_mean": [0.9, 0.3, 0.7, 0.7, 0.5],  # a: tracks 0.3 and 0.9; b: 0.3 and 0.1
        "top2_mean": [0.65, 0.2, 0.7, 0.7, 0.5],
    }
    result = S.aggregation_metrics(faces, None, manifest, list(by_hand), 0.5)
    y = [1, 0, 1, 0, 1]
    for name, scores in by_hand.items():
        assert result[name]["log_loss"] == pytest.approx(log_loss(y, scores)), name
        assert result[name]["auc"] == pytest.approx(roc_auc_score(y, scores)), name
        assert result[name]["n_videos"] == 5


def _videos(labels, scores) -> pd.DataFrame:
    ids = [f"v{i}" for i in range(len(labels))]
    return pd.DataFrame({"dataset": "t", "video_id": ids, "label": labels, "tags": [[] for _ in ids],
                         "status": "ok", "n_faces": 2, "score": scores, "scored": True})


def test_calibrated_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    scores = special.expit(3 * (labels - 0.5) + rng.normal(0, 2, 200))
    validation = _videos(labels[:100], scores[:100])
    test = _videos(labels[100:], scores[100:])
    calibration = S.fit_calibration(validation, "mean")
    assert calibration["validation_log_loss_after"] <= calibration["validation_log_loss_before"]
    record = S.calibrated_metrics(test, calibration)
    t = calibration["temperature"]
    assert record["log_loss_before"] == pytest.approx(log_loss(labels[100:], scores[100:]))
    assert record["log_loss_after"] == pytest.approx(log_loss(labels[100:], special.expit(special.logit(scores[100:]) / t)))
    # temperature scaling is monotonic: the ranking, and so the AUC, stays
    calibrated = special.expit(special.logit(scores[100:]) / t)
    assert roc_auc_score(labels[100:], calibrated) == pytest.approx(roc_auc_score(labels[100:], scores[100:]))


def test_ensemble_validation_and_metrics():
    labels = [0, 0, 0, 1, 1, 1]
    first = _videos(labels, [0.1, 0.4, 0.35, 0.8, 0.3, 0.9])
    second = _videos(labels, [0.3, 0.2, 0.6, 0.7, 0.65, 0.5])
    videos, threshold, calibration = S.ensemble_validation([first, second], "mean_probability", "mean", "pair")
    mean = [0.2, 0.3, 0.475, 0.75, 0.475, 0.7]
    np.testing.assert_allclose(videos["score"], mean)
    eer, at = equal_error_rate(labels, mean)
    assert threshold["eer_threshold"] == pytest.approx(at) and threshold["eer"] == pytest.approx(eer)
    assert threshold["ensemble_method"] == "mean_probability" and calibration["temperature"] > 0
    # an ensemble of one run has that run's metrics
    _, alone = S.ensemble_metrics([first], "mean_logit", {"eer_threshold": 0.5}, "solo", ["m/none"])
    reference = evaluate(first, 0.5)
    assert alone["auc"] == pytest.approx(reference["auc"]) and alone["log_loss"] == pytest.approx(reference["log_loss"])
    assert alone["at_threshold"]["validation"]["f1"] == pytest.approx(reference["at_threshold"]["validation"]["f1"])
    assert alone["members"] == ["m/none"] and alone["ensemble"] == "solo"
