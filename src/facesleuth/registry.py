"""The names the package and the workflow share, each written here once.

- augmentation setups (name, label in the tables, caption wording, chain builder, thesis figure);
- training precisions;
- video statuses of extraction and of the scanner;
- face-score aggregations, ensemble methods, perturbation families, inference backends, media
  suffixes, the kinds of validation data.

The config schema's enums, the workflow's ``aug`` wildcard and the command line's choices are
built from these entries. The thesis's tables and figures are catalogued beside the report code
(:mod:`facesleuth.report.catalog`); settings derived from a config live in :mod:`facesleuth.config`.

The registry imports nothing of the package, so every module may look names up here. Builders
are named as ``"module:function"`` and imported when called: reading the registry (the Snakefile
does it while planning) imports neither pandas, matplotlib nor albumentations.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Builder = Callable[..., Any]


def resolve(builder: str | Builder) -> Builder:
    """The function a ``"module:function"`` reference names (a callable is returned as is)."""
    if callable(builder):
        return builder
    module, _, name = builder.partition(":")
    return getattr(importlib.import_module(module), name)


# ---------------------------------------------------------------- augmentation setups


@dataclass(frozen=True)
class AugmentationSetup:
    """One augmentation setup of the study (thesis 2.3)."""

    name: str
    #: column header in the tables, e.g. "Default + CoarseDropout"
    label: str
    #: how report captions say a model was trained with it, e.g. "with the default chain plus ..."
    trained: str
    #: ``(params, input_size) -> list of albumentations transforms`` (None: no augmentation)
    chain: str | Builder
    #: thesis number of its DFDC log-loss figure (Figs. 3.3-3.6); None for a setup of our own
    logloss_figure: str | None = None
    #: whether its runs read the config's ``augmentations`` section (not for ``none``)
    augments: bool = True
    #: ``(split_path, input_size, augmentation, seed, training) -> dataset``: a setup that changes
    #: what a run trains on, not only how faces are augmented (None: the split's train faces)
    train_set: str | Builder | None = None
    #: ``(crop, landmarks, input_size, compose, seed) -> [(title, image)]``: panels of its own in
    #: the augmentation examples figure (Fig. 2.12), in place of its one-draw panel
    examples: str | Builder | None = None


AUGMENTATION_SETUPS: dict[str, AugmentationSetup] = {
    setup.name: setup
    for setup in (
        AugmentationSetup(
            "none", "No augmentation", "without augmentation", "facesleuth.train.augment:no_chain", "Fig. 3.3", augments=False
        ),
        AugmentationSetup(
            "default", "Default", "with the default augmentation chain (Table 2.2)",
            "facesleuth.train.augment:default_setup_chain", "Fig. 3.4",
        ),
        AugmentationSetup(
            "coarse", "Default + CoarseDropout", "with the default chain plus CoarseDropout",
            "facesleuth.train.augment:coarse_chain", "Fig. 3.6",
        ),
        AugmentationSetup(
            "grid", "Default + GridDropout", "with the default chain plus GridDropout",
            "facesleuth.train.augment:grid_chain", "Fig. 3.5",
        ),
        AugmentationSetup(
            "sbi", "Self-blended images", "on self-blended fakes (SBI) with the default chain",
            "facesleuth.train.augment:default_setup_chain", None, train_set="facesleuth.train.data:self_blended_train_set",
            examples="facesleuth.report.figures:self_blend_examples",
        ),
    )
}

# ---------------------------------------------------------------- precisions

#: Training precisions: fp16 is autocast + GradScaler (the thesis), bf16 autocast, fp32 none.
PRECISIONS: tuple[str, ...] = ("fp16", "bf16", "fp32")


# ---------------------------------------------------------------- frame policies

#: Which decoded frame stands for a sampled frame index (facesleuth.extract.video.FramePolicy).
#: Experiment trackers a run can log to (facesleuth.train.experiments) and W&B's modes there.
TRACKING_BACKENDS: tuple[str, ...] = ("mlflow", "wandb", "tensorboard")
WANDB_MODES: tuple[str, ...] = ("auto", "offline", "online")

#: What runs the face classifier (facesleuth.evaluate.inference), in the scanner and the service
#: (auto by default) and in the workflow's predictions (evaluation.backend, torch by default):
#: auto picks, on a CPU, openvino when OpenVINO is installed, else onnx when ONNX Runtime is,
#: else torch.
AUTO_BACKEND = "auto"
INFERENCE_BACKENDS: tuple[str, ...] = (AUTO_BACKEND, "torch", "onnx", "openvino")

FRAME_POLICIES: dict[str, str] = {
    "exact": "the frame at the sampled index itself",
    "nearest_reference": ("the nearest frame decoded with non-reference frames skipped, within max_frame_offset "
                          "of the sampled index (the exact frame where none is)"),
}
#: Which frames the scanner samples unless told otherwise (ScanOptions, and the --frames,
#: --frame-policy and --max-frame-offset of scan, serve and worker): a frame or two away changes
#: no track on frames a third of a second apart, and halves decoding of H.264 with B-frames.
SCAN_FRAMES = 32
SCAN_FRAME_POLICY = "nearest_reference"
MAX_FRAME_OFFSET = 2


def require_implemented(kind: str, listed: Iterable[str], implemented: Iterable[str]) -> None:
    """Fail on import of an implementing module whose names differ from the registry's list.

    The registry lists the names (what the config schema, the rules and ``--help`` offer without
    importing the code); each implementation registers itself beside its code and calls this, so
    the two cannot drift apart unnoticed.
    """
    listed, implemented = list(listed), list(implemented)
    if listed != implemented:
        raise RuntimeError(f"{kind}: the registry lists {listed}, the implementation has {implemented}")


def setup_names() -> tuple[str, ...]:
    return tuple(AUGMENTATION_SETUPS)


def setup_label(aug: str) -> str:
    """Table label of a run's ``aug``: a setup, or ``<setup>-<precision>`` of the precision study."""
    setup, _, precision = aug.partition("-")
    entry = AUGMENTATION_SETUPS.get(setup)
    label = entry.label if entry else setup
    return f"{label} ({precision.upper()})" if precision else label


