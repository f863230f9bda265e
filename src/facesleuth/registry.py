"""The names the package and the workflow share, each written here once.

- augmentation setups (name, label in the tables, caption wording, chain builder, thesis figure);
- training precisions;
- video statuses of extraction and of the scanner;
- the thesis's tables and figures: builder, report caption, thesis number, the config they need.

The config schema's enums, the workflow's ``aug`` wildcard, its table rules, its targets, the
report captions and labels, and the dispatch of :func:`facesleuth.tables.make_table` and
:func:`facesleuth.figures.make_figures` are all built from these entries, so adding a setup or
a table means an entry here and its builder, nothing else. (A new figure also needs its rule in
workflow/rules/figures.smk, where each figure's inputs are spelled out.)

Builders are named as ``"module:function"`` and imported when called: reading the registry (the
Snakefile does it while planning) imports neither pandas, matplotlib nor albumentations.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

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


AUGMENTATION_SETUPS: dict[str, AugmentationSetup] = {
    setup.name: setup
    for setup in (
        AugmentationSetup(
            "none", "No augmentation", "without augmentation", "facesleuth.augment:no_chain", "Fig. 3.3", augments=False
        ),
        AugmentationSetup(
            "default", "Default", "with the default augmentation chain (Table 2.2)",
            "facesleuth.augment:default_setup_chain", "Fig. 3.4",
        ),
        AugmentationSetup(
            "coarse", "Default + CoarseDropout", "with the default chain plus CoarseDropout",
            "facesleuth.augment:coarse_chain", "Fig. 3.6",
        ),
        AugmentationSetup(
            "grid", "Default + GridDropout", "with the default chain plus GridDropout",
            "facesleuth.augment:grid_chain", "Fig. 3.5",
        ),
    )
}

# ---------------------------------------------------------------- precisions

#: Training precisions: fp16 is autocast + GradScaler (the thesis), bf16 autocast, fp32 none.
PRECISIONS: tuple[str, ...] = ("fp16", "bf16", "fp32")


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


# ---------------------------------------------------------------- video statuses

OK = "ok"
NO_FACE = "no_face"
NO_TRACK = "no_track"
UNREADABLE = "unreadable"
EMPTY = "empty"
UNSUPPORTED = "unsupported"
MISSING = "missing"
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
    ERROR: "an unexpected error; the message says which",
}
#: Status of one video in results/faces/<dataset>/*.status.parquet.
EXTRACTION_STATUSES: tuple[str, ...] = (OK, NO_FACE, NO_TRACK, UNREADABLE, MISSING, ERROR)
#: Status of one input of ``facesleuth scan``.
SCAN_STATUSES: tuple[str, ...] = (OK, NO_FACE, UNREADABLE, UNSUPPORTED, MISSING, ERROR)
#: Scan statuses of inputs that could not be scanned (exit code 1).
FAILED_SCAN_STATUSES: frozenset[str] = frozenset({UNREADABLE, UNSUPPORTED, MISSING, ERROR})
#: Kinds of :class:`facesleuth.video.VideoError`.
VIDEO_ERRORS: tuple[str, ...] = (UNREADABLE, EMPTY)

# ---------------------------------------------------------------- tables and figures

#: What a table or figure may need from the config; it is made only where the config has it.
NEEDS = {
    "dfdc_testset": lambda config: bool(config["evaluation"].get("dfdc_testset")),
    "celebdf_testset": lambda config: bool(config["evaluation"].get("celebdf_testset")),
    "precision_study": lambda config: bool(config.get("precision_study")),
}


def loss_setup(config: Mapping[str, Any]) -> str:
    """Figs. 2.13-2.14 show the default setup, or the first configured one without it."""
    setups = config["augmentation_setups"]
    return "default" if "default" in setups else setups[0]


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
}


@dataclass(frozen=True)
class Report:
    """A table or figure of the thesis: its name (the output's file name), thesis number and report caption."""

    name: str
    number: str | None
    caption: str

    @property
    def needs(self) -> tuple[str, ...]:  # overridden by the fields of Table and Figure
        return ()

    def wanted(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` provides what this needs (a DFDC test set, a precision study...)."""
        return all(NEEDS[need](config) for need in self.needs)

    def report_caption(self) -> str:
        """The report's caption (reStructuredText), headed by the thesis number."""
        head = f"**{self.number}**: " if self.number else ""
        return head + self.caption


@dataclass(frozen=True)
class Table(Report):
    """A table: ``builder(inputs, settings, **options) -> facesleuth.tables.Table``.

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
class Figure(Report):
    """A figure, drawn by ``DRAWINGS[drawing]`` (one drawing may serve several figures)."""

    drawing: str = ""
    needs: tuple[str, ...] = ()


_GRID = ("models", "setups")
_DFDC_METRICS = {"metrics": "dfdc_metrics"}
_THRESHOLDS = (
    "Threshold: each run's own EER threshold on the DFDC test set, as in the thesis; the values are "
    "listed under the table."
)


def _errors_by_tag(label: str, kind: str, number: str, examples: str, note: str = "") -> Table:
    other = "real" if label == "fake" else "fake"
    return Table(
        f"dfdc_{label}_errors_by_{kind}", number,
        f"percentage of DFDC test {label} videos called {other}, per {kind}{examples}, for each model's best "
        f"setup (lowest DFDC log loss, Table 3.1 bold).{note} **Bold** (``worst_<model>`` in the CSV): the "
        f"worst {kind} for the model. {_THRESHOLDS}",
        "facesleuth.tables:build_errors_by_tag", _DFDC_METRICS, _GRID, {"label": label, "kind": kind},
        ("dfdc_testset",),
    )


_NO_TAG_ROW = ' The last row, "no distractor/augmenter", covers videos with no tag at all.'

TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table(
            "params", "Table 2.1",
            "number of trainable parameters of each configured model, counted on the model as trained "
            "here: the timm backbone with its classifier replaced by Dropout + Linear(2) (thesis section "
            "2.5). Built without pretrained weights (the count does not depend on them). No threshold is "
            "involved.",
            "facesleuth.tables:build_params", settings=("models", "dropout"),
        ),
        Table(
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
            "facesleuth.tables:build_precision",
            {"histories": "precision_histories", "metrics": "precision_metrics"},
            ("precision_study",), needs=("precision_study", "dfdc_testset"),
        ),
        Table(
            "dfdc_logloss", "Table 3.1",
            "video log loss (thesis eq. 3.1; the video score is the mean fake confidence of its sampled "
            "faces, clipped to [1e-15, 1 - 1e-15]) on the DFDC test set, for every model and augmentation "
            "setup. Lower is better. *Italic*: the best model for a setup (``best_for_setup_<setup>`` in "
            "the CSV); **bold**: the best setup for a model (``best_setup``). Log loss uses the scores "
            "directly: no threshold.",
            "facesleuth.tables:build_logloss", _DFDC_METRICS, _GRID, needs=("dfdc_testset",),
        ),
        _errors_by_tag("fake", "distractor", "Table 3.2", " (overlaid dots, shapes, text, faces, images, filters)"),
        _errors_by_tag("real", "distractor", "Table 3.3", ""),
        _errors_by_tag(
            "fake", "augmenter", "Table 3.4", " (noise, blur, brightness, contrast, frame rate, resolution...)",
            _NO_TAG_ROW,
        ),
        _errors_by_tag("real", "augmenter", "Table 3.5", "", _NO_TAG_ROW),
        Table(
            "celebdf_sensitivity_specificity", "Table 3.6",
            "sensitivity (fakes called fake, eq. 3.2) and specificity (reals called real, eq. 3.3) on "
            "Celeb-DF-v2 for every model and setup, fake being the positive class. Shown at two "
            "thresholds, labelled: the run's validation EER threshold (chosen on the DFDC validation split "
            "before testing, as a deployed scanner would) and Celeb-DF-v2's own EER threshold (the "
            "thesis's choice; it makes sensitivity and specificity nearly equal by construction).",
            "facesleuth.tables:build_sensitivity_specificity", {"metrics": "celebdf_metrics"}, _GRID,
            needs=("celebdf_testset",),
        ),
        Table(
            "celebdf_f1", "Table 3.7",
            "F1-score (fake positive) on Celeb-DF-v2 for every model and setup. **Bold**: the best setup "
            "for a model; *italic*: the best model for a setup. Shown at two thresholds, labelled: the "
            "run's validation EER threshold and Celeb-DF-v2's own EER threshold (the thesis's choice).",
            "facesleuth.tables:build_f1", {"metrics": "celebdf_metrics"}, _GRID, needs=("celebdf_testset",),
        ),
    )
}

#: Figure drawings: ``make_figures(kind, ...)`` calls the builder, which returns its figures by
#: output name (``png``; ``train_loss`` and ``validation_loss`` for ``losses``).
DRAWINGS: dict[str, str | Builder] = {
    "augmentation_examples": "facesleuth.figures:draw_augmentation_examples",
    "losses": "facesleuth.figures:draw_losses",
    "precision_epoch_time": "facesleuth.figures:draw_precision_epoch_time",
    "eer": "facesleuth.figures:draw_eer",
    "thresholds": "facesleuth.figures:draw_thresholds",
    "dfdc_logloss": "facesleuth.figures:draw_logloss",
    "dfdc_roc": "facesleuth.figures:draw_roc",
    "celebdf_f1": "facesleuth.figures:draw_f1",
    "misclassified": "facesleuth.figures:draw_misclassified",
}


def _figure(name: str, number: str | None, caption: str, drawing: str, needs: tuple[str, ...] = ()) -> Figure:
    return Figure(name, number, caption, drawing=drawing, needs=needs)


def _misclassified(suite: str, label: str, number: str, best: str, threshold: str, detail: str) -> Figure:
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
        "draw of each whole setup.",
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
        "validation loss per epoch of the same runs as Fig. 2.13, on the validation split. Epochs whose "
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
        "thesis's choice. The dashed line is the run's validation EER threshold.",
        "eer", ("dfdc_testset",),
    ),
    _figure(
        "thresholds", "Fig. 3.2",
        "EER thresholds of each model's best setup (lowest DFDC log loss): the DFDC test set's own EER "
        "threshold (the thesis's) beside the one chosen on the validation split.",
        "thresholds", ("dfdc_testset",),
    ),
    _figure(
        "dfdc_roc", "Fig. 3.7",
        "ROC curves on the DFDC test set of each model's best setup (lowest DFDC log loss), fake being "
        "the positive class; the legend gives each area under the curve. The curve spans every "
        "threshold, so none is chosen.",
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
        "(the thesis's) and at the run's validation EER threshold, labelled.",
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
)


def logloss_figure(setup: str) -> Figure:
    """Figs. 3.3-3.6: DFDC video log loss of every model under ``setup`` (one per configured setup)."""
    entry = AUGMENTATION_SETUPS[setup]
    return _figure(
        f"dfdc_logloss_{setup}", entry.logloss_figure,
        f"DFDC video log loss of every model trained {entry.trained} (lower is better). The dashed line "
        "is the loss of answering 0.5 for every video (log 2). No threshold is involved.",
        "dfdc_logloss", ("dfdc_testset",),
    )


def figures(setups: Iterable[str] | None = None) -> dict[str, Figure]:
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


def write_captions(folder: str | Path, setups: Iterable[str] | None = None) -> dict[str, Path]:
    """Write each table's and figure's report caption to ``folder/<tables|figures>/<name>.rst``.

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
            text = entry.report_caption() + "\n"
            if not path.is_file() or path.read_text() != text:
                write_text_atomic(text, path)
            paths[f"{kind}/{name}"] = path
    return paths
