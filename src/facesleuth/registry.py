"""The names the package and the workflow share, each written here once.

- augmentation setups (name, label in the tables, caption wording, chain builder, thesis figure);
- training precisions;
- video statuses of extraction and of the scanner;
- the thesis's tables and figures: builder, report caption, thesis number, the config they need.

The config schema's enums, the workflow's ``aug`` wildcard, its table rules, its targets, the
report captions and labels, and the dispatch of :func:`facesleuth.report.tables.make_table` and
:func:`facesleuth.report.figures.make_figures` are all built from these entries, so adding a setup or
a table means an entry here and its builder, nothing else. (A new figure also needs its rule in
workflow/rules/figures.smk, where each figure's inputs are spelled out.)

Builders are named as ``"module:function"`` and imported when called: reading the registry (the
Snakefile does it while planning) imports neither pandas, matplotlib nor albumentations.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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

#: What runs the scanner's face classifier (facesleuth.scan.inference): auto picks onnx on a CPU
#: with onnxruntime installed, torch otherwise.
AUTO_BACKEND = "auto"
INFERENCE_BACKENDS: tuple[str, ...] = (AUTO_BACKEND, "torch", "onnx")

FRAME_POLICIES: dict[str, str] = {
    "exact": "the frame at the sampled index itself",
    "nearest_reference": ("the nearest frame decoded with non-reference frames skipped, within max_frame_offset "
                          "of the sampled index (the exact frame where none is)"),
}


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


def robustness_plan(config: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """The robustness suite's test sets, runs (model/setup) and perturbation names (family_value)
    as the config asks, its defaults filled in; None without a ``robustness`` section."""
    settings = config.get("robustness")
    if not settings:
        return None
    runs = [f"{model}/{setup}" for model in config["models"] for setup in config["augmentation_setups"]]
    return {
        "testsets": list(settings.get("testsets") or config["evaluation"]["testsets"]),
        "runs": list(settings.get("runs") or runs),
        "perturbations": perturbation_names(settings["perturbations"]),
    }


def robustness_cells(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every test set x run x (``clean`` + perturbation): the robustness tables' inputs, in order,
    followed by the baselines' cells (:func:`baseline_cells`)."""
    plan = robustness_plan(config) or {"testsets": [], "runs": [], "perturbations": []}
    return [
        {"testset": testset, "run": run, "perturbation": perturbation}
        for testset in plan["testsets"]
        for run in plan["runs"]
        for perturbation in [CLEAN, *plan["perturbations"]]
    ] + baseline_cells(config)

# ---------------------------------------------------------------- baselines

#: The ``aug`` of a baseline's rows: a published detector (config ``baselines``) scored under the
#: study's protocol but not trained by the pipeline, so it has no augmentation setup.
BASELINE = "baseline"
#: How a baseline's name must look: it names files and the workflow's ``baseline`` wildcard.
BASELINE_NAME = re.compile(r"[A-Za-z0-9_.]+")


def baselines(config: Mapping[str, Any]) -> dict[str, str]:
    """The config's baselines as ``name -> source`` (a built-in detector's name or a run folder).

    ``baselines`` is a map ``name: source``, or a list of sources each named after itself (a
    run folder after its last path component).
    """
    entries = config.get("baselines") or {}
    if isinstance(entries, Mapping):
        return {str(name): str(source) for name, source in entries.items()}
    return {str(source).rstrip("/").rsplit("/", 1)[-1]: str(source) for source in entries}


