"""The core install (no ``workflow`` extra) is enough for the library and the scanner: no module
of the package imports Snakemake, and config validation with the schema's defaults (what
``facesleuth faces`` and ``scan --config`` use) works without it."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
sys.modules["snakemake"] = None  # as if Snakemake were not installed: importing it raises
import facesleuth
failed = []
for module in pkgutil.walk_packages(facesleuth.__path__, "facesleuth."):
    if module.name.endswith("__main__"):  # runs the command line
        continue
    try:
        importlib.import_module(module.name)
    except ImportError as err:
        failed.append(f"{module.name}: {err}")
print("\\n".join(failed), flush=True)
from facesleuth.config import extraction_settings
print("extraction defaults:", sorted(extraction_settings(None)), flush=True)  # schema validation, defaults filled
from facesleuth.cli import main
main(["scan", "--help"])  # prints the scanner's usage and exits 0
"""


def test_no_module_imports_snakemake_at_import_time():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    # `scan --help` exits 0 after printing the scanner's usage: the whole command line loaded
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage: facesleuth scan" in result.stdout
    assert "extraction defaults: ['detection', 'test_flow', 'train_flow']" in result.stdout
    failures = [line for line in result.stdout.splitlines() if line.startswith("facesleuth.")]
    assert failures == []
