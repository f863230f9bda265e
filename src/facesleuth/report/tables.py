"""The thesis's tables, computed from the pipeline's outputs (never typed in).

Each table is written twice: a CSV for machines (marks as plain columns) and a Markdown copy
for people (marks as *italic* / **bold**, as in the thesis), headed by its thesis number and a
line saying which threshold its numbers used, where one was needed.

Which run is a model's "best": the setup with the lowest DFDC video log loss (thesis 3.1.1,
"highlighted as bold in Table 3.1"); for Celeb-DF-v2, the highest F1 (Fig. 3.10).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from facesleuth import registry
from facesleuth.report import catalog
from facesleuth.io import write_text_atomic
from facesleuth.evaluate.metrics import NO_TAG, THRESHOLD_KINDS
from facesleuth.train.backbones import display_name, resolve

log = logging.getLogger("facesleuth.report.tables")


class TableError(ValueError):
    """An input needed by a table is missing or inconsistent; the message names it."""


@dataclass
class Table:
    """A table's data (the CSV) and its Markdown rendering."""

    data: pd.DataFrame
    markdown: str


# ---------------------------------------------------------------- reading results


def setup_label(aug: str) -> str:
    """The tables' label of a run's ``aug`` (a setup, or ``<setup>-<precision>``)."""
    return registry.setup_label(aug)


def read_metrics(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Metrics JSONs (``results/metrics/{testset}/{model}/{aug}.json``), each with ``model``,
    ``aug`` and ``testset`` (taken from the path when the file lacks them) and ``path``."""
    runs = []
    for path in paths:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TableError(f"metrics file {path} not found; run the metrics rule first") from None
        except json.JSONDecodeError as err:
            raise TableError(f"metrics file {path} is not valid JSON ({err}); delete it and rerun") from None
        data.setdefault("model", path.parent.name)
        data.setdefault("aug", path.stem)
        data.setdefault("testset", path.parent.parent.name)
        data["path"] = str(path)
        runs.append(data)
    return runs


def metrics_frame(runs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run with the headline numbers, at both thresholds."""
    rows = []
    for run in runs:
        row = {
            "model": run["model"],
            "aug": run["aug"],
            "log_loss": run["log_loss"],
            "auc": run["auc"],
            "eer": run["eer"],
        }
        for kind in THRESHOLD_KINDS:
            at = run["at_threshold"][kind]
            for key in ("threshold", "sensitivity", "specificity", "f1"):
                row[f"{key}_{kind}"] = at[key]
        rows.append(row)
    return pd.DataFrame(rows)


def run_of(runs: Sequence[dict[str, Any]], model: str, aug: str) -> dict[str, Any]:
    for run in runs:
        if run["model"] == model and run["aug"] == aug:
            return run
    raise TableError(f"no metrics for model {model!r} with setup {aug!r} (have {[(r['model'], r['aug']) for r in runs]})")


def grid_values(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str], value: Callable[[dict], float]) -> pd.DataFrame:
    """models x setups of ``value(run)``; every cell must exist and be finite."""
    grid = pd.DataFrame(index=list(models), columns=list(setups), dtype=float)
    for model in models:
        for setup in setups:
            number = float(value(run_of(runs, model, setup)))
            if not math.isfinite(number):
                raise TableError(f"model {model!r} setup {setup!r}: the value is {number}; check its metrics JSON")
            grid.loc[model, setup] = number
    return grid


def best_setups(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str], metric: str = "log_loss", lower_is_better: bool = True) -> dict[str, str]:
    """model -> its best setup by ``metric`` (ties: the first setup in config order).

    ``metric`` is a key of :func:`metrics_frame` (``log_loss``, ``f1_test_eer``...)."""
    frame = metrics_frame([r for r in runs if r["aug"] in setups])
    best = {}
    for model in models:
        rows = frame[frame["model"] == model].set_index("aug").reindex([s for s in setups])
        rows = rows[rows[metric].notna()]
        if rows.empty:
            raise TableError(f"no metrics for model {model!r} in setups {list(setups)}")
        best[model] = rows[metric].idxmin() if lower_is_better else rows[metric].idxmax()
    return best


