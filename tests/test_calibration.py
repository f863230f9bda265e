"""Temperature scaling against an independent minimiser (scipy on scikit-learn's log loss)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special
from sklearn.metrics import log_loss, roc_auc_score

from facesleuth.evaluate import calibration as C
from facesleuth.evaluate.metrics import MetricsError


def _videos(scale: float, seed: int = 5, n: int = 300):
    """Labels and scores ``sigmoid(scale * z)`` with ``z`` informative but noisy.

    The true log-odds are ``z``; ``scale`` > 1 makes the scores overconfident (the fitted
    temperature should come out near ``scale``), < 1 underconfident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < special.expit(z)).astype(int)
    return y, special.expit(scale * z)


def _scipy_temperature(y, p) -> float:
    logits = special.logit(p)
    result = optimize.minimize_scalar(
        lambda t: log_loss(y, special.expit(logits / t), labels=[0, 1]),
        bounds=(C.MIN_TEMPERATURE, C.MAX_TEMPERATURE), method="bounded", options={"xatol": 1e-8},
    )
    return float(result.x)


@pytest.mark.parametrize("scale", [3.0, 0.4, 1.0])
def test_temperature_matches_scipy_and_lowers_the_loss(scale):
    y, p = _videos(scale)
    temperature = C.fit_temperature(y, p)
    assert temperature == pytest.approx(_scipy_temperature(y, p), rel=1e-4)
    before = log_loss(y, p)
    after = log_loss(y, special.expit(special.logit(p) / temperature))
    assert after <= before + 1e-12
    if scale != 1.0:  # a miscalibrated run gains visibly, and T lands on the right side of 1
        assert after < before - 0.01
        assert (temperature > 1) == (scale > 1)


def test_apply_temperature_by_hand():
    # p = 0.8: logit = log 4; T = 2 -> sigmoid(log 4 / 2) = sigmoid(log 2) = 2/3
    assert C.apply_temperature([0.8], 2.0)[0] == pytest.approx(2 / 3)
    # T = 1 leaves scores alone; monotonic, so AUC is unchanged
    y, p = _videos(2.0)
    np.testing.assert_allclose(C.apply_temperature(p, 1.0), p, rtol=1e-12)
    assert roc_auc_score(y, C.apply_temperature(p, 3.7)) == pytest.approx(roc_auc_score(y, p))


def test_scores_of_zero_and_one_stay_finite():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([1.0, 0.0, 0.9, 0.2, 0.0, 1.0])  # two certain mistakes: the fit softens them
    temperature = C.fit_temperature(y, p)
    calibrated = C.apply_temperature(p, temperature)
    assert np.all(np.isfinite(calibrated)) and temperature > 1
    record = C.calibration_record(y, p, "mean")
    assert record["validation_log_loss_after"] < record["validation_log_loss_before"]


def test_uninformative_scores_get_the_largest_temperature_not_flipped():
    # fakes score lower than reals: the best b = 1/T would be negative; it is held at 1/MAX
    y = np.array([1, 1, 0, 0])
    p = np.array([0.2, 0.3, 0.7, 0.8])
    assert C.fit_temperature(y, p) == pytest.approx(C.MAX_TEMPERATURE)


def test_one_class_and_bad_temperatures_are_refused():
    with pytest.raises(MetricsError, match="one class"):
        C.fit_temperature([1, 1], [0.4, 0.9])
    with pytest.raises(ValueError, match="positive"):
        C.apply_temperature([0.5], 0.0)
