"""Tables of the studies beyond the thesis (its discussion, 3.3).

Pure functions from already-read records to a :class:`~facesleuth.report.tables.Table`: calibration
(log loss before and after the validation temperature), aggregations (video log loss and AUC
per run x aggregation), ROC-AUC of every run and ensemble per test set, and the generalisation
matrix (ROC-AUC per training set x model x setup on every test set; its heatmap is
:func:`facesleuth.report.figures.generalisation_heatmap`). The ensemble rows of the thesis's own tables
are :func:`facesleuth.report.tables.with_ensembles`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from facesleuth import registry
from facesleuth.report.tables import (
    BASELINE_NOTE,
    Table,
    TableError,
    display_name,
    emphasise,
    finite_value,
    markdown_table,
    read_metrics,
    run_label,
    setup_label,
)

CAPTIONS = {
    "calibration_logloss": "Video log loss before and after temperature scaling (one temperature per run, "
                           "fitted on its validation videos; lower is better).",
    "aggregations": "Video log loss and ROC-AUC per run and aggregation of the face scores into a video score.",
    "generalisation_auc": "ROC-AUC of every run on every test set: rows are training set x model x setup.",
}
#: The training set column of a baseline's generalisation row: the pipeline did not train it.
NOT_TRAINED = "-"


def document(title: str, caption: str, body: str, notes: Sequence[str] = ()) -> str:
    text = f"**{title}.** {caption}\n\n{body}"
    if notes:
        text += "\n" + "\n".join(f"{note}  " for note in notes).rstrip() + "\n"
    return text


# ---------------------------------------------------------------- calibration


def calibration_table(records: Sequence[dict[str, Any]], testsets: Sequence[str], title: str = "Calibration") -> Table:
    """Log loss before/after calibration per run (rows) and test set (column pairs).

    ``records``: one per run x test set, each with ``model``, ``aug`` (or ``ensemble`` and
    ``method``), ``testset``, ``temperature``, ``log_loss_before`` and ``log_loss_after``.
    """
    keyed: dict[tuple, dict[str, dict[str, Any]]] = {}
    labels: dict[tuple, str] = {}
    for record in records:
        key = (record.get("ensemble") or "", record.get("model", ""), record.get("aug", ""))
        keyed.setdefault(key, {})[record["testset"]] = record
        labels[key] = run_label(record)
    if not keyed:
        raise TableError("calibration table: no calibrated runs")
    rows, md_rows = [], []
    for key, by_testset in keyed.items():
        missing = [t for t in testsets if t not in by_testset]
        if missing:
            raise TableError(f"calibration table: {labels[key]} has no calibrated metrics on {missing}")
        temperature = finite_value(next(iter(by_testset.values()))["temperature"], f"{labels[key]} temperature")
        row: dict[str, Any] = {"model": key[1] or key[0], "aug": key[2], "kind": "ensemble" if key[0] else "run",
                               "name": labels[key], "temperature": temperature}
        cells = [f"{temperature:.3f}"]
        for testset in testsets:
            before = finite_value(by_testset[testset]["log_loss_before"], f"{labels[key]} {testset}")
            after = finite_value(by_testset[testset]["log_loss_after"], f"{labels[key]} {testset}")
            row[f"{testset}_before"], row[f"{testset}_after"] = before, after
            cells += [f"{before:.4f}", emphasise(f"{after:.4f}", bold=after < before)]
        rows.append(row)
        md_rows.append([labels[key], *cells])
    header = ["Run", "Temperature", *[f"{t} {when}" for t in testsets for when in ("before", "after")]]
    notes = [("**Bold**: calibration lowered the test log loss. The temperature never changes AUC or the EER "
              "(it is monotonic); the validation EER threshold moves with the scores.")]
    return Table(pd.DataFrame(rows), document(title, CAPTIONS["calibration_logloss"], markdown_table(header, md_rows), notes))


# ---------------------------------------------------------------- aggregations


def aggregation_table(records: Sequence[dict[str, Any]], aggregations: Sequence[str], testsets: Sequence[str],
                      title: str = "Aggregations") -> Table:
    """Per test set a block: rows run, columns aggregation (log loss, AUC); the lowest log loss
    of each run in **bold**.

    ``records``: one per run x test set with ``model``, ``aug``, ``testset`` and
    ``aggregations`` = ``{name: {log_loss, auc}}``.
    """
    rows, bodies = [], []
    for testset in testsets:
        md_rows = []
        for record in (r for r in records if r["testset"] == testset):
            by_name = record["aggregations"]
            missing = [a for a in aggregations if a not in by_name]
            if missing:
                raise TableError(f"aggregation table: {run_label(record)} on {testset} lacks {missing}")
            losses = {a: finite_value(by_name[a]["log_loss"], f"{run_label(record)} {a}") for a in aggregations}
            aucs = {a: finite_value(by_name[a]["auc"], f"{run_label(record)} {a}") for a in aggregations}
            best = min(losses.values())
            row = {"testset": testset, "model": record["model"], "aug": record["aug"], "name": run_label(record)}
            for a in aggregations:
                row[f"{a}_log_loss"], row[f"{a}_auc"] = losses[a], aucs[a]
            row["best_aggregation"] = min(aggregations, key=lambda a: losses[a])
            rows.append(row)
            md_rows.append([run_label(record), *[cell for a in aggregations for cell in (
                emphasise(f"{losses[a]:.4f}", bold=losses[a] == best), f"{aucs[a]:.3f}")]])
        if not md_rows:
            raise TableError(f"aggregation table: no runs scored on {testset}")
        header = ["Run", *[f"{a} {m}" for a in aggregations for m in ("log loss", "AUC")]]
        bodies.append(f"{testset}:\n\n{markdown_table(header, md_rows)}")
    notes = [("mean: the thesis's; median; max; top_mean: the highest quarter of the faces; top<k>_mean: the k "
              "faces scored most fake; max_track_mean: the largest mean of one tracked person. **Bold**: the "
              "run's lowest log loss. No threshold: both numbers use the scores.")]
    return Table(pd.DataFrame(rows), document(title, CAPTIONS["aggregations"], "\n".join(bodies), notes))


# ---------------------------------------------------------------- generalisation


def generalisation_table(runs: Sequence[dict[str, Any]], trainsets: Sequence[str], models: Sequence[str],
                         setups: Sequence[str], testsets: Sequence[str],
                         home_testsets: dict[str, str] | None = None, title: str = "Generalisation",
                         baselines: Sequence[dict[str, Any]] = ()) -> Table:
    """ROC-AUC matrix: rows training set x model x setup, columns test sets.

    ``runs``: metrics records each with ``trainset``, ``model``, ``aug``, ``testset``, ``auc``.
    ``home_testsets`` maps a training set to its own test set (same source), marked *italic*:
    the other columns measure generalisation to unseen data. ``baselines``: metrics records of
    the configured baselines, one row each after the matrix with the training set ``-`` (not
    trained by the pipeline, their row would be the same for every training set) and what their
    authors trained them on in ``trained_on``.
    """
    home_testsets = home_testsets or {}
    found = {(r["trainset"], r["model"], r["aug"], r["testset"]): r for r in runs}
    rows, md_rows = [], []
    for trainset in trainsets:
        for model in models:
            for setup in setups:
                row: dict[str, Any] = {"trainset": trainset, "model": model, "aug": setup,
                                       "name": f"{display_name(model)} ({setup})"}
                cells = []
                for testset in testsets:
                    record = found.get((trainset, model, setup, testset))
                    if record is None:
                        raise TableError(f"generalisation table: no metrics for {model} {setup} trained on "
                                         f"{trainset}, tested on {testset}")
                    row[testset] = finite_value(record["auc"], f"{trainset}/{model}/{setup} on {testset}")
                    cells.append(emphasise(f"{row[testset]:.3f}", italic=home_testsets.get(trainset) == testset))
                rows.append(row)
                md_rows.append([trainset, display_name(model), setup_label(setup), *cells])
    if not rows:
        raise TableError("generalisation table: no training sets, models or setups")
    notes = ["*Italic*: the training set's own test set. No threshold: ROC-AUC uses the scores."]
    for name, by_testset in _by_baseline(baselines, testsets, "generalisation table").items():
        first = next(iter(by_testset.values()))
        row = {"trainset": NOT_TRAINED, "model": name, "aug": registry.BASELINE, "name": run_label(first),
               "kind": "baseline", "trained_on": "; ".join(first.get("trained_on") or []) or "unknown"}
        for testset, record in by_testset.items():
            row[testset] = finite_value(record["auc"], f"baseline {name} on {testset}")
        rows.append(row)
        md_rows.append([NOT_TRAINED, display_name(name), registry.BASELINE, *[f"{row[t]:.3f}" for t in testsets]])
    if baselines:
        notes.append(f"Training set {NOT_TRAINED}: a baseline ({BASELINE_NOTE})")
    body = markdown_table(["Training set", "Model", "Setup", *testsets], md_rows)
    return Table(pd.DataFrame(rows), document(title, CAPTIONS["generalisation_auc"], body, notes))


def _by_baseline(baselines: Sequence[dict[str, Any]], testsets: Sequence[str], where: str) -> dict[str, dict[str, dict]]:
    """Baseline metrics records by baseline name, then test set (each baseline on every test set)."""
    grouped: dict[str, dict[str, dict]] = {}
    for record in baselines:
        grouped.setdefault(record["model"], {})[record["testset"]] = record
    for name, by_testset in grouped.items():
        missing = [t for t in testsets if t not in by_testset]
        if missing:
            raise TableError(f"{where}: no metrics for baseline {name} on {missing}")
        grouped[name] = {t: by_testset[t] for t in testsets}
    return grouped


# ---------------------------------------------------------------- ROC-AUC of every run and ensemble


def auc_table(runs: Sequence[dict[str, Any]], ensembles: Sequence[dict[str, Any]], models: Sequence[str],
              setups: Sequence[str], testsets: Sequence[str], title: str = "ROC-AUC",
              baselines: Sequence[dict[str, Any]] = ()) -> Table:
    """Rows: every grid run, then every ensemble, then every baseline; columns: test sets; the
    best of each column **bold**."""
    found = {(r["model"], r["aug"], r["testset"]): r for r in runs}
    found.update({("ensemble", e["ensemble"], e["testset"]): e for e in ensembles})
    found.update({(b["model"], registry.BASELINE, b["testset"]): b for b in baselines})
    keys = [(m, s) for m in models for s in setups] + list(dict.fromkeys(("ensemble", e["ensemble"]) for e in ensembles))
    keys += list(dict.fromkeys((b["model"], registry.BASELINE) for b in baselines))
    rows = []
    for model, aug in keys:
        records = {t: found.get((model, aug, t)) for t in testsets}
        missing = [t for t, r in records.items() if r is None]
        if missing:
            raise TableError(f"AUC table: no metrics for {model}/{aug} on {missing}")
        first = next(iter(records.values()))
        kind = "ensemble" if model == "ensemble" else "baseline" if aug == registry.BASELINE else "run"
        row: dict[str, Any] = {"model": aug if model == "ensemble" else model, "aug": "" if model == "ensemble" else aug,
                               "kind": kind, "name": run_label(first)}
        for testset, record in records.items():
            row[testset] = finite_value(record["auc"], f"{row['name']} on {testset}")
        rows.append(row)
    data = pd.DataFrame(rows)
    best = {t: data[t].max() for t in testsets}
    md_rows = [[row["name"], *[emphasise(f"{row[t]:.3f}", bold=row[t] == best[t]) for t in testsets]] for row in rows]
    notes = ["**Bold**: the best of the column. No threshold: ROC-AUC uses the scores."]
    if baselines:
        notes.append(f"Rows marked (baseline): {BASELINE_NOTE[len('Baselines: '):]}")
    caption = "ROC-AUC (fake positive) of every run and ensemble on every test set (higher is better)."
    return Table(data, document(title, caption, markdown_table(["Run", *testsets], md_rows), notes))


# ---------------------------------------------------------------- builders named in the registry
# Each takes a rule's inputs (name -> paths) and settings, as facesleuth.report.tables' builders do.


def _json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise TableError(f"{path} cannot be read ({err}); rerun the rule that makes it") from None


def calibration_records(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calibration rows from metrics records (runs' and ensembles'), which carry a ``calibration`` block."""
    records = []
    for run in runs:
        if "calibration" not in run:
            raise TableError(f"{run.get('path', run.get('model'))} has no calibration block; rerun its metrics rule")
        record = {key: run[key] for key in ("model", "aug", "testset", "ensemble", "method") if key in run}
        records.append({**record, **run["calibration"]})
    return records


