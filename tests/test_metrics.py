"""Video metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from facesleuth.evaluate import metrics as M


@pytest.fixture
def random_videos():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    # fakes score higher on average, with overlap, so every metric is away from its extremes
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.01, 0.99)  # inside (0, 1): sklearn clips differently
    return y, score


def test_log_loss_matches_sklearn(random_videos):
    y, score = random_videos
    assert M.video_log_loss(y, score) == pytest.approx(skm.log_loss(y, score), rel=1e-12)


def test_log_loss_clips_certain_mistakes():
    # one fake scored 0 and one real scored 1: each contributes about -log(1e-15) = 34.539 after
    # clipping (1 - 1e-15 is not exact in floating point, hence the tolerance)
    value = M.video_log_loss([1, 0], [0.0, 1.0])
    assert value == pytest.approx(-np.log(1e-15), rel=1e-4)
    assert np.isfinite(value)


def test_log_loss_by_hand():
    # -(log 0.8 + log(1 - 0.4)) / 2
    assert M.video_log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_auc_and_roc_match_sklearn(random_videos):
    y, score = random_videos
    assert M.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score))
    fpr, tpr, thresholds = M.roc_curve(y, score)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thresholds[1:], sk_thr[1:])
    assert np.isinf(sk_thr[0]) and np.isfinite(thresholds[0]) and thresholds[0] > score.max()


def test_eer_interpolated_by_hand():
    # reals 0.2, 0.6, 0.3; fakes 0.5, 0.9. Walking thresholds down:
    #   >= 0.9: FPR 0,   FNR 1/2  (gap -1/2)
    #   >= 0.6: FPR 1/3, FNR 1/2  (gap -1/6)
    #   >= 0.5: FPR 1/3, FNR 0    (gap +1/3)
    # the crossing lies t = (1/6) / (1/6 + 1/3) = 1/3 of the way from 0.6 to 0.5:
    #   EER = 1/3 (FPR constant there; FNR 1/2 - 1/3 * 1/2 = 1/3), threshold = 0.6 - 0.1/3 = 0.56667
    eer, threshold = M.equal_error_rate([0, 0, 0, 1, 1], [0.2, 0.6, 0.3, 0.5, 0.9])
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.6 - 0.1 / 3)


def test_eer_exact_point_and_perfect_separation():
    # reals 0.1, 0.4; fakes 0.35, 0.8: at >= 0.4 FPR = FNR = 1/2 exactly
    assert M.equal_error_rate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx((0.5, 0.4))
    # perfectly separated: EER 0 at the lowest fake score
    assert M.equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == pytest.approx((0.0, 0.7))


def test_eer_rates_are_equal_at_returned_threshold(random_videos):
    y, score = random_videos
    eer, threshold = M.equal_error_rate(y, score)
    fpr, tpr, _ = skm.roc_curve(y, score)
    fnr = 1 - tpr
    # the EER lies between the two rates on either side of the crossing
    i = np.argmax(fpr >= fnr)
    assert min(fpr[i - 1], fnr[i]) - 1e-9 <= eer <= max(fpr[i], fnr[i - 1]) + 1e-9
    assert 0.1 < eer < 0.4 and 0.3 < threshold < 0.8


def test_threshold_metrics_match_sklearn(random_videos):
    y, score = random_videos
    threshold = 0.5
    predicted = (score >= threshold).astype(int)
    assert M.sensitivity(y, score, threshold) == pytest.approx(skm.recall_score(y, predicted, pos_label=1))
    assert M.specificity(y, score, threshold) == pytest.approx(skm.recall_score(y, predicted, pos_label=0))
    assert M.f1(y, score, threshold) == pytest.approx(skm.f1_score(y, predicted, pos_label=1))
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
    assert M.confusion_at(y, score, threshold) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_threshold_is_inclusive():
    # a score equal to the threshold is called fake
    assert M.confusion_at([1, 0], [0.5, 0.49], 0.5) == {"tp": 1, "fp": 0, "tn": 1, "fn": 0}


@pytest.mark.parametrize("func", [M.roc_auc, M.equal_error_rate, M.roc_curve])
def test_one_class_and_empty_raise(func):
    with pytest.raises(M.MetricsError, match="no real videos"):
        func([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(M.MetricsError, match="no fake videos"):
        func([0, 0], [0.2, 0.5])
    with pytest.raises(M.MetricsError, match="empty"):
        func([], [])


def test_bad_labels_and_nan_scores_raise():
    with pytest.raises(M.MetricsError, match="labels must be 0"):
        M.video_log_loss([0, -1], [0.2, 0.3])
    with pytest.raises(M.MetricsError, match="NaN"):
        M.roc_auc([0, 1], [0.2, np.nan])


def _videos(labels, scores, tags=None, scored=None):
    n = len(labels)
    return pd.DataFrame(
        {
            "dataset": "t",
            "video_id": [f"v{i}" for i in range(n)],
            "label": labels,
            "tags": tags if tags is not None else [[] for _ in range(n)],
            "status": "ok",
            "n_faces": 5,
            "score": scores,
            "scored": scored if scored is not None else [True] * n,
        }
    )


def test_error_rates_by_tag_by_hand():
    videos = _videos(
        labels=[1, 1, 1, 0, 0, 0],
        scores=[0.9, 0.2, 0.3, 0.1, 0.8, 0.4],
        tags=[
            ["augmenter:noise"],  # fake, right
            ["augmenter:noise", "distractor:dots"],  # fake, wrong (0.2 < 0.5)
            [],  # fake, wrong
            ["distractor:dots"],  # real, right
            ["distractor:dots"],  # real, wrong (0.8 >= 0.5)
            [],  # real, right
        ],
    )
    table = M.error_rates_by_tag(videos, 0.5).set_index(["tag", "label"])
    assert table.loc[("augmenter:noise", "fake"), "percent"] == pytest.approx(50.0)
    assert table.loc[("augmenter:noise", "fake"), "kind"] == "augmenter"
    assert table.loc[("augmenter:noise", "fake"), "name"] == "noise"
    assert table.loc[("distractor:dots", "fake"), "percent"] == pytest.approx(100.0)
    assert table.loc[("distractor:dots", "real"), "percent"] == pytest.approx(50.0)
    assert table.loc[("distractor:dots", "real"), "videos"] == 2
    assert table.loc[("none", "fake"), "percent"] == pytest.approx(100.0)
    assert table.loc[("none", "real"), "percent"] == pytest.approx(0.0)
    assert ("augmenter:noise", "real") not in table.index  # absent, not NaN
    assert not table["percent"].isna().any()


def test_evaluate_reports_both_thresholds_and_counts(random_videos):
    y, score = random_videos
    score = score.copy()
    scored = [True] * len(y)
    scores = list(score)
    scores[0], scored[0] = 0.5, False  # no face, no-face score: kept
    scores[1], scored[1] = None, False  # no face, no score: left out, counted
    labels = list(y)
    labels[2] = -1  # unknown label: left out, counted
    videos = _videos(labels, scores, scored=scored)
    result = M.evaluate(videos, validation_threshold=0.45)
    kept = videos.drop(index=[1, 2])
    assert result["n_videos"]["evaluated"] == len(y) - 2
    assert result["n_videos"]["unscored"] == 1 and result["n_videos"]["unlabelled"] == 1
    assert result["n_videos"]["fallback_score"] == 1
    assert result["n_videos"]["fakes"] == int((kept["label"] == 1).sum())
    assert result["log_loss"] == pytest.approx(skm.log_loss(kept["label"], kept["score"].astype(float)))
    assert result["auc"] == pytest.approx(skm.roc_auc_score(kept["label"], kept["score"].astype(float)))
    eer, eer_threshold = M.equal_error_rate(kept["label"], kept["score"].astype(float))
    assert result["eer_threshold"] == pytest.approx(eer_threshold)
    assert result["validation_threshold"] == 0.45
    at = result["at_threshold"]
    assert at["validation"]["threshold"] == 0.45 and at["test_eer"]["threshold"] == pytest.approx(eer_threshold)
    predicted = (kept["score"].astype(float) >= 0.45).astype(int)
    assert at["validation"]["f1"] == pytest.approx(skm.f1_score(kept["label"], predicted))
    assert set(result["errors_by_tag"]) == {"validation", "test_eer"}
    assert result["errors_by_tag"]["validation"][0]["tag"] == "none"
    assert len(result["roc"]["fpr"]) <= M.MAX_ROC_POINTS
    assert result["roc"]["fpr"][0] == 0.0 and result["roc"]["tpr"][-1] == 1.0
    json.dumps(result, allow_nan=False)  # plain JSON: no NaN, no inf


def test_evaluate_one_class_and_empty_raise():
    with pytest.raises(M.MetricsError, match="no real videos"):
        M.evaluate(_videos([1, 1], [0.3, 0.9]), 0.5)
    with pytest.raises(M.MetricsError, match="no video can be evaluated"):
        M.evaluate(_videos([1, 0], [None, None], scored=[False, False]), 0.5)
    with pytest.raises(M.MetricsError, match="1 videos have faces but a NaN score"):
        M.evaluate(_videos([1, 0, 0], [0.3, float("nan"), 0.2]), 0.5)
    with pytest.raises(M.MetricsError, match="finite"):
        M.evaluate(_videos([1, 0], [0.3, 0.9]), float("nan"))
