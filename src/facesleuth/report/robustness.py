"""The robustness tables: ROC-AUC and video log loss of each run on perturbed copies of its test
sets, one row per run and test set and one column per perturbation (``clean`` first: the
unperturbed test set), from the scores of :func:`facesleuth.evaluate.robustness.score_grid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from facesleuth import registry
from facesleuth.report import catalog
from facesleuth.evaluate.robustness import CLEAN, METRICS, score_grid
from facesleuth.report.tables import BASELINE_NOTE, Table, markdown_table


def wide(grid: pd.DataFrame, metric: str, perturbations: Sequence[str]) -> pd.DataFrame:
    """Rows: test set and run; columns: ``clean`` then each perturbation, in the given order."""
    table = grid.pivot_table(index=["testset", "run"], columns="perturbation", values=metric, aggfunc="first", dropna=False)
    columns = [CLEAN, *perturbations]
    return table.reindex(columns=columns).reset_index().rename_axis(columns=None)


def _markdown(data: pd.DataFrame, metric: str, number: str | None) -> str:
    title, _, better = METRICS[metric]
    value_columns = [c for c in data.columns if c not in ("testset", "run")]
    rows = [
        [row.testset, row.run, *("n/a" if pd.isna(v) else f"{v:.3f}" for v in row[value_columns])]
        for _, row in data.iterrows()
    ]
    head = f"**{number}.** " if number else ""
    caption = (
        f"{head}Video {title} of each run on perturbed copies of its test sets ({better} is better). "
        "`clean`: the test set as it is; `family_value`: every video perturbed (see facesleuth.extract.perturb)."
    )
    return caption + "\n\n" + markdown_table(["test set", "run", *value_columns], rows)


def build_robustness(inputs: dict[str, list[str]], settings: dict[str, Any], metric: str) -> Table:
    """Registry builder of ``robustness_auc`` / ``robustness_logloss``: ``inputs["predictions"]``
    are video prediction files in the order of ``settings["cells"]``."""
    grid = score_grid(settings["cells"], inputs["predictions"])
    data = wide(grid, metric, settings["perturbations"])
    markdown = _markdown(data, metric, catalog.TABLES[f"robustness_{metric}"].number)
    if any(cell.get("baseline") for cell in settings["cells"]):
        markdown += f"\nRuns ending in /{registry.BASELINE}: {BASELINE_NOTE[len('Baselines: '):]}  \n"
    return Table(data, markdown)