def build_calibration(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    runs = read_metrics(inputs["metrics"]) + read_metrics(inputs.get("ensembles", []))
    return calibration_table(calibration_records(runs), settings["calibration_testsets"], "Calibration")


def build_aggregations(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    records = [record for path in inputs["studies"] for record in _json(path)["runs"]]
    return aggregation_table(records, settings["aggregations"], settings["testsets"], "Aggregations")


def build_auc(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    return auc_table(read_metrics(inputs["metrics"]), read_metrics(inputs.get("ensembles", [])), settings["models"],
                     settings["setups"], settings["testsets"], baselines=read_metrics(inputs.get("baselines", [])))


def build_generalisation(inputs: dict[str, list[str]], settings: dict[str, Any]) -> Table:
    """The matrix from the metrics listed cell by cell, in the order of ``settings["generalisation"]["cells"]``."""
    matrix = settings["generalisation"]
    return generalisation_table(generalisation_records(inputs["metrics"], matrix), matrix["training_sets"],
                                matrix["models"], matrix["setups"], matrix["testsets"], matrix["home_testsets"],
                                baselines=read_metrics(inputs.get("baselines", [])))


def generalisation_records(paths: Sequence[str], matrix: dict[str, Any]) -> list[dict[str, Any]]:
    """Metrics records of the matrix's cells, each with its ``trainset`` (``paths`` follow ``matrix["cells"]``)."""
    cells = matrix["cells"]
    if len(paths) != len(cells):
        raise TableError(f"generalisation table: {len(paths)} metrics files for {len(cells)} cells")
    records = []
    for (trainset, model, setup, testset), run in zip(cells, read_metrics(paths)):
        records.append({**run, "trainset": trainset, "model": model, "aug": setup, "testset": testset})
    return records