def best_run_overall(runs: Sequence[dict[str, Any]], setups: Sequence[str], metric: str = "log_loss", lower_is_better: bool = True) -> dict[str, Any]:
    """The single best grid run by ``metric`` (ties: the first run given)."""
    frame = metrics_frame([r for r in runs if r["aug"] in setups])
    if frame.empty:
        raise TableError(f"no grid runs among the metrics (setups {list(setups)})")
    index = frame[metric].idxmin() if lower_is_better else frame[metric].idxmax()
    return run_of(runs, frame.loc[index, "model"], frame.loc[index, "aug"])


# ---------------------------------------------------------------- Markdown


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align_first_left: bool = True) -> str:
    """A GitHub-flavoured Markdown table (first column left-aligned, the rest right-aligned)."""
    def clean(cell: Any) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(clean(h) for h in header) + " |"]
    lines.append("|" + "|".join([":---" if align_first_left else "---:"] + ["---:"] * (len(header) - 1)) + "|")
    for row in rows:
        lines.append("| " + " | ".join(clean(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def emphasise(text: str, italic: bool = False, bold: bool = False) -> str:
    if italic and bold:
        return f"***{text}***"
    if bold:
        return f"**{text}**"
    if italic:
        return f"*{text}*"
    return text


def _document(name: str, caption: str, body: str, notes: Sequence[str] = ()) -> str:
    text = f"**{catalog.TABLES[name].number}.** {caption}\n\n{body}"
    if notes:
        text += "\n" + "\n".join(f"{note}  " for note in notes).rstrip() + "\n"
    return text


def _is_min(values: pd.Series) -> pd.Series:
    return values == values.min()


# ---------------------------------------------------------------- Table 2.1


def params_table(models: Sequence[str], dropout: float) -> Table:
    """Trainable parameters of each configured model with its new two-class head, beside the
    thesis's Table 2.1 value where the model is one of its eight."""
    # torch (seconds of CPU): only this table builds models; every other table job skips it
    from facesleuth.train.models import build_model, count_parameters

    rows = []
    for model in models:
        network = build_model(model, pretrained=False, weights=None, dropout=dropout)
        count = int(count_parameters(network))
        del network
        rows.append(
            {
                "model": model,
                "name": display_name(model),
                "parameters": count,
                "parameters_millions": round(count / 1e6, 1),
                "thesis_millions": resolve(model).thesis_params_millions,
            }
        )
        log.info("%s: %d trainable parameters", model, count)
    data = pd.DataFrame(rows)
    body = markdown_table(
        ["Model", "Params count (Million)", "Thesis (Million)"],
        [[r["name"], f"{r['parameters_millions']:.1f}", "–" if r["thesis_millions"] is None else f"{r['thesis_millions']:.1f}"] for r in rows],
    )
    notes = ["Thesis: Table 2.1 of the thesis, for its eight models (– for others)."]
    return Table(data, _document("params", "Number of trainable parameters (with the two-class head).", body, notes))


# ---------------------------------------------------------------- Table 2.3


#: The thesis contradicts itself on Table 2.3; every place that quotes it says which reading it takes.
THESIS_TABLE_2_3_NOTE = (
    "Thesis Table 2.3 prints FP16 (batch 64) 9 h 48 min and FP32 (batch 32) 5 h 55 min, while its text (2.5.1) "
    "and abstract say FP16 trained faster (up to 2x) and chose it for that; this project reads the two durations "
    "as swapped (FP16 5 h 55 min, FP32 9 h 48 min)."
)


def format_duration(seconds: float) -> str:
    """``9 hours 48 mins`` as in Table 2.3 (seconds shown only under a minute)."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(int(round(seconds / 60)), 60)
    text = f"{minutes} min{'s' if minutes != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''} {text}" if hours else text


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise TableError(f"training history {path} not found; run the train rule first")
    history = pd.read_csv(path)
    missing = {"epoch", "train_loss", "val_loss", "seconds"} - set(history.columns)
    if missing:
        raise TableError(f"{path} lacks columns {sorted(missing)} (has {list(history.columns)})")
    if history.empty:
        raise TableError(f"{path} has no epochs")
    return history


#: Why a CPU study (the demo's) may list FP32 alone: autocast timings there measure emulation.
HALF_PRECISION_NOTE = (
    "FP16 and BF16 are compared with FP32 only where they are fast: on a GPU, or a CPU with native "
    "half-precision matrix units (such as Intel AMX). Elsewhere on a CPU, autocast to FP16 or BF16 "
    "runs several times slower than FP32, so the comparison would time the conversion rather than "
    "the precision; a CPU study (the embedded demo's) trains at FP32 only."
)


def precision_table(precisions: Sequence[str], batch_sizes: dict[str, int], histories: Sequence[str | os.PathLike], metrics: Sequence[str | os.PathLike], model: str) -> Table:
    """Per precision of the study: batch size, training time (sum of epoch seconds), DFDC log loss.

    ``histories`` and ``metrics`` are given in the order of ``precisions``."""
    if not (len(precisions) == len(histories) == len(metrics)):
        raise TableError(f"precision table: {len(precisions)} precisions, {len(histories)} histories, {len(metrics)} metrics files")
    rows = []
    for precision, history_path, run in zip(precisions, histories, read_metrics(metrics)):
        history = read_history(history_path)
        seconds = float(history["seconds"].sum())
        rows.append(
            {
                "precision": precision.upper(),
                "batch_size": int(batch_sizes[precision]),
                "run": f"{run['model']}/{run['aug']}",
                "epochs": int(len(history)),
                "training_seconds": round(seconds, 1),
                "training_duration": format_duration(seconds),
                "seconds_per_epoch": round(seconds / len(history), 1),
                "dfdc_log_loss": run["log_loss"],
            }
        )
    data = pd.DataFrame(rows)
    body = markdown_table(
        ["", "Batch size", "Training duration", "Epochs", "Log loss"],
        [[r["precision"], r["batch_size"], r["training_duration"], r["epochs"], f"{r['dfdc_log_loss']:.4f}"] for r in rows],
    )
    caption = f"Training {display_name(model)} with each precision (log loss: DFDC test set, per video)."
    notes = [
        "Training duration: the sum of the epoch times in each run's history.csv. No threshold: log loss uses the scores.",
        THESIS_TABLE_2_3_NOTE,
        HALF_PRECISION_NOTE,
    ]
    return Table(data, _document("precision", caption, body, notes))


# ---------------------------------------------------------------- Tables 3.1 and 3.7


def _marked_grid(grid: pd.DataFrame, setups: Sequence[str], lower_is_better: bool, extra: dict[str, Any] | None = None) -> tuple[pd.DataFrame, str]:
    """A models x setups grid as CSV data and Markdown body, with the best value per setup
    (``best_for_setup_<setup>`` columns, *italic*) and per model (``best_setup``, **bold**) marked.
    Ties are all marked."""
    sign = 1 if lower_is_better else -1
    best_for_setup = grid.apply(lambda column: _is_min(sign * column))
    best_for_model = grid.apply(lambda row: _is_min(sign * row), axis=1)
    data = pd.DataFrame({"model": list(grid.index), "name": [display_name(m) for m in grid.index]})
    for key, value in (extra or {}).items():
        data[key] = value
    for setup in setups:
        data[setup] = grid[setup].to_numpy()
    data["best_setup"] = [(sign * grid.loc[m]).idxmin() for m in grid.index]
    for setup in setups:
        data[f"best_for_setup_{setup}"] = best_for_setup[setup].to_numpy()
    rows = []
    for model in grid.index:
        cells = [
            emphasise(f"{grid.loc[model, s]:.4f}", italic=bool(best_for_setup.loc[model, s]), bold=bool(best_for_model.loc[model, s]))
            for s in setups
        ]
        rows.append([display_name(model), *cells])
    body = markdown_table(["Model / Augmentation", *[setup_label(s) for s in setups]], rows)
    return data, body


def logloss_table(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str]) -> Table:
    """Table 3.1: DFDC video log loss, models x setups."""
    grid = grid_values(runs, models, setups, lambda run: run["log_loss"])
    data, body = _marked_grid(grid, setups, lower_is_better=True)
    caption = (
        "Video log loss on the DFDC test set (lower is better). *Italic*: the best model for the "
        "augmentation; **bold**: the best augmentation for the model."
    )
    return Table(data, _document("dfdc_logloss", caption, body, ["No threshold: log loss uses the scores themselves."]))


def threshold_description(kind: str, validation: dict[str, Any] | None) -> str:
    """A threshold kind's words; the validation one names the data it was chosen on."""
    text = THRESHOLD_KINDS[kind]
    if kind == "validation":
        text += f", on {catalog.describe_validation(validation)}"
    return text


def f1_table(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str],
             validation: dict[str, Any] | None = None) -> Table:
    """Table 3.7: Celeb-DF-v2 F1 (fake positive), one block per threshold.

    ``validation``: the config's validation source (config.validation_source), named in the
    validation block's heading.
    """
    datas, bodies = [], []
    for kind in THRESHOLD_KINDS:
        description = threshold_description(kind, validation)
        grid = grid_values(runs, models, setups, lambda run, kind=kind: run["at_threshold"][kind]["f1"])
        data, body = _marked_grid(grid, setups, lower_is_better=False, extra={"threshold": kind})
        datas.append(data)
        bodies.append(f"At {description}:\n\n{body}")
    caption = (
        "F1-score (fake is the positive class) of the models tested on Celeb-DF-v2 (higher is "
        "better). **Bold**: the best augmentation for the model; *italic*: the best model for the augmentation."
    )
    notes = ["Threshold: each run's own, per block above; `threshold` column in the CSV (validation | test_eer)."]
    return Table(pd.concat(datas, ignore_index=True), _document("celebdf_f1", caption, "\n".join(bodies), notes))


# ---------------------------------------------------------------- Table 3.6


def sensitivity_specificity_table(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str],
                                  validation: dict[str, Any] | None = None) -> Table:
    """Table 3.6: sensitivity and specificity per model and setup, at both thresholds (``validation``: as :func:`f1_table`)."""
    rows, bodies = [], []
    for kind in THRESHOLD_KINDS:
        description = threshold_description(kind, validation)
        md_rows = []
        for model in models:
            row: dict[str, Any] = {"model": model, "name": display_name(model), "threshold": kind}
            cells = []
            for setup in setups:
                at = run_of(runs, model, setup)["at_threshold"][kind]
                row[f"{setup}_sensitivity"] = at["sensitivity"]
                row[f"{setup}_specificity"] = at["specificity"]
                row[f"{setup}_threshold_value"] = at["threshold"]
                cells += [f"{at['sensitivity']:.3f}", f"{at['specificity']:.3f}"]
            rows.append(row)
            md_rows.append([display_name(model), *cells])
        header = ["Model"] + [f"{setup_label(s)} {m}" for s in setups for m in ("sensitivity", "specificity")]
        bodies.append(f"At {description}:\n\n{markdown_table(header, md_rows)}")
    caption = "Sensitivity (fakes called fake) and specificity (reals called real) on Celeb-DF-v2 (higher is better)."
    notes = ["Threshold: per block above; `threshold` column in the CSV (validation | test_eer), the value used in `<setup>_threshold_value`."]
    return Table(pd.DataFrame(rows), _document("celebdf_sensitivity_specificity", caption, "\n".join(bodies), notes))


# ---------------------------------------------------------------- Tables 3.2-3.5


def errors_by_tag_table(
    runs: Sequence[dict[str, Any]],
    models: Sequence[str],
    setups: Sequence[str],
    label: str,
    kind: str,
    threshold_kind: str = "test_eer",
) -> Table:
    """% of misclassified ``label`` videos per ``kind`` tag, for each model's best setup.

    The best setup is the one with the lowest DFDC log loss; the worst tag of each model is
    marked. The augmenter tables end with a ``none`` row: videos with no augmenter nor distractor.
    A test set without any tag (the released DFDC test set's ``labels.csv``) gives an empty table
    whose document is one line saying so.
    """
    if label not in ("fake", "real") or kind not in ("distractor", "augmenter"):
        raise TableError(f"errors by tag: label must be fake|real and kind distractor|augmenter, got {label!r}, {kind!r}")
    name = f"dfdc_{label}_errors_by_{kind}"
    best = best_setups(runs, models, setups)
    percents: dict[str, dict[str, float]] = {}
    videos: dict[str, int] = {}
    thresholds = {}
    for model in models:
        run = run_of(runs, model, best[model])
        thresholds[model] = run["at_threshold"][threshold_kind]["threshold"]
        column = {}
        for row in run["errors_by_tag"][threshold_kind]:
            if row["label"] != label or not (row["kind"] == kind or (kind == "augmenter" and row["tag"] == NO_TAG)):
                continue
            column[row["name"]] = float(row["percent"])
            videos[row["name"]] = max(videos.get(row["name"], 0), int(row["videos"]))
        percents[model] = column
    tagged = any(row["tag"] != NO_TAG for m in models for row in run_of(runs, m, best[m])["errors_by_tag"][threshold_kind])
    tags = sorted(t for t in videos if t != NO_TAG) + ([NO_TAG] if NO_TAG in videos else [])
    what = "fake videos called real" if label == "fake" else "real videos called fake"
    caption = (
        f"Percentage of misclassified {label} videos ({what}) of the DFDC test set per {kind}, for each "
        f"model's best setup (lowest DFDC log loss, in brackets). **Bold**: the worst {kind} for the model."
    )
    notes = [
        f"Threshold: {THRESHOLD_KINDS[threshold_kind]}; "
        + ", ".join(f"{display_name(m)} {thresholds[m]:.4f}" for m in models)
        + "."
    ]
    if not tagged or not tags:
        # an honest empty table, not a failed workflow: the released DFDC test set's labels.csv
        # has no tags at all, and a small test set may hold no such video
        if not tagged:
            note = ("The test set has no augmenter or distractor tags (its labels file has no tag columns and no "
                    "tags file is configured: datasets.<name>.tags), so no per-tag error rates can be given.")
        else:
            note = f"No {label} video of the test set carries a {kind} tag (the labels file has no {kind}s for them)."
        log.warning("%s: %s", name, note)
        columns = ["tag", "videos", *models, *[f"worst_{m}" for m in models], "threshold"]
        return Table(pd.DataFrame(columns=columns), _document(name, caption, note + "\n", notes))
    grid = pd.DataFrame({m: [percents[m].get(t, math.nan) for t in tags] for m in models}, index=tags)
    absent = grid.isna()
    if absent.any().any():
        model = grid.columns[absent.any()][0]
        raise TableError(f"{name}: model {model!r} has no {label} videos for tags {list(grid.index[absent[model]])}")
    worst = grid.apply(lambda column: column == column.max())
    data = pd.DataFrame({"tag": tags, "videos": [videos[t] for t in tags]})
    for model in models:
        data[model] = grid[model].to_numpy()
    for model in models:
        data[f"worst_{model}"] = worst[model].to_numpy()
    data["threshold"] = threshold_kind
    header = ["", *[f"{display_name(m)} ({best[m]})" for m in models]]
    md_rows = [
        ["no distractor/augmenter" if tag == NO_TAG else tag, *[emphasise(f"{grid.loc[tag, m]:.1f}", bold=bool(worst.loc[tag, m])) for m in models]]
        for tag in tags
    ]
    return Table(data, _document(name, caption, markdown_table(header, md_rows), notes))


# ---------------------------------------------------------------- ensemble rows (thesis 3.3)


def finite_value(value: Any, where: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise TableError(f"{where}: the value is {number}; check its metrics file")
    return number


def run_label(record: dict[str, Any]) -> str:
    """``EFB4_NS (default)`` for a run, ``Ensemble effnets (mean_logit)`` for an ensemble."""
    if record.get("ensemble"):
        return f"Ensemble {record['ensemble']} ({record.get('method', '')})"
    return f"{display_name(record['model'])} ({record['aug']})"


def ensemble_block(ensembles: Sequence[dict[str, Any]], values: dict[str, Callable[[dict], float]],
                   headers: dict[str, str], digits: int = 4) -> tuple[pd.DataFrame, str]:
    """Rows for ensembles: CSV columns ``model`` (the ensemble), ``name``, ``kind`` = ensemble,
    ``method``, ``members`` and one column per ``values`` key; a Markdown table with ``headers``."""
    rows, md_rows = [], []
    for record in ensembles:
        row = {"model": record["ensemble"], "name": run_label(record), "kind": "ensemble",
               "method": record["method"], "members": " + ".join(record["members"])}
        for key, value in values.items():
            row[key] = finite_value(value(record), f"ensemble {record['ensemble']} {key}")
        rows.append(row)
        md_rows.append([run_label(record), " + ".join(record["members"]),
                        *[f"{row[key]:.{digits}f}" for key in values]])
    body = markdown_table(["Ensemble", "Members", *[headers[key] for key in values]], md_rows)
    return pd.DataFrame(rows), body


def with_ensembles(table: Table, ensembles: Sequence[dict[str, Any]], values: dict[str, Callable[[dict], float]],
                   headers: dict[str, str], digits: int = 4) -> Table:
    """``table`` with an ensemble block appended: CSV rows (``kind`` run | ensemble) and Markdown."""
    if not ensembles:
        return table
    rows, body = ensemble_block(ensembles, values, headers, digits)
    data = pd.concat([_with_kind(table.data), rows], ignore_index=True)
    methods = sorted({record["method"] for record in ensembles})
    note = "Ensembles join their members' video scores by " + "; ".join(f"{m}: {registry.ENSEMBLE_METHODS[m]}" for m in methods) + "."
    return Table(data, f"{table.markdown.rstrip()}\n\nEnsembles:\n\n{body}\n{note}  \n")


def _with_kind(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with a ``kind`` column (``run`` where it had none), so other kinds of row can follow."""
    if "kind" in data.columns:
        return data
    data = data.copy()
    data.insert(min(2, len(data.columns)), "kind", "run")
    return data


# ---------------------------------------------------------------- baseline rows

#: Under every table with baseline rows: what a baseline is.
BASELINE_NOTE = ("Baselines: published detectors NOT trained by the pipeline (trained by their authors on the data "
                 "named), scored on the same test-flow faces with the same aggregation, each with its own "
                 "preprocessing.")


def with_baselines(table: Table, baselines: Sequence[dict[str, Any]], values: dict[str, Callable[[dict], float]],
                   headers: dict[str, str], digits: int = 4, thresholds: bool = False) -> Table:
    """``table`` with a block of baseline rows appended (config ``baselines``; none: ``table`` itself).

    CSV rows: ``model`` (the baseline's name), ``name``, ``kind`` baseline, ``aug``
    :data:`facesleuth.registry.BASELINE`, ``trained_on`` and one column per ``values`` key.
    ``thresholds``: the table's numbers depend on a threshold, so the note gives each baseline's own.
    """
    if not baselines:
        return table
    rows, md_rows = [], []
    for record in baselines:
        trained_on = "; ".join(record.get("trained_on") or []) or "unknown"
        row = {"model": record["model"], "name": run_label(record), "kind": "baseline", "aug": registry.BASELINE,
               "trained_on": trained_on}
        for key, value in values.items():
            row[key] = finite_value(value(record), f"baseline {record['model']} {key}")
        rows.append(row)
        md_rows.append([run_label(record), trained_on, *[f"{row[key]:.{digits}f}" for key in values]])
    body = markdown_table(["Baseline", "Trained on (by its authors)", *[headers[key] for key in values]], md_rows)
    notes = [BASELINE_NOTE]
    if thresholds:
        notes.append("A baseline's validation threshold is its run folder's own, not chosen on the study's data: "
                     + ", ".join(f"{run_label(r)} {r['validation_threshold']:.4f}" for r in baselines) + ".")
    data = pd.concat([_with_kind(table.data), pd.DataFrame(rows)], ignore_index=True)
    return Table(data, f"{table.markdown.rstrip()}\n\nBaselines:\n\n{body}\n" + "".join(f"{n}  \n" for n in notes))


# ---------------------------------------------------------------- writing


def write(table: Table, csv_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    write_text_atomic(table.data.to_csv(index=False), csv_path)
    write_text_atomic(table.markdown, md_path)


# ---------------------------------------------------------------- builders named in the catalog
# Each takes a rule's inputs (name -> paths) and settings, plus the entry's options.


def build_params(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    return params_table(settings["models"], settings["dropout"])


def build_precision(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    study = settings["precision_study"]
    return precision_table(list(study["runs"]), study["runs"], inputs["histories"], inputs["metrics"], study["model"])


def _ensembles(inputs: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The metrics of the configured ensembles on the table's test set (none when not configured)."""
    return read_metrics(inputs.get("ensembles", []))


def _at(kind: str, key: str) -> Callable[[dict], float]:
    return lambda record: record["at_threshold"][kind][key]


def _baselines(inputs: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The metrics of the configured baselines on the table's test set (none when not configured)."""
    return read_metrics(inputs.get("baselines", []))


def build_logloss(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    table = logloss_table(read_metrics(inputs["metrics"]), settings["models"], settings["setups"])
    values, headers = {"log_loss": lambda r: r["log_loss"]}, {"log_loss": "Log loss"}
    return with_baselines(with_ensembles(table, _ensembles(inputs), values, headers), _baselines(inputs), values,
                          headers)


def build_errors_by_tag(inputs: dict[str, list[str]], settings: dict[str, Any], label: str, kind: str) -> Table:
    return errors_by_tag_table(read_metrics(inputs["metrics"]), settings["models"], settings["setups"], label, kind)


def build_sensitivity_specificity(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    table = sensitivity_specificity_table(read_metrics(inputs["metrics"]), settings["models"], settings["setups"],
                                          settings.get("validation"))
    values = {f"{key}_{kind}": _at(kind, key) for kind in THRESHOLD_KINDS for key in ("sensitivity", "specificity")}
    headers = {f"{key}_{kind}": f"{key} ({kind})" for kind in THRESHOLD_KINDS for key in ("sensitivity", "specificity")}
    table = with_ensembles(table, _ensembles(inputs), values, headers, digits=3)
    return with_baselines(table, _baselines(inputs), values, headers, digits=3, thresholds=True)


def build_f1(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    table = f1_table(read_metrics(inputs["metrics"]), settings["models"], settings["setups"], settings.get("validation"))
    values = {f"f1_{kind}": _at(kind, "f1") for kind in THRESHOLD_KINDS}
    headers = {f"f1_{kind}": f"F1 ({kind})" for kind in THRESHOLD_KINDS}
    table = with_ensembles(table, _ensembles(inputs), values, headers, digits=3)
    return with_baselines(table, _baselines(inputs), values, headers, digits=3, thresholds=True)


def make_table(name: str, inputs: dict[str, list[str]], settings: dict[str, Any], csv_path: str | os.PathLike, md_path: str | os.PathLike) -> Table:
    """Build table ``name`` (a key of :data:`facesleuth.report.catalog.TABLES`) from rule inputs and params, and write it.

    ``inputs``: ``metrics`` (JSON paths) and, for ``precision``, ``histories``; ``settings``:
    ``models``, ``setups`` and per table ``dropout`` or the precision study's settings.
    """
    entry = catalog.TABLES.get(name)
    if entry is None:
        raise TableError(f"unknown table {name!r} (known: {sorted(catalog.TABLES)})")
    table = registry.resolve(entry.builder)(inputs, settings, **entry.options)
    write(table, csv_path, md_path)
    log.info("wrote %s (%s) to %s and %s", name, entry.number, csv_path, md_path)
    return table
