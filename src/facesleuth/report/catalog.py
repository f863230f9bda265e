"""The thesis's tables and figures: what each is called and numbered, what builds it, what it
needs from the config, and where its report caption is.

The workflow makes one rule per table from :data:`TABLES` and one target per wanted table and
figure; :func:`facesleuth.report.tables.make_table` and :func:`facesleuth.report.figures.make_figures`
dispatch through :data:`TABLES` and :data:`DRAWINGS`. Adding a table means an entry here, its
builder and its caption file, nothing else (a new figure also needs its rule in
workflow/rules/figures.smk, where each figure's inputs are spelled out).

Captions are static reStructuredText files under ``captions/<tables|figures>/``, as Snakemake's
report expects, shipped in the wheel. Snakemake renders them as Jinja2 templates; the words that
depend on the config reach them as the rule param ``caption`` (:func:`caption_words`), e.g.
``{{ snakemake.params.caption.validation }}``, so nothing is written while the DAG is parsed.

Builders are named as ``"module:function"`` and imported when called: reading the catalog (the
Snakefile does it while planning) imports neither pandas, matplotlib nor albumentations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from facesleuth.config import (
    calibration_testsets,
    generalisation_settings,
    loss_setup,
    robustness_cells,
    robustness_plan,
    validation_source,
)
from facesleuth.registry import AUGMENTATION_SETUPS, VALIDATION_DATASET, Builder, setup_names

#: The caption files' folder: ``<kind>/<caption>.rst`` (kind: tables or figures).
CAPTIONS = resources.files("facesleuth.report") / "captions"


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


# ---------------------------------------------------------------- caption words


def describe_validation(source: Mapping[str, Any] | None) -> str:
    """A caption's words for a :func:`facesleuth.config.validation_source` (or a threshold.json's ``validation``)."""
    if not source:
        return "the validation data (not recorded)"
    if source.get("kind") == VALIDATION_DATASET:
        return f"the validation dataset {source['name']}: its test-flow faces, and video scores for thresholds"
    fraction = float(source.get("fraction", 0))
    return (f"a hold-out of {fraction:.0%} of the train-flow faces (grouped by {source.get('group_by', 'original')}), "
            "not a validation dataset of its own")


def short_validation(source: Mapping[str, Any] | None) -> str:
    """A figure title's words for a validation source, e.g. ``dfdc_val (test flow)``."""
    if not source:
        return "validation data not recorded"
    if source.get("kind") == VALIDATION_DATASET:
        return f"{source['name']} (test flow)"
    return f"{float(source.get('fraction', 0)):.0%} train-flow hold-out"


