"""The trained run a scan uses: weights, settings, threshold and aggregation from its run folder.

A run folder (``results/models/{model}/{setup}/``, docs/architecture.md "Run folder") carries
everything a scan needs: ``best.pt`` holds the weights and the resolved settings (model name,
input size, preprocessing, what it was trained on), ``threshold.json`` the validation EER
threshold that turns a score into a verdict. The scanner reads the folder, never the config
the run was trained with, so a copied run folder scans the same anywhere.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
DEFAULT_AGGREGATION = "mean"  # the thesis: mean fake confidence of the sampled faces

RUN_FOLDER_HELP = (
    "A run folder (results/models/<model>/<setup>/) holds best.pt (the trained weights and their "
    "settings), run.yaml (the same settings, readable) and threshold.json (the validation EER "
    "threshold). Make one with `snakemake results/models/<model>/<setup>/best.pt`, or "
    "`snakemake results/models/<model>/<setup>/threshold.json` for the weights and the threshold, "
    "then pass the folder (or its best.pt) to --model."
)


class RunFolderError(ValueError):
    """``--model`` does not name a usable run; the message says what a run folder holds."""


@dataclass
class ScanRun:
    """A loaded run: the model in eval mode on ``device`` and how to read its scores."""

    folder: Path
    checkpoint: Path
    model: nn.Module = field(repr=False)
    info: dict[str, Any]
    device: str
    threshold: float
    threshold_source: str  # "validation" (threshold.json) or "default" (none found)
    threshold_info: dict[str, Any]
    aggregation: str
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``model/setup``, as the run folder is named."""
        return f"{self.info.get('model', '?')}/{self.info.get('setup', '?')}"

    @property
    def input_size(self) -> int:
        return int(self.info["input_size"])

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for reports (no weights)."""
        return {
            "run": str(self.folder),
            "checkpoint": str(self.checkpoint),
            "name": self.name,
            "model": self.info.get("model"),
            "timm_name": self.info.get("timm_name"),
            "setup": self.info.get("setup"),
            "input_size": self.input_size,
            "trained_on": list(self.info.get("trained_on") or []),
            "best_epoch": self.info.get("best_epoch"),
            "device": self.device,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "eer": self.threshold_info.get("eer"),
            "auc": self.threshold_info.get("auc"),
            "aggregation": self.aggregation,
            "notes": list(self.notes),
        }


def _locate(path: Path) -> tuple[Path, Path]:
    """(run folder, best.pt) for a folder or a checkpoint file; RunFolderError when neither."""
    if not path.exists():
        raise RunFolderError(f"--model {path}: no such file or folder. {RUN_FOLDER_HELP}")
    if path.is_dir():
        checkpoint = path / "best.pt"
        if not checkpoint.is_file():
            present = sorted(p.name for p in path.iterdir())[:8]
            raise RunFolderError(
                f"--model {path}: not a training run folder, it has no best.pt "
                f"(it holds: {', '.join(present) or 'nothing'}). {RUN_FOLDER_HELP}"
            )
        return path, checkpoint
    return path.parent, path


def read_threshold(folder: Path) -> tuple[float, str, dict[str, Any]]:
    """(threshold, source, threshold.json content) of a run folder; 0.5 when it has none."""
    path = folder / "threshold.json"
    if not path.exists():
        return DEFAULT_THRESHOLD, "default", {}
    try:
        content = json.loads(path.read_text())
        threshold = float(content["eer_threshold"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunFolderError(
            f"{path} is not a valid threshold file ({type(err).__name__}: {err}); it should hold "
            f'{{"eer_threshold": <0..1>, ...}}. Rebuild it with '
            f"`snakemake {path}` or delete it to scan at the default threshold {DEFAULT_THRESHOLD}."
        ) from None
    if not math.isfinite(threshold):
        raise RunFolderError(f"{path}: eer_threshold is {threshold}; rebuild it with `snakemake {path}`")
    return threshold, str(content.get("source") or "validation"), content


def load_scan_run(path: str | Path, device: str = "cpu") -> ScanRun:
    """Load the run at ``path`` (run folder or its best.pt) onto ``device`` (already resolved).

    Raises :class:`RunFolderError` with what a run folder must hold and how to make one.
    """
    import torch

    from facesleuth.predict import AGGREGATIONS, is_aggregation, load_run
    from facesleuth.preprocess import PREPROCESSING

    folder, checkpoint = _locate(Path(path))
    try:
        model, info = load_run(checkpoint, device)
    except Exception as err:  # noqa: BLE001 - any failure means the file is not a usable run
        raise RunFolderError(f"--model {path}: cannot load {checkpoint}: {err}. {RUN_FOLDER_HELP}") from None
    # channels_last on CPU too (load_run does it on GPU): the same scores, and EfficientNet-B0
    # spent 0.82 s of CPU on 30 faces instead of 1.28 s (benchmarks/README.md, scan latency).
    model = model.to(memory_format=torch.channels_last)
    threshold, source, threshold_info = read_threshold(folder)
    notes = []
    if source == "default":
        notes.append(
            f"no threshold.json in {folder}: verdicts use the default threshold {DEFAULT_THRESHOLD} "
            f"(make the validation EER threshold with `snakemake {folder / 'threshold.json'}`)"
        )
    # The threshold was chosen on video scores made with one aggregation; use the same one.
    aggregation = str(threshold_info.get("aggregation") or info.get("aggregation") or DEFAULT_AGGREGATION)
    if not is_aggregation(aggregation):
        raise RunFolderError(f"{folder}: unknown aggregation {aggregation!r} (known: {', '.join(AGGREGATIONS)})")
    preprocessing = info.get("preprocessing")
    if preprocessing and preprocessing != PREPROCESSING:
        notes.append(
            f"the run was trained with preprocessing {preprocessing}, this facesleuth prepares faces as "
            f"{PREPROCESSING}: scores may be off"
        )
    for note in notes:
        log.warning("%s", note)
    return ScanRun(
        folder=folder, checkpoint=checkpoint, model=model, info=info, device=str(device),
        threshold=threshold, threshold_source=source, threshold_info=threshold_info,
        aggregation=aggregation, notes=notes,
    )
