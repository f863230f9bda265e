"""The wheel carries what the package needs: built from the sources, installed with
``pip install --no-deps --target`` into a folder outside the checkout, and run from there with
the working directory outside the checkout too, so nothing can be read from workflow/ or src/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scan_helpers import FAST_DETECTION_YAML, make_trained_run

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel's contents installed into a temporary folder (dependencies come from this environment)."""
    base = tmp_path_factory.mktemp("wheel")
    # build from a copy: an in-tree build would leave build/ in the checkout and could reuse it
    source = base / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    wheels = base / "dist"
    # no build isolation: setuptools comes from this environment (no package index needed)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (wheel,) = wheels.glob("facesleuth-*.whl")
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def run_installed(target: Path, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python *args`` with the installed copy first on the path, outside the checkout."""
    # the checkout's src/ (a development PYTHONPATH) must not be importable
    others = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(REPO)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *others])}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_installed_wheel_is_self_contained(installed, tmp_path):
    probe = run_installed(installed, tmp_path, "-c", (
        "import json, facesleuth, facesleuth.train.augment as a, facesleuth.extract.flows as e, facesleuth.config as c; "
        "import facesleuth.serve.app as s, facesleuth.report.catalog as r; "
        "print(json.dumps({'file': facesleuth.__file__, 'aug': a.augmentation_defaults(), "
        "'captions': {n: t.caption_file().read_text() for n, t in r.TABLES.items()}, "
        "'detection': e.extraction_defaults()['detection'], 'docs': len(c.schema_markdown()), "
        "'openapi': sorted(s.openapi_document()['paths'])}))"
    ))
    found = json.loads(probe.stdout)
    assert Path(found["file"]).is_relative_to(installed)  # the wheel's copy, not the checkout's
    assert found["aug"]["compression_p"] == 0.5 and len(found["aug"]) == 13
    # every table's report caption is packaged (the workflow points Snakemake's report at them)
    assert found["captions"]["dfdc_logloss"].startswith("video log loss (thesis eq. 3.1;")
    assert set(found["captions"]) >= {"params", "celebdf_f1", "robustness_auc"}
    assert found["detection"]["margin"] == 30 and found["detection"]["min_face_size"] == 70
    assert found["docs"] == len((REPO / "config" / "README.md").read_text())
    assert "/api/scans" in found["openapi"] and "/metrics" in found["openapi"]  # serve/openapi.yaml is packaged
    help_text = run_installed(installed, tmp_path, "-m", "facesleuth", "--help").stdout
    assert "scan" in help_text and "config-docs" in help_text
    console = installed / "bin" / "facesleuth"
    assert console.is_file(), "the wheel's console script is missing"


def test_installed_wheel_ships_the_builtin_detectors(installed, tmp_path):
    """MesoNet's four weight files, their licence and notice, and the default ensemble load from the wheel."""
    builtin = installed / "facesleuth" / "published" / "builtin"
    for name in ("Meso4_DF", "Meso4_F2F", "MesoInception_DF", "MesoInception_F2F"):
        for file in (f"{name}.h5", "run.yaml", "LICENSE", "NOTICE"):
            assert (builtin / name / file).is_file(), f"{name}/{file} is not in the wheel"
        assert (builtin / name / f"{name}.h5").read_bytes() == (REPO / "src" / "facesleuth" / "published" / "builtin"
                                                                / name / f"{name}.h5").read_bytes()
    assert "Apache License" in (builtin / "Meso4_DF" / "LICENSE").read_text()
    probe = run_installed(installed, tmp_path, "-c", (
        "import json; from facesleuth.published.builtin import DEFAULT_RUN; "
        "from facesleuth.scan import load_scan_run; run = load_scan_run(DEFAULT_RUN); "
        "print(json.dumps({'folder': str(run.folder), 'members': [m.name for m in run.members], 'limits': run.limits}))"
    ))
    found = json.loads(probe.stdout)
    assert Path(found["folder"]).is_relative_to(installed)
    assert found["members"] == ["mesonet/Meso4_DF", "mesonet/Meso4_F2F"]
    assert any("2018" in limit for limit in found["limits"])


def test_installed_wheel_scans_an_image(installed, samples, tmp_path):
    run = make_trained_run(samples, tmp_path / "runs" / "mobilenetv3_small_050-none")
    config = tmp_path / "fast.yaml"
    config.write_text(FAST_DETECTION_YAML)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    image = samples / "images" / "ex_original.png"
    result = run_installed(
        installed, outside, "-c", "import sys; from facesleuth.cli import main; sys.exit(main())",
        "scan", str(image), "--model", str(run), "--config", str(config), "--format", "json", "--no-progress",
    )
    report = json.loads(result.stdout)
    (scanned,) = report["results"]
    assert scanned["status"] == "ok" and scanned["faces"], scanned
    assert 0.0 <= scanned["score"] <= 1.0 and scanned["verdict"] in ("fake", "real")
