"""Temperature scaling of a run's video scores (thesis 3.3: log loss rewards calibrated probabilities).

The thesis ranks runs by video log loss (Table 3.1), which punishes confident mistakes; a
model fine-tuned with cross-entropy on faces is rarely calibrated on videos. Temperature
scaling fits one number per run: with ``z = logit(p)`` the calibrated probability is
``sigmoid(z / T)``. It is monotonic, so ROC-AUC, the EER and every ranking stay as they were;
only log loss (and where a fixed probability threshold falls) changes.

What is fitted: the *video* scores of the validation split, after aggregation, because the
thesis's log loss is per video. Scaling face logits before averaging would optimise a face-level
loss the thesis never reports, and the mean of calibrated faces is not a calibrated video.
A softmax over two classes is ``sigmoid(z1 - z0)``, so ``logit(p)`` is exactly the logit
difference a face-level temperature would divide; for the video score it is the logit of the
aggregated probability.

The fit minimises the validation log loss over the inverse temperature ``b = 1 / T``; the loss
is convex in ``b`` (logistic regression on one feature without intercept), so Newton's method
finds the global minimum. ``b`` is kept within ``[1 / MAX_TEMPERATURE, 1 / MIN_TEMPERATURE]``:
an uninformative run (``b`` wanting to be 0 or negative) gets the largest temperature, scores
close to 0.5, instead of flipped scores. ``T = 1`` is inside the interval, so the fitted
temperature never raises the validation log loss.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from facesleuth.evaluate.metrics import EPS, MetricsError, video_log_loss

log = logging.getLogger(__name__)

MIN_TEMPERATURE = 1e-2
MAX_TEMPERATURE = 1e2
_NEWTON_STEPS = 100
_TOLERANCE = 1e-12


def logit(probabilities) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped as the log loss clips it (so 0 and 1 stay finite)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    # exp of a negative number only: no overflow for large |values|
    exp_neg_abs = np.exp(-np.abs(values))
    return np.where(values >= 0, 1.0 / (1.0 + exp_neg_abs), exp_neg_abs / (1.0 + exp_neg_abs))


def apply_temperature(probabilities, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``sigmoid(logit(p) / T)``; NaN stays NaN."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"the temperature must be a positive number, got {temperature!r}")
    return sigmoid(logit(probabilities) / float(temperature))


def _mean_loss(z: np.ndarray, y: np.ndarray, b: float) -> float:
    """Mean log loss of ``sigmoid(b z)``, computed stably as ``log(1 + exp(-s b z))``."""
    signed = np.where(y == 1, 1.0, -1.0) * b * z
    return float(np.mean(np.logaddexp(0.0, -signed)))


def _loss_derivatives(z: np.ndarray, y: np.ndarray, b: float) -> tuple[float, float]:
    """First and second derivative of the mean log loss of ``sigmoid(b z)`` in ``b``."""
    p = sigmoid(b * z)
    gradient = float(np.mean((p - y) * z))
    curvature = float(np.mean(p * (1 - p) * z * z))
    return gradient, curvature


def fit_temperature(y_true, y_prob) -> float:
    """The temperature ``T`` that minimises the log loss of ``sigmoid(logit(y_prob) / T)``.

    ``y_true``: 0 real, 1 fake; ``y_prob``: the run's (uncalibrated) video scores. Raises
    :class:`~facesleuth.evaluate.metrics.MetricsError` on empty input, one class or non-finite scores.
    """
    y_prob = np.asarray(y_prob, dtype=np.float64).ravel()
    # the metrics' own checks (labels 0/1, equal lengths, finite scores) with their messages
    video_log_loss(y_true, y_prob)
    y = np.asarray(y_true, dtype=np.float64).ravel()
    if y.min() == y.max():
        raise MetricsError("calibration needs real and fake validation videos; they are all of one class")
    z = logit(y_prob)
    low, high = 1.0 / MAX_TEMPERATURE, 1.0 / MIN_TEMPERATURE
    b = 1.0
    for _ in range(_NEWTON_STEPS):
        gradient, curvature = _loss_derivatives(z, y, b)
        if curvature <= 0:  # every logit 0 (all scores 0.5): the loss does not depend on b
            break
        step = gradient / curvature
        current = _mean_loss(z, y, b)
        new_b = min(max(b - step, low), high)
        # damped: halve the step until the loss does not rise (plain Newton can overshoot on
        # nearly separable scores, where the loss flattens out)
        while _mean_loss(z, y, new_b) > current and abs(new_b - b) > _TOLERANCE:
            new_b = b + (new_b - b) / 2
        if abs(new_b - b) <= _TOLERANCE * max(1.0, b):
            b = new_b
            break
        b = new_b
    return float(1.0 / b)


def calibration_record(y_true, y_prob, aggregation: str) -> dict[str, Any]:
    """JSON-ready fit: the temperature and the validation log loss before and after it."""
    temperature = fit_temperature(y_true, y_prob)
    before = video_log_loss(y_true, y_prob)
    after = video_log_loss(y_true, apply_temperature(y_prob, temperature))
    log.info("temperature %.4g: validation log loss %.4f -> %.4f (%s aggregation)", temperature, before, after,
             aggregation)
    return {
        "method": "temperature",
        "temperature": temperature,
        "aggregation": aggregation,
        "n_videos": int(np.asarray(y_true).size),
        "validation_log_loss_before": before,
        "validation_log_loss_after": after,
        "source": "validation",
    }