def caption_words(spec: "ReportSpec", validation: Mapping[str, Any] | None) -> dict[str, str]:
    """The rule param ``caption`` of ``spec``'s rule: the words its caption file takes from the config.

    ``validation``: the config's :func:`facesleuth.config.validation_source`, named where a caption
    says which validation data chose a threshold, a best epoch or gave a validation loss.
    """
    return {**spec.words, "validation": describe_validation(validation)}


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
    """A table or figure of the thesis: its name (the output's file name) and thesis number.

    Its report caption is ``captions/<kind>/<caption>.rst`` (``caption`` defaults to the name);
    ``words`` are fixed words of that caption (:func:`caption_words` adds the config's).
    """

    name: str
    number: str | None
    caption: str = ""
    words: Mapping[str, str] = field(default_factory=dict)
    kind = ""  # the caption folder: tables or figures

    @property
    def needs(self) -> tuple[str, ...]:  # overridden by the fields of TableSpec and FigureSpec
        return ()

    def wanted(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` provides what this needs (a DFDC test set, a precision study...)."""
        return all(NEEDS[need](config) for need in self.needs)

    def caption_file(self) -> Path:
        """The report caption (a Jinja2 template of reStructuredText, as Snakemake's report reads it);
        ``caption`` may also be a path of its own (a table added outside the package)."""
        if Path(self.caption).is_absolute():
            return Path(self.caption)
        return Path(str(CAPTIONS / self.kind / f"{self.caption or self.name}.rst"))


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
    kind = "tables"

    def rule_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {key: SETTINGS[key](config) for key in self.settings}


@dataclass(frozen=True)
class FigureSpec(ReportSpec):
    """A figure, drawn by ``DRAWINGS[drawing]`` (one drawing may serve several figures)."""

    drawing: str = ""
    needs: tuple[str, ...] = ()
    kind = "figures"


_GRID = ("models", "setups")
_DFDC_METRICS = {"metrics": "dfdc_metrics"}
# the configured ensembles' metrics join the grid's as rows of their own (none configured: no rows)
# and so do the configured baselines' (none configured: no rows)
_DFDC_WITH_ENSEMBLES = {**_DFDC_METRICS, "ensembles": "dfdc_ensemble_metrics", "baselines": "dfdc_baseline_metrics"}
_CELEBDF_WITH_ENSEMBLES = {"metrics": "celebdf_metrics", "ensembles": "celebdf_ensemble_metrics",
                           "baselines": "celebdf_baseline_metrics"}


def _errors_by_tag(label: str, kind: str, number: str) -> TableSpec:
    return TableSpec(
        f"dfdc_{label}_errors_by_{kind}", number, builder="facesleuth.report.tables:build_errors_by_tag",
        inputs=_DFDC_METRICS, settings=_GRID, options={"label": label, "kind": kind}, needs=("dfdc_testset",),
    )


def _robustness_table(metric: str) -> TableSpec:
    return TableSpec(
        f"robustness_{metric}", None, builder="facesleuth.report.robustness:build_robustness",
        inputs={"predictions": "robustness_predictions"}, settings=("cells", "perturbations"),
        options={"metric": metric}, needs=("robustness",),
    )


TABLES: dict[str, TableSpec] = {
    table.name: table
    for table in (
        TableSpec("params", "Table 2.1", builder="facesleuth.report.tables:build_params", settings=("models", "dropout")),
        TableSpec(
            "precision", "Table 2.3", builder="facesleuth.report.tables:build_precision",
            inputs={"histories": "precision_histories", "metrics": "precision_metrics"},
            settings=("precision_study",), needs=("precision_study", "dfdc_testset"),
        ),
        TableSpec(
            "dfdc_logloss", "Table 3.1", builder="facesleuth.report.tables:build_logloss",
            inputs=_DFDC_WITH_ENSEMBLES, settings=_GRID, needs=("dfdc_testset",),
        ),
        _errors_by_tag("fake", "distractor", "Table 3.2"),
        _errors_by_tag("real", "distractor", "Table 3.3"),
        _errors_by_tag("fake", "augmenter", "Table 3.4"),
        _errors_by_tag("real", "augmenter", "Table 3.5"),
        TableSpec(
            "celebdf_sensitivity_specificity", "Table 3.6",
            builder="facesleuth.report.tables:build_sensitivity_specificity", inputs=_CELEBDF_WITH_ENSEMBLES,
            settings=(*_GRID, "validation"), needs=("celebdf_testset",),
        ),
        _robustness_table("auc"),
        _robustness_table("logloss"),
        TableSpec(
            "celebdf_f1", "Table 3.7", builder="facesleuth.report.tables:build_f1", inputs=_CELEBDF_WITH_ENSEMBLES,
            settings=(*_GRID, "validation"), needs=("celebdf_testset",),
        ),
        # beyond the thesis: the future work of its discussion (3.3)
        TableSpec(
            "calibration_logloss", None, builder="facesleuth.report.studies:build_calibration",
            inputs={"metrics": "calibration_metrics", "ensembles": "calibration_ensemble_metrics"},
            settings=("calibration_testsets",), needs=("calibration",),
        ),
        TableSpec(
            "aggregations", None, builder="facesleuth.report.studies:build_aggregations",
            inputs={"studies": "aggregation_studies"}, settings=("aggregations", "testsets"), needs=("aggregations",),
        ),
        TableSpec(
            "auc", None, builder="facesleuth.report.studies:build_auc",
            inputs={"metrics": "all_metrics", "ensembles": "all_ensemble_metrics", "baselines": "all_baseline_metrics"},
            settings=(*_GRID, "testsets"), needs=("auc_table",),
        ),
        TableSpec(
            "generalisation_auc", None, builder="facesleuth.report.studies:build_generalisation",
            inputs={"metrics": "generalisation_metrics", "baselines": "generalisation_baseline_metrics"},
            settings=("generalisation",), needs=("generalisation",),
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


def _figure(name: str, number: str | None, drawing: str, *needs: str) -> FigureSpec:
    return FigureSpec(name, number, drawing=drawing, needs=needs)


_STATIC_FIGURES = (
    _figure("augmentation_examples", "Fig. 2.12", "augmentation_examples"),
    _figure("train_loss", "Fig. 2.13", "losses"),
    _figure("validation_loss", "Fig. 2.14", "losses"),
    _figure("precision_epoch_time", "Fig. 2.15", "precision_epoch_time", "precision_study"),
    _figure("eer", "Fig. 3.1", "eer", "dfdc_testset"),
    _figure("thresholds", "Fig. 3.2", "thresholds", "dfdc_testset"),
    _figure("dfdc_roc", "Fig. 3.7", "dfdc_roc", "dfdc_testset"),
    _figure("dfdc_misclassified_fake", "Fig. 3.8", "misclassified", "dfdc_testset"),
    _figure("dfdc_misclassified_real", "Fig. 3.9", "misclassified", "dfdc_testset"),
    _figure("celebdf_f1", "Fig. 3.10", "celebdf_f1", "celebdf_testset"),
    _figure("celebdf_misclassified_fake", "Fig. 3.11", "misclassified", "celebdf_testset"),
    _figure("celebdf_misclassified_real", "Fig. 3.12", "misclassified", "celebdf_testset"),
    _figure("robustness_auc", None, "robustness", "robustness"),
    _figure("generalisation_auc", None, "generalisation_heatmap", "generalisation"),
)


def logloss_figure(setup: str) -> FigureSpec:
    """Figs. 3.3-3.6: DFDC video log loss of every model under ``setup`` (one per configured setup),
    all captioned by one file that names how the setup trained."""
    entry = AUGMENTATION_SETUPS[setup]
    return FigureSpec(f"dfdc_logloss_{setup}", entry.logloss_figure, "dfdc_logloss", {"trained": entry.trained},
                      drawing="dfdc_logloss", needs=("dfdc_testset",))


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
