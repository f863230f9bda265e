"""Shared fixtures. Sample media are read in place (never copied): from FACESLEUTH_SAMPLES, else
from ../shared/data/samples beside the checkout.

Without either, the tests that read samples skip and say how to get them. When FACESLEUTH_SAMPLES
is set but names no folder they fail instead, so a CI that sets it never passes by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_VARIABLE = "FACESLEUTH_SAMPLES"
HOW_TO_GET_SAMPLES = f"run `facesleuth samples fetch DIR`, then set {SAMPLES_VARIABLE}=DIR"


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """The scanner's user cache of exported models (facesleuth.evaluate.inference), kept out of the
    user's own; processes the tests start inherit it."""
    from facesleuth.evaluate.inference import CACHE_ENV

    folder = tmp_path_factory.mktemp("facesleuth-cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    """The sample media folder (see the module docstring for where it is looked for)."""
    named = os.environ.get(SAMPLES_VARIABLE)
    if named:
        folder = Path(named).resolve()
        if not folder.is_dir():
            pytest.fail(f"{SAMPLES_VARIABLE}={named}: no such folder; {HOW_TO_GET_SAMPLES}", pytrace=False)
        return folder
    folder = REPO_ROOT.parent / "shared" / "data" / "samples"
    if not folder.is_dir():
        pytest.skip(f"sample media not found ({SAMPLES_VARIABLE} unset, no ../shared/data/samples): {HOW_TO_GET_SAMPLES}")
    return folder


@pytest.fixture
def one_torch_thread():
    """One torch thread for MTCNN-heavy tests: on a shared 2-core machine OpenMP threads spinning
    against other jobs slow MTCNN about 5x. Modules opt in with ``pytestmark = usefixtures``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


WEIGHTS_VARIABLE = "FACESLEUTH_WEIGHTS"


@pytest.fixture(scope="session")
def published_weights() -> Path:
    """The folder of published detector weights (``mesonet/`` with the authors' ``test_images/``):
    from FACESLEUTH_WEIGHTS, else ../shared/data/weights beside the checkout; the tests that need
    more than the package's own copies skip without it (fail when the variable names no folder)."""
    named = os.environ.get(WEIGHTS_VARIABLE)
    if named:
        folder = Path(named).resolve()
        if not folder.is_dir():
            pytest.fail(f"{WEIGHTS_VARIABLE}={named}: no such folder", pytrace=False)
        return folder
    folder = REPO_ROOT.parent / "shared" / "data" / "weights"
    if not folder.is_dir():
        pytest.skip(f"published weights not found ({WEIGHTS_VARIABLE} unset, no ../shared/data/weights): "
                    f"run `facesleuth weights fetch mesonet DIR` for the weights; test_images/ come from "
                    "github.com/DariusAf/MesoNet")
    return folder
