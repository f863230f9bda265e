"""The workflow's files are formatted as snakefmt writes them (line length in pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk"))]


def test_workflow_files_pass_snakefmt():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *map(str, WORKFLOW_FILES)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, (
        "run `snakefmt Snakefile workflow/` (pip install -e '.[test]' installs it):\n" + result.stdout + result.stderr
    )


def test_every_rule_file_is_included_once():
    includes = re.findall(r'^include:\s*"([^"]+)"', "\n".join(p.read_text() for p in WORKFLOW_FILES), re.MULTILINE)
    names = [Path(i).name for i in includes]
    assert sorted(names) == sorted({p.name for p in WORKFLOW_FILES if p.suffix == ".smk"}), includes
