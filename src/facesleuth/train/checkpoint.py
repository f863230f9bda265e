"""Checkpoint files of a run (``best.pt``, ``last.pt``): written atomically, read as plain data.

Training writes them, prediction and the scanner read them; they live here so that reading a
trained run never imports the trainer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from facesleuth.io import atomic_path


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`facesleuth.io.atomic_path`: a kill never leaves a truncated checkpoint."""
    import torch  # heavy (seconds): loaded when a checkpoint is written, not when the package is imported

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path`` (tensors and plain Python values only); RuntimeError naming the file if unreadable."""
    import torch  # heavy (seconds): loaded when a checkpoint is read, not when the package is imported

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file
        raise RuntimeError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