def aug_pattern() -> str:
    """The ``aug`` wildcard: a grid run is named after its setup; precision-study runs add ``-<precision>``."""
    setups = "|".join(map(re.escape, AUGMENTATION_SETUPS))
    precisions = "|".join(map(re.escape, PRECISIONS))
    return rf"({setups})(-({precisions}))?"


# ---------------------------------------------------------------- media files

#: File names that promise a video or an image. The manifests list a dataset's videos by these
#: names (datasets ship videos only; any container FFmpeg reads may hold one), and the scanner
#: reports a file so named even when its content is no media (it recognises media by content).
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".3gp", ".3g2", ".ogv", ".asf",
})
IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif",
})


# ---------------------------------------------------------------- perturbations

#: The robustness tables' column of the unperturbed test set (scored by the usual predictions).
CLEAN = "clean"
#: Families of the robustness suite's perturbations, implemented in facesleuth.extract.perturb (each
#: with one parameter; the config lists the values to test per family).
PERTURBATION_FAMILIES: tuple[str, ...] = ("jpeg", "downscale", "blur", "noise", "framerate", "h264")


def _check_family(name: str) -> None:
    if name not in PERTURBATION_FAMILIES:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATION_FAMILIES)}")


def format_value(value: float) -> str:
    """A parameter value as names and axis labels write it: 70, 1.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def perturbation_name(family: str, value: float) -> str:
    """``jpeg_70``, ``blur_1.5``: the name of one perturbation at one severity."""
    _check_family(family)
    return f"{family}_{format_value(value)}"


def parse_perturbation(name: str) -> tuple[str, float]:
    """``jpeg_70`` -> ("jpeg", 70.0); the inverse of :func:`perturbation_name`."""
    family, sep, value = name.rpartition("_")
    if not sep:
        raise ValueError(f"a perturbation is named family_value (e.g. jpeg_70), got {name!r}")
    _check_family(family)
    try:
        return family, float(value)
    except ValueError:
        raise ValueError(f"perturbation {name!r}: {value!r} is not a number") from None


def perturbation_names(settings: dict[str, list[float]]) -> list[str]:
    """Names of every family x value in ``settings`` ({family: [values]}), in the given order."""
    return [perturbation_name(family, value) for family, values in settings.items() for value in values]


# ---------------------------------------------------------------- baselines

#: The ``aug`` of a baseline's rows: a published detector (config ``baselines``) scored under the
#: study's protocol but not trained by the pipeline, so it has no augmentation setup.
BASELINE = "baseline"
#: How a baseline's name must look: it names files and the workflow's ``baseline`` wildcard.
BASELINE_NAME = re.compile(r"[A-Za-z0-9_.]+")


# ---------------------------------------------------------------- aggregations and ensembles

#: How a video's face scores become its score (implemented in :data:`facesleuth.evaluate.predict.AGGREGATIONS`;
#: the scanner also takes ``top<k>_mean`` for any k).
AGGREGATIONS: dict[str, str] = {
    "mean": "the mean fake confidence of the sampled faces (the thesis)",
    "median": "the median face score",
    "max": "the highest face score",
    "top_mean": "the mean of the highest quarter of the face scores",
    "top3_mean": "the mean of the 3 faces scored most fake",
    "max_track_mean": "the largest mean score of one tracked person (a video is as fake as its most suspicious person)",
}

#: How an ensemble joins its runs' video scores (implemented in :mod:`facesleuth.evaluate.ensembles`).
ENSEMBLE_METHODS: dict[str, str] = {
    "mean_probability": "the mean of the members' fake probabilities",
    "mean_logit": "the sigmoid of the mean of the members' logits (geometric mean of the odds)",
}

# ---------------------------------------------------------------- video statuses

OK = "ok"
NO_FACE = "no_face"
NO_TRACK = "no_track"
UNREADABLE = "unreadable"
EMPTY = "empty"
UNSUPPORTED = "unsupported"
MISSING = "missing"
TOO_LARGE = "too_large"
TOO_LONG = "too_long"
TIMED_OUT = "timed_out"
ERROR = "error"

#: What each status means, for the documentation and error messages.
STATUS_MEANINGS: dict[str, str] = {
    OK: "faces were found and kept",
    NO_FACE: "no face passed the detector's filters",
    NO_TRACK: "faces were found but no track was long enough (test flow)",
    UNREADABLE: "the file cannot be decoded (not a video or image, truncated or corrupt)",
    EMPTY: "the file holds no decodable frame (a kind of unreadable file)",
    UNSUPPORTED: "not something the scanner reads (a device, pipe, or a file of another type)",
    MISSING: "the file does not exist",
    TOO_LARGE: "a frame or image has more pixels than the limit (max_pixels); nothing was decoded",
    TOO_LONG: "the video lasts longer (max_seconds) or needs more frames decoded (max_frames) than the limits",
    TIMED_OUT: "scanning the input took longer than the wall-clock limit per input (input_seconds)",
    ERROR: "a fault of facesleuth itself; the message says which (the traceback with --verbose)",
}
#: Status of one video in results/faces/<dataset>/*.status.parquet.
EXTRACTION_STATUSES: tuple[str, ...] = (OK, NO_FACE, NO_TRACK, UNREADABLE, MISSING, TOO_LARGE, TOO_LONG, TIMED_OUT,
                                        ERROR)
#: Status of one input of ``facesleuth scan``.
SCAN_STATUSES: tuple[str, ...] = (OK, NO_FACE, UNREADABLE, UNSUPPORTED, MISSING, TOO_LARGE, TOO_LONG, TIMED_OUT,
                                  ERROR)
#: Scan statuses of inputs that could not be scanned (exit code 1).
FAILED_SCAN_STATUSES: frozenset[str] = frozenset({UNREADABLE, UNSUPPORTED, MISSING, TOO_LARGE, TOO_LONG, TIMED_OUT,
                                                  ERROR})
#: Statuses of inputs past one of the limits on what one input may cost (facesleuth.extract.video.MediaLimits).
LIMIT_STATUSES: tuple[str, ...] = (TOO_LARGE, TOO_LONG, TIMED_OUT)
#: Kinds of :class:`facesleuth.extract.video.VideoError`.
VIDEO_ERRORS: tuple[str, ...] = (UNREADABLE, EMPTY, TOO_LARGE, TOO_LONG, TIMED_OUT)

# ---------------------------------------------------------------- validation data

#: ``validation.kind`` of threshold.json: a dataset of its own (DFDC's validation set, test
#: flow) or a hold-out of the train-flow faces.
VALIDATION_DATASET = "dataset"
VALIDATION_HOLDOUT = "holdout"
