"""Tables and figures of the studies beyond the thesis (its discussion, 3.3).

Pure functions from already-read records to a :class:`~facesleuth.tables.Table` or a matplotlib
figure: calibration (log loss before and after the validation temperature), aggregations
(video log loss and AUC per run x aggregation), the generalisation matrix (ROC-AUC per
training set x model x setup on every test set) and its heatmap, and the ensemble rows added
to the thesis's tables and ROC figure.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd

from facesleuth.ensembles import METHODS
from facesleuth.tables import Table, TableError, display_name, emphasise, markdown_table, setup_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

CAPTIONS = {
    "calibration_logloss": "Video log loss before and after temperature scaling (one temperature per run, "
                           "fitted on its validation videos; lower is better).",
    "aggregations": "Video log loss and ROC-AUC per run and aggregation of the face scores into a video score.",
    "generalisation_auc": "ROC-AUC of every run on every test set: rows are training set x model x setup.",
}


def document(title: str, caption: str, body: str, notes: Sequence[str] = ()) -> str:
    text = f"**{title}.** {caption}\n\n{body}"
    if notes:
        text += "\n" + "\n".join(f"{note}  " for note in notes).rstrip() + "\n"
    return text


def _finite(value: Any, where: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise TableError(f"{where}: the value is {number}; check its metrics file")
    return number


def run_label(record: dict[str, Any]) -> str:
    """``EFB4_NS (default)`` for a run, ``Ensemble effnets (mean_logit)`` for an ensemble."""
    if record.get("ensemble"):
        return f"Ensemble {record['ensemble']} ({record.get('method', '')})"
    return f"{display_name(record['model'])} ({record['aug']})"


# ---------------------------------------------------------------- ensemble rows


def ensemble_block(ensembles: Sequence[dict[str, Any]], values: dict[str, Callable[[dict], float]],
                   headers: dict[str, str], digits: int = 4) -> tuple[pd.DataFrame, str]:
    """Rows for ensembles: CSV columns ``model`` (the ensemble), ``name``, ``kind`` = ensemble,
    ``method``, ``members`` and one column per ``values`` key; a Markdown table with ``headers``."""
    rows, md_rows = [], []
    for record in ensembles:
        row = {"model": record["ensemble"], "name": run_label(record), "kind": "ensemble",
               "method": record["method"], "members": " + ".join(record["members"])}
        for key, value in values.items():
            row[key] = _finite(value(record), f"ensemble {record['ensemble']} {key}")
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
    runs = table.data.copy()
    runs.insert(min(2, len(runs.columns)), "kind", "run")
    data = pd.concat([runs, rows], ignore_index=True)
    methods = sorted({record["method"] for record in ensembles})
    note = "Ensembles join their members' video scores by " + "; ".join(f"{m}: {METHODS[m]}" for m in methods) + "."
    return Table(data, f"{table.markdown.rstrip()}\n\nEnsembles:\n\n{body}\n{note}  \n")


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
        temperature = _finite(next(iter(by_testset.values()))["temperature"], f"{labels[key]} temperature")
        row: dict[str, Any] = {"model": key[1] or key[0], "aug": key[2], "kind": "ensemble" if key[0] else "run",
                               "name": labels[key], "temperature": temperature}
        cells = [f"{temperature:.3f}"]
        for testset in testsets:
            before = _finite(by_testset[testset]["log_loss_before"], f"{labels[key]} {testset}")
            after = _finite(by_testset[testset]["log_loss_after"], f"{labels[key]} {testset}")
            row[f"{testset}_before"], row[f"{testset}_after"] = before, after
            cells += [f"{before:.4f}", emphasise(f"{after:.4f}", bold=after < before)]
        rows.append(row)
        md_rows.append([labels[key], *cells])
    header = ["Run", "Temperature", *[f"{t} {when}" for t in testsets for when in ("before", "after")]]
    notes = ["**Bold**: calibration lowered the test log loss. The temperature never changes AUC or the EER "
             "(it is monotonic); the validation EER threshold moves with the scores."]
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
            losses = {a: _finite(by_name[a]["log_loss"], f"{run_label(record)} {a}") for a in aggregations}
            aucs = {a: _finite(by_name[a]["auc"], f"{run_label(record)} {a}") for a in aggregations}
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
    notes = ["mean: the thesis's; median; max; top_mean: the highest quarter of the faces; top<k>_mean: the k "
             "faces scored most fake; max_track_mean: the largest mean of one tracked person. **Bold**: the "
             "run's lowest log loss. No threshold: both numbers use the scores."]
    return Table(pd.DataFrame(rows), document(title, CAPTIONS["aggregations"], "\n".join(bodies), notes))


# ---------------------------------------------------------------- generalisation


def generalisation_table(runs: Sequence[dict[str, Any]], trainsets: Sequence[str], models: Sequence[str],
                         setups: Sequence[str], testsets: Sequence[str],
                         home_testsets: dict[str, str] | None = None, title: str = "Generalisation") -> Table:
    """ROC-AUC matrix: rows training set x model x setup, columns test sets.

    ``runs``: metrics records each with ``trainset``, ``model``, ``aug``, ``testset``, ``auc``.
    ``home_testsets`` maps a training set to its own test set (same source), marked *italic*:
    the other columns measure generalisation to unseen data.
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
                    row[testset] = _finite(record["auc"], f"{trainset}/{model}/{setup} on {testset}")
                    cells.append(emphasise(f"{row[testset]:.3f}", italic=home_testsets.get(trainset) == testset))
                rows.append(row)
                md_rows.append([trainset, display_name(model), setup_label(setup), *cells])
    if not rows:
        raise TableError("generalisation table: no training sets, models or setups")
    notes = ["*Italic*: the training set's own test set. No threshold: ROC-AUC uses the scores."]
    body = markdown_table(["Training set", "Model", "Setup", *testsets], md_rows)
    return Table(pd.DataFrame(rows), document(title, CAPTIONS["generalisation_auc"], body, notes))


def _pyplot():
    from facesleuth.figures import _pyplot as pyplot  # the figures' Agg backend setup

    return pyplot()


def generalisation_heatmap(data: pd.DataFrame, testsets: Sequence[str]) -> "Figure":
    """The generalisation table as a heatmap (AUC 0.5 = chance ... 1), each cell annotated."""
    plt = _pyplot()
    values = data[list(testsets)].to_numpy(dtype=float)
    labels = [f"{t} / {n}" for t, n in zip(data["trainset"], data["name"])]
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * len(testsets), 1.2 + 0.38 * len(labels)))
    image = ax.imshow(values, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    ax.set_xticks(np.arange(len(testsets)), list(testsets))
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on / model (setup)")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=7,
                    color="black" if values[i, j] > 0.8 else "white")
    fig.colorbar(image, ax=ax, label="ROC-AUC (0.5: chance)")
    ax.set_title("Generalisation: ROC-AUC of every run on every test set")
    fig.tight_layout()
    return fig


def add_ensemble_rocs(fig: "Figure", ensembles: Sequence[dict[str, Any]]) -> "Figure":
    """Draw each ensemble's ROC (dashed) on the figure's first axes and refresh the legend."""
    if not ensembles:
        return fig
    ax = fig.axes[0]
    for record in ensembles:
        ax.plot(record["roc"]["fpr"], record["roc"]["tpr"], linestyle="--", linewidth=1.6,
                label=f"{run_label(record)}, AUC {record['auc']:.3f}")
    ax.legend(fontsize=8, loc="lower right")
    return fig
