"""Puts the fake CUDA runtime of ``tests/fake_cuda.py`` into every Python process started with
this folder on ``PYTHONPATH`` and ``FAKE_CUDA_GPUS`` set (the number of fake GPUs), so that a
script's own subprocesses (extraction jobs, fresh scanning processes) see the same GPUs as the
script. With ``FAKE_CUDA_REPORT_DIR`` set, each process writes there at exit what it placed on
the fake GPUs, so a test can tell that the CUDA branches ran.
"""

import os

if os.environ.get("FAKE_CUDA_GPUS"):
    import atexit
    import importlib.util
    import json
    from pathlib import Path

    import pytest

    _spec = importlib.util.spec_from_file_location("fake_cuda", Path(__file__).resolve().parents[1] / "fake_cuda.py")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    _fake = _module.FakeCuda(count=int(os.environ["FAKE_CUDA_GPUS"])).install(pytest.MonkeyPatch())

    def _report() -> None:
        folder = os.environ.get("FAKE_CUDA_REPORT_DIR")
        if folder:
            placed = {"pid": os.getpid(), "placements": dict(_fake.placements)}
            (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(placed))

    atexit.register(_report)
