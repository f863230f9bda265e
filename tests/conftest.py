"""Shared fixtures. Sample media are read in place from ../shared/data/samples (never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_samples() -> Path:
    """FACESLEUTH_SAMPLES, else ../shared beside the checkout, else the workplace's shared folder
    (a clone made elsewhere, e.g. /tmp/ci-check, still finds it)."""
    candidates = [REPO_ROOT.parent / "shared" / "data" / "samples", Path("/work/shared/data/samples")]
    if os.environ.get("FACESLEUTH_SAMPLES"):
        candidates.insert(0, Path(os.environ["FACESLEUTH_SAMPLES"]))
    return next((c for c in candidates if c.is_dir()), candidates[0])


SAMPLES = _find_samples()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"sample media not found at {SAMPLES}; set FACESLEUTH_SAMPLES to the shared samples folder")
    return SAMPLES


@pytest.fixture
def one_torch_thread():
    """One torch thread for MTCNN-heavy tests: on a shared 2-core machine OpenMP threads spinning
    against other jobs slow MTCNN about 5x. Modules opt in with ``pytestmark = usefixtures``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