def baseline_cells(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The robustness cells of the baselines: every robustness test set x baseline x (``clean`` +
    perturbation), ``run`` being ``<name>/baseline`` and ``baseline`` the name."""
    plan = robustness_plan(config)
    if not plan:
        return []
    return [
        {"testset": testset, "run": f"{name}/{BASELINE}", "perturbation": perturbation, "baseline": name}
        for testset in plan["testsets"]
        for name in baselines(config)
        for perturbation in [CLEAN, *plan["perturbations"]]
    ]


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

# ---------------------------------------------------------------- tables and figures

#: What a table or figure may need from the config; it is made only where the config has it.
NEEDS = {
    "dfdc_testset": lambda config: bool(config["evaluation"].get("dfdc_testset")),
    "celebdf_testset": lambda config: bool(config["evaluation"].get("celebdf_testset")),
    "precision_study": lambda config: bool(config.get("precision_study")),
    "robustness": lambda config: bool(config.get("robustness")),
    # studies beyond the thesis (its discussion, 3.3), each asked for in the config
    "calibration": lambda config: bool(config["evaluation"].get("calibration"))
    and bool(calibration_testsets(config)),
    "aggregations": lambda config: bool(config["evaluation"].get("aggregations"))
    and bool(config["evaluation"].get("testsets")),
    "auc_table": lambda config: bool(config["evaluation"].get("auc_table")) and bool(config["evaluation"].get("testsets")),
    "generalisation": lambda config: bool((config.get("generalisation") or {}).get("training_sets")),
}


def generalisation_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The generalisation matrix of ``config``: training sets, models, setups, test sets, each
    training set's home test set, and its cells ``[training set, model, setup, test set]`` in the
    order the workflow lists their metrics."""
    generalisation = config.get("generalisation") or {}
    training_sets = generalisation.get("training_sets") or {}
    models = list(generalisation.get("models") or config["models"])
    setups = list(generalisation.get("setups") or config["augmentation_setups"])
    testsets = list(generalisation.get("testsets") or config["evaluation"]["testsets"])
    return {
        "training_sets": list(training_sets),
        "models": models,
        "setups": setups,
        "testsets": testsets,
        "home_testsets": {name: entry.get("home_testset") for name, entry in training_sets.items()
                          if entry.get("home_testset")},
        "cells": [[t, m, s, test] for t in training_sets for m in models for s in setups for test in testsets],
    }


def calibration_testsets(config: Mapping[str, Any]) -> list[str]:
    """The calibration table's test sets: the DFDC and Celeb-DF-v2 ones that are configured."""
    evaluation = config["evaluation"]
    return [name for name in (evaluation.get("dfdc_testset"), evaluation.get("celebdf_testset")) if name]


def loss_setup(config: Mapping[str, Any]) -> str:
    """Figs. 2.13-2.14 show the default setup, or the first configured one without it."""
    setups = config["augmentation_setups"]
    return "default" if "default" in setups else setups[0]


# ---------------------------------------------------------------- validation data

#: Where a caption names the validation data (:meth:`ReportSpec.report_caption` fills it in).
VALIDATION_PLACEHOLDER = "{validation}"
#: Added to the caption of every table and figure of tested runs that does not name the validation data.
BEST_EPOCH_NOTE = " Each run is tested with the weights of its epoch of lowest validation loss on {validation}."
#: ``validation.kind`` of threshold.json: a dataset of its own (DFDC's validation set, test
#: flow) or a hold-out of the train-flow faces.
VALIDATION_DATASET = "dataset"
VALIDATION_HOLDOUT = "holdout"


def validation_source(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the runs validate on, as threshold.json records it.

    ``{"kind": "dataset", "name": <dataset>, "flow": "test"}`` when ``splits.validation_dataset``
    is set, else ``{"kind": "holdout", "fraction": <validation_fraction>, "group_by": ..., "flow":
    "train"}``.
    """
    splits = config["splits"]
    name = splits.get("validation_dataset")
    if name:
        return {"kind": VALIDATION_DATASET, "name": name, "flow": "test"}
    return {"kind": VALIDATION_HOLDOUT, "fraction": float(splits.get("validation_fraction", 0.2)),
            "group_by": splits.get("group_by", "original"), "flow": "train"}


def describe_validation(source: Mapping[str, Any] | None) -> str:
    """A caption's words for a :func:`validation_source` (or a threshold.json's ``validation``)."""
    if not source:
        return "the validation data (not recorded)"
    if source.get("kind") == VALIDATION_DATASET:
        return f"the validation dataset {source['name']}: its test-flow faces, and video scores for thresholds"
    fraction = float(source.get("fraction", 0))
    return (f"a hold-out of {fraction:.0%} of the train-flow faces (grouped by {source.get('group_by', 'original')}), "
            "not a validation dataset of its own")


def short_validation(source: Mapping[str, Any] | None) -> str:
    """A figure title's words for a :func:`validation_source`, e.g. ``dfdc_val (test flow)``."""
    if not source:
        return "validation data not recorded"
    if source.get("kind") == VALIDATION_DATASET:
        return f"{source['name']} (test flow)"
    return f"{float(source.get('fraction', 0)):.0%} train-flow hold-out"


#: Settings a builder may ask for, from the validated config (they reach it as rule params).
SETTINGS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "models": lambda config: config["models"],
    "setups": lambda config: config["augmentation_setups"],
    "setup": loss_setup,
    "dropout": lambda config: config["training"]["dropout"],
    "input_size": lambda config: config["training"]["input_size"],
    "seed": lambda config: config["training"]["seed"],
    "augmentations": lambda config: config["augmentations"],
    "precision_study": lambda config: config.get("precision_study"),
    "cells": robustness_cells,
    "perturbations": lambda config: (robustness_plan(config) or {}).get("perturbations", []),
    "validation": validation_source,
    "testsets": lambda config: config["evaluation"]["testsets"],
    "aggregations": lambda config: config["evaluation"]["aggregations"],
    "calibration_testsets": calibration_testsets,
    "generalisation": generalisation_settings,
}


