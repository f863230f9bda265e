"""Shared fixtures. Sample media are read in place from ../shared/data/samples (never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("FACESLEUTH_SAMPLES", REPO_ROOT.parent / "shared" / "data" / "samples"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"sample media not found at {SAMPLES}; set FACESLEUTH_SAMPLES to the shared samples folder")
    return SAMPLES