@dataclass(frozen=True)
class ReportSpec:
    """A table or figure of the thesis: its name (the output's file name), thesis number and report caption."""

    name: str
    number: str | None
    caption: str

    @property
    def needs(self) -> tuple[str, ...]:  # overridden by the fields of TableSpec and FigureSpec
        return ()

    def wanted(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` provides what this needs (a DFDC test set, a precision study...)."""
        return all(NEEDS[need](config) for need in self.needs)

    def report_caption(self, validation: Mapping[str, Any] | None = None) -> str:
        """The report's caption (reStructuredText), headed by the thesis number.

        ``{validation}`` in a caption becomes :func:`describe_validation` of ``validation`` (a
        :func:`validation_source`), so captions say which validation data the runs used.
        """
        head = f"**{self.number}**: " if self.number else ""
        caption = self.caption
        if VALIDATION_PLACEHOLDER not in caption and any(need.endswith("_testset") for need in self.needs):
            # every tested run's weights are those of the epoch chosen on the validation data
            caption += BEST_EPOCH_NOTE
        return head + caption.replace(VALIDATION_PLACEHOLDER, describe_validation(validation))


@dataclass(frozen=True)
class TableSpec(ReportSpec):
    """A table: ``builder(inputs, settings, **options) -> facesleuth.report.tables.Table``.

    ``inputs`` maps the builder's input names to the kind of files they are (keys of the
    workflow's ``REPORT_INPUTS``, e.g. ``dfdc_metrics``: every grid run's metrics on the DFDC
    test set); ``settings`` names entries of :data:`SETTINGS`, which reach the builder as rule
    params; ``options`` are fixed keyword arguments of the builder.
    """

    builder: str | Builder = ""
    inputs: Mapping[str, str] = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()

    def rule_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {key: SETTINGS[key](config) for key in self.settings}


@dataclass(frozen=True)
class FigureSpec(ReportSpec):
    """A figure, drawn by ``DRAWINGS[drawing]`` (one drawing may serve several figures)."""

    drawing: str = ""
    needs: tuple[str, ...] = ()


_GRID = ("models", "setups")
_DFDC_METRICS = {"metrics": "dfdc_metrics"}
# the configured ensembles' metrics join the grid's as rows of their own (none configured: no rows)
# and so do the configured baselines' (none configured: no rows)
_DFDC_WITH_ENSEMBLES = {**_DFDC_METRICS, "ensembles": "dfdc_ensemble_metrics", "baselines": "dfdc_baseline_metrics"}
_CELEBDF_WITH_ENSEMBLES = {"metrics": "celebdf_metrics", "ensembles": "celebdf_ensemble_metrics",
                           "baselines": "celebdf_baseline_metrics"}
_ENSEMBLE_NOTE = (
    " Ensembles (config ``ensembles``) follow in rows of their own (``kind`` ensemble in the CSV): their members' "
    "video scores joined by the mean probability or the mean logit, with their own validation threshold."
)
_BASELINE_NOTE = (
    " Baselines (config ``baselines``; ``kind`` baseline and ``aug`` baseline in the CSV) follow in rows of their "
    "own: published detectors NOT trained by the pipeline (their authors trained them on their own data), scored "
    "on the same test-flow faces with the same aggregation, each with its own preprocessing."
)
#: Added to the captions of tables with thresholds: which threshold a baseline's numbers use.
_BASELINE_THRESHOLD_NOTE = (
    " A baseline's validation threshold is its run folder's own (run.yaml ``threshold``; MesoNet's: 0.5, its "
    "decision boundary), not one chosen on the study's validation data."
)
_THRESHOLDS = (
    "Threshold: each run's own EER threshold on the DFDC test set, as in the thesis; the values are "
    "listed under the table."
)


def _errors_by_tag(label: str, kind: str, number: str, examples: str, note: str = "") -> TableSpec:
    other = "real" if label == "fake" else "fake"
    return TableSpec(
        f"dfdc_{label}_errors_by_{kind}", number,
        f"percentage of DFDC test {label} videos called {other}, per {kind}{examples}, for each model's best "
        f"setup (lowest DFDC log loss, Table 3.1 bold).{note} **Bold** (``worst_<model>`` in the CSV): the "
        f"worst {kind} for the model. {_THRESHOLDS}",
        "facesleuth.report.tables:build_errors_by_tag", _DFDC_METRICS, _GRID, {"label": label, "kind": kind},
        ("dfdc_testset",),
    )


_NO_TAG_ROW = ' The last row, "no distractor/augmenter", covers videos with no tag at all.'

TABLES: dict[str, TableSpec] = {
    table.name: table
    for table in (
        TableSpec(
            "params", "Table 2.1",
            "number of trainable parameters of each configured model, counted on the model as trained "
            "here: the timm backbone with its classifier replaced by Dropout + Linear(2) (thesis section "
            "2.5). Built without pretrained weights (the count does not depend on them). No threshold is "
            "involved.",
            "facesleuth.report.tables:build_params", settings=("models", "dropout"),
        ),
        TableSpec(
            "precision", "Table 2.3",
            "the precision study (config ``precision_study``): one model and setup trained at each "
            "precision with its batch size. Training duration is the sum of the epoch times in the run's "
            "``history.csv``; log loss is the video log loss on the DFDC test set. The run at the grid's "
            "own precision and batch size is the grid's run itself. No threshold is involved. The thesis's "
            "own Table 2.3 prints FP16 (batch 64) 9 h 48 min and FP32 (batch 32) 5 h 55 min, while its text "
            "and abstract say FP16 was the faster (up to 2x) and chose it for that reason; the project reads "
            "the table's two durations as swapped (FP16 5 h 55 min) and reports its own measured durations here. "
            "FP16 and BF16 are compared with FP32 only where they are fast: on a GPU, or on a CPU with native "
            "half-precision matrix units (such as Intel AMX). On other CPUs autocast to FP16 or BF16 runs "
            "several times slower than FP32, so its epoch times would measure the conversion, not the "
            "precision: a study run on such a CPU, like the embedded demo's, lists FP32 alone.",
            "facesleuth.report.tables:build_precision",
            {"histories": "precision_histories", "metrics": "precision_metrics"},
            ("precision_study",), needs=("precision_study", "dfdc_testset"),
        ),
        TableSpec(
            "dfdc_logloss", "Table 3.1",
            "video log loss (thesis eq. 3.1; the video score is the mean fake confidence of its sampled "
            "faces, clipped to [1e-15, 1 - 1e-15]) on the DFDC test set, for every model and augmentation "
            "setup. Lower is better. *Italic*: the best model for a setup (``best_for_setup_<setup>`` in "
            "the CSV); **bold**: the best setup for a model (``best_setup``). Log loss uses the scores "
            "directly: no threshold." + _ENSEMBLE_NOTE + _BASELINE_NOTE,
            "facesleuth.report.tables:build_logloss", _DFDC_WITH_ENSEMBLES, _GRID, needs=("dfdc_testset",),
        ),
        _errors_by_tag("fake", "distractor", "Table 3.2", " (overlaid dots, shapes, text, faces, images, filters)"),
        _errors_by_tag("real", "distractor", "Table 3.3", ""),
        _errors_by_tag(
            "fake", "augmenter", "Table 3.4", " (noise, blur, brightness, contrast, frame rate, resolution...)",
            _NO_TAG_ROW,
        ),
        _errors_by_tag("real", "augmenter", "Table 3.5", "", _NO_TAG_ROW),
        TableSpec(
            "celebdf_sensitivity_specificity", "Table 3.6",
            "sensitivity (fakes called fake, eq. 3.2) and specificity (reals called real, eq. 3.3) on "
            "Celeb-DF-v2 for every model and setup, fake being the positive class. Shown at two "
            "thresholds, labelled: the run's validation EER threshold (chosen before testing on {validation}, "
            "as a deployed scanner would) and Celeb-DF-v2's own EER threshold (the "
            "thesis's choice; it makes sensitivity and specificity nearly equal by construction)." + _ENSEMBLE_NOTE
            + _BASELINE_NOTE + _BASELINE_THRESHOLD_NOTE,
            "facesleuth.report.tables:build_sensitivity_specificity", _CELEBDF_WITH_ENSEMBLES, (*_GRID, "validation"),
            needs=("celebdf_testset",),
        ),
        *(
            TableSpec(
                f"robustness_{metric}", None,
                f"video {title} ({better} is better) of the runs named in the config's ``robustness`` "
                "section on perturbed copies of its test sets: one row per test set and run, one column "
                "per perturbation (``family_value``: every video JPEG-compressed at that quality, "
                "downscaled by 1/n and scaled back, blurred or noised with that sigma, reduced to every "
                "n-th frame, or re-encoded with H.264 at that CRF), ``clean`` being the test set as it is. "
                "Each perturbed test set is extracted with the test set's own settings, once, and scored "
                f"like the clean one. {note} Rows whose run ends in /baseline are the configured baselines: "
                "published detectors not trained by the pipeline, each with its own preprocessing.",
                "facesleuth.report.robustness:build_robustness", {"predictions": "robustness_predictions"},
                ("cells", "perturbations"), {"metric": metric}, ("robustness",),
            )
            for metric, title, better, note in (
                ("auc", "ROC-AUC", "higher", "The area spans every threshold: none is chosen."),
                ("logloss", "log loss", "lower", "Log loss uses the scores directly: no threshold."),
            )
        ),
        TableSpec(
            "celebdf_f1", "Table 3.7",
            "F1-score (fake positive) on Celeb-DF-v2 for every model and setup. **Bold**: the best setup "
            "for a model; *italic*: the best model for a setup. Shown at two thresholds, labelled: the "
            "run's validation EER threshold (chosen on {validation}) and Celeb-DF-v2's own EER threshold (the "
            "thesis's choice)." + _ENSEMBLE_NOTE + _BASELINE_NOTE + _BASELINE_THRESHOLD_NOTE,
            "facesleuth.report.tables:build_f1", _CELEBDF_WITH_ENSEMBLES, (*_GRID, "validation"), needs=("celebdf_testset",),
        ),
        # beyond the thesis: the future work of its discussion (3.3)
        TableSpec(
            "calibration_logloss", None,
            "video log loss on the DFDC and Celeb-DF-v2 test sets before and after temperature scaling, for "
            "every run and ensemble: one temperature per run, fitted on its validation videos ({validation}) by minimising "
            "their log loss (``calibration.json`` in the run folder), then applied to its test scores. **Bold**: "
            "calibration lowered the test log loss. Temperature scaling is monotonic: AUC and the EER do not "
            "change. No threshold is involved.",
            "facesleuth.report.studies:build_calibration",
            {"metrics": "calibration_metrics", "ensembles": "calibration_ensemble_metrics"},
            ("calibration_testsets",), needs=("calibration",),
        ),
        TableSpec(
            "aggregations", None,
            "video log loss and ROC-AUC of every run on every test set under each aggregation of its face "
            "scores into a video score (config ``evaluation.aggregations``): the thesis's mean, the median, "
            "the maximum, the mean of the most confident faces, and the largest mean of one tracked person. "
            "**Bold**: the run's lowest log loss. Made from the stored face scores; no threshold is involved.",
            "facesleuth.report.studies:build_aggregations", {"studies": "aggregation_studies"},
            ("aggregations", "testsets"), needs=("aggregations",),
        ),
        TableSpec(
            "auc", None,
            "ROC-AUC (fake positive) of every run and ensemble on every configured test set. **Bold**: the "
            "best of each test set. The curve spans every threshold, so none is chosen." + _BASELINE_NOTE,
            "facesleuth.report.studies:build_auc",
            {"metrics": "all_metrics", "ensembles": "all_ensemble_metrics", "baselines": "all_baseline_metrics"},
            (*_GRID, "testsets"), needs=("auc_table",),
        ),
        TableSpec(
            "generalisation_auc", None,
            "ROC-AUC of every run of the generalisation matrix (config ``generalisation``) on every test set: "
            "rows are training set x model x setup, each training set with its own split and runs, columns "
            "the test sets. *Italic*: the training set's own test set; the other columns measure "
            "generalisation to data of another source. No threshold is involved. Baselines (config ``baselines``) "
            "follow, one row each with the training set ``-``: published detectors NOT trained by the pipeline, so "
            "their row is the same whatever the training set (what their authors trained them on is in the "
            "``trained_on`` column of the CSV).",
            "facesleuth.report.studies:build_generalisation",
            {"metrics": "generalisation_metrics", "baselines": "generalisation_baseline_metrics"},
            ("generalisation",), needs=("generalisation",),
        ),
    )
}

#: Figure drawings: ``make_figures(kind, ...)`` calls the builder, which returns its figures by
#: output name (``png``; ``train_loss`` and ``validation_loss`` for ``losses``).
DRAWINGS: dict[str, str | Builder] = {
    "augmentation_examples": "facesleuth.report.figures:draw_augmentation_examples",
    "losses": "facesleuth.report.figures:draw_losses",
    "precision_epoch_time": "facesleuth.report.figures:draw_precision_epoch_time",
    "eer": "facesleuth.report.figures:draw_eer",
    "thresholds": "facesleuth.report.figures:draw_thresholds",
    "dfdc_logloss": "facesleuth.report.figures:draw_logloss",
    "dfdc_roc": "facesleuth.report.figures:draw_roc",
    "celebdf_f1": "facesleuth.report.figures:draw_f1",
    "misclassified": "facesleuth.report.figures:draw_misclassified",
    "robustness": "facesleuth.report.figures:draw_robustness",
    "generalisation_heatmap": "facesleuth.report.figures:draw_generalisation",
}


def _figure(name: str, number: str | None, caption: str, drawing: str, needs: tuple[str, ...] = ()) -> FigureSpec:
    return FigureSpec(name, number, caption, drawing=drawing, needs=needs)


def _misclassified(suite: str, label: str, number: str, best: str, threshold: str, detail: str) -> FigureSpec:
    testset = "DFDC test" if suite == "dfdc" else "Celeb-DF-v2"
    other = "real" if label == "fake" else "fake"
    return _figure(
        f"{suite}_misclassified_{label}", number,
        f"{testset} {label} videos called {other} by the run with the {best}, most confident mistakes "
        f"first{detail}. Threshold: the run's EER threshold on {threshold}, given in the title.",
        "misclassified", (f"{suite}_testset",),
    )


_STATIC_FIGURES = (
    _figure(
        "augmentation_examples", "Fig. 2.12",
        "one real face crop from the training split, letterboxed to the input size (zero padding), then "
        "each augmentation step of the configured setups applied alone with its probability forced to 1 "
        "(GaussianBlur and Sharpen, alternatives of one step, shown separately), and finally one random "
        "draw of each whole setup. With the sbi setup: self-blended fakes made from the same face, each "
        "beside its blending mask (white: the jittered copy, black: the face untouched), the last one "
        "also through the setup's augmentation chain.",
        "augmentation_examples",
    ),
    _figure(
        "train_loss", "Fig. 2.13",
        "training loss (cross-entropy per face) per epoch of every model trained with the default "
        "augmentation setup (the first configured setup when default is not configured), from each "
        "run's ``history.csv``.",
        "losses",
    ),
    _figure(
        "validation_loss", "Fig. 2.14",
        "validation loss per epoch of the same runs as Fig. 2.13, on {validation}. Epochs whose "
        "validation loss is NaN are left out and counted in the legend (the thesis dropped such a model "
        "from its figure).",
        "losses",
    ),
    _figure(
        "precision_epoch_time", "Fig. 2.15",
        "seconds per training epoch of the precision study's model at each precision (and its batch "
        "size), from the runs' ``history.csv``; the legend gives the totals of Table 2.3.",
        "precision_epoch_time", ("precision_study",),
    ),
    _figure(
        "eer", "Fig. 3.1",
        "false positive and false negative rates against the decision threshold for the run with the "
        "lowest DFDC video log loss, on the DFDC test set. The dot marks the equal error rate, where the "
        "two rates cross (linearly interpolated): its threshold is the test set's own EER threshold, the "
        "thesis's choice. The dashed line is the run's validation EER threshold, chosen on {validation}.",
        "eer", ("dfdc_testset",),
    ),
    _figure(
        "thresholds", "Fig. 3.2",
        "EER thresholds of each model's best setup (lowest DFDC log loss): the DFDC test set's own EER "
        "threshold (the thesis's) beside the one chosen on {validation}.",
        "thresholds", ("dfdc_testset",),
    ),
    _figure(
        "dfdc_roc", "Fig. 3.7",
        "ROC curves on the DFDC test set of each model's best setup (lowest DFDC log loss), fake being "
        "the positive class; the legend gives each area under the curve. The curve spans every "
        "threshold, so none is chosen. Configured ensembles are drawn dashed; configured baselines (published "
        "detectors not trained by the pipeline, each with its own preprocessing) dash-dotted.",
        "dfdc_roc", ("dfdc_testset",),
    ),
    _misclassified(
        "dfdc", "fake", "Fig. 3.8", "lowest DFDC log loss", "the DFDC test set (the thesis's)",
        "; each shows the video's most real-looking sampled face with the video score (mean fake "
        "confidence) and that face's score",
    ),
    _misclassified(
        "dfdc", "real", "Fig. 3.9", "lowest DFDC log loss", "the DFDC test set",
        ", each with its most fake-looking face and the video and face scores",
    ),
    _figure(
        "celebdf_f1", "Fig. 3.10",
        "F1-score (fake positive) on Celeb-DF-v2 of each model's best setup, the setup with the highest "
        "F1 at Celeb-DF-v2's own EER threshold (named under each model). Bars give F1 at that threshold "
        "(the thesis's) and at the run's validation EER threshold (chosen on {validation}), labelled.",
        "celebdf_f1", ("celebdf_testset",),
    ),
    _misclassified(
        "celebdf", "fake", "Fig. 3.11", "highest Celeb-DF-v2 F1", "Celeb-DF-v2",
        ", each with its most real-looking face and the video and face scores",
    ),
    _misclassified(
        "celebdf", "real", "Fig. 3.12", "highest Celeb-DF-v2 F1", "Celeb-DF-v2",
        ", each with its most fake-looking face and the video and face scores",
    ),
    _figure(
        "robustness_auc", None,
        "video ROC-AUC against the severity of each perturbation family (one panel per family; the "
        "family's parameter on the x axis, ``clean`` the unperturbed test set), for each run and test "
        "set of the robustness suite, from the robustness_auc table. The dotted line is chance (0.5). "
        "No threshold is involved.",
        "robustness", ("robustness",),
    ),
    _figure(
        "generalisation_auc", None,
        "the generalisation matrix as a heatmap: ROC-AUC of every run (rows: training set / model (setup)) on "
        "every test set (columns), 0.5 being chance; each cell gives its value (table generalisation_auc), and a "
        "training set's own test set is outlined.",
        "generalisation_heatmap", ("generalisation",),
    ),
)


def logloss_figure(setup: str) -> FigureSpec:
    """Figs. 3.3-3.6: DFDC video log loss of every model under ``setup`` (one per configured setup)."""
    entry = AUGMENTATION_SETUPS[setup]
    return _figure(
        f"dfdc_logloss_{setup}", entry.logloss_figure,
        f"DFDC video log loss of every model trained {entry.trained} (lower is better). The dashed line "
        "is the loss of answering 0.5 for every video (log 2). No threshold is involved.",
        "dfdc_logloss", ("dfdc_testset",),
    )


def figures(setups: Iterable[str] | None = None) -> dict[str, FigureSpec]:
    """Every figure, with a DFDC log-loss figure per setup in ``setups`` (default: every known setup)."""
    setups = setup_names() if setups is None else tuple(setups)
    entries = {figure.name: figure for figure in _STATIC_FIGURES}
    entries.update((f"dfdc_logloss_{setup}", logloss_figure(setup)) for setup in setups)
    return entries


def wanted_tables(config: Mapping[str, Any]) -> list[str]:
    """Tables whose inputs ``config`` provides (no DFDC test set: no DFDC tables), in thesis order."""
    return [name for name, table in TABLES.items() if table.wanted(config)]


def wanted_figures(config: Mapping[str, Any]) -> list[str]:
    return [name for name, figure in figures(config["augmentation_setups"]).items() if figure.wanted(config)]


def write_captions(
    folder: str | Path, setups: Iterable[str] | None = None, validation: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write each table's and figure's report caption to ``folder/<tables|figures>/<name>.rst``.

    ``validation``: the config's :func:`validation_source`, named where a caption says which
    validation data chose a threshold or gave a validation loss.

    Returns ``"tables/<name>"`` / ``"figures/<name>"`` -> path. Files whose text is unchanged
    are left alone, so concurrent Snakemake processes (cluster jobs) never rewrite them.
    """
    # io imports pandas and pyarrow; loaded here so that reading the registry stays light
    from facesleuth.io import write_text_atomic

    folder = Path(folder)
    paths = {}
    for kind, entries in (("tables", TABLES), ("figures", figures(setups))):
        for name, entry in entries.items():
            path = folder / kind / f"{name}.rst"
            text = entry.report_caption(validation) + "\n"
            if not path.is_file() or path.read_text() != text:
                write_text_atomic(text, path)
            paths[f"{kind}/{name}"] = path
    return paths
