"""The sample media: their registry (URL and sha256 per file), `facesleuth samples fetch`
against a local HTTP server standing in for GitHub, and where the tests look for them."""

from __future__ import annotations

import filecmp
import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from facesleuth.cli import main
from facesleuth.samples import GITHUB_RAW, SAMPLE_FILES, SamplesError, fetch, verify

TESTS = Path(__file__).resolve().parent


def sample_tree(folder: Path) -> set[str]:
    """Every file of a samples folder, relative, except its README."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "README.md"}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def serve(tmp_path):
    """``serve(mirror)`` -> base URL of an HTTP server on 127.0.0.1 serving that folder."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def github_mirror(samples: Path, root: Path) -> Path:
    """raw.githubusercontent.com's URL layout (<repository>/<ref>/<path>) over the sample files."""
    for sample in SAMPLE_FILES:
        target = root / sample.repository / sample.ref / sample.source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(samples / sample.path)
    return root


def test_the_registry_hashes_match_the_sample_files(samples):
    assert verify(samples) == []
    assert {s.path for s in SAMPLE_FILES} == sample_tree(samples)


def test_the_registry_matches_the_samples_readme(samples):
    """The samples folder's README lists each file's repository @ commit, path and sha256."""
    readme = samples / "README.md"
    if not readme.is_file():
        pytest.skip("this samples folder has no README.md (fetched folders have none)")
    rows = re.findall(r"^\| `([^`]+)` \| (\S+) @ (\S+)(?: branch)? \| `([^`]+)` \| `([0-9a-f]{64})` \|$",
                      readme.read_text(), flags=re.MULTILINE)
    listed = {(path, repo, ref, source, sha) for path, repo, ref, source, sha in rows}
    assert len(listed) == len(SAMPLE_FILES)
    assert listed == {(s.path, s.repository, s.ref, s.source, s.sha256) for s in SAMPLE_FILES}


def test_urls_are_raw_github_files():
    megamind = next(s for s in SAMPLE_FILES if s.path.endswith("Megamind.avi"))
    assert megamind.url() == "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/Megamind.avi"
    assert all(s.url().startswith(GITHUB_RAW + "/") for s in SAMPLE_FILES)


def test_fetch_lays_out_the_samples_tree(samples, tmp_path, serve):
    base_url = serve(github_mirror(samples, tmp_path / "mirror"))
    dest = fetch(tmp_path / "fetched", base_url=base_url)
    assert sample_tree(dest) == sample_tree(samples)
    for name in sample_tree(samples):
        assert filecmp.cmp(dest / name, samples / name, shallow=False), name
    assert verify(dest) == []

    # A second fetch keeps what is there and right (the server is gone: nothing is downloaded).
    assert fetch(dest, base_url="http://127.0.0.1:9") == dest


def test_a_corrupted_download_fails_and_is_not_kept(samples, tmp_path, serve):
    mirror = github_mirror(samples, tmp_path / "mirror")
    corrupt = next(s for s in SAMPLE_FILES if s.path == "images/ex_original.png")
    served = mirror / corrupt.repository / corrupt.ref / corrupt.source
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF
    served.unlink()
    served.write_bytes(bytes(data))
    with pytest.raises(SamplesError, match=r"images/ex_original\.png: the file at http://127\.0\.0\.1:\d+/"
                                          r"ondyari/FaceForensics/\w+/images/ex_original\.png does not match its sha256"):
        fetch(tmp_path / "fetched", base_url=serve(mirror))
    assert not (tmp_path / "fetched" / corrupt.path).exists()


def test_an_unreachable_server_names_the_file(tmp_path):
    with pytest.raises(SamplesError, match=r"^dfdc/dfdc_train_part_0/brtujopkby\.mp4: could not download http://127\.0\.0\.1:9/"):
        fetch(tmp_path, base_url="http://127.0.0.1:9", timeout=5)


def test_verify_names_missing_and_changed_files(samples, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(samples / "images", copy / "images")
    (copy / "images" / "multiface.jpg").write_bytes(b"not the photo")
    problems = verify(copy)
    assert "images/ex_original.png" not in " ".join(problems)
    assert any(p.startswith("images/multiface.jpg: sha256 ") for p in problems)
    assert "nonhuman/Megamind.avi: missing" in problems
    assert len(problems) == len(SAMPLE_FILES) - 3  # every file but the three intact images


def test_cli_fetch_and_verify(samples, tmp_path, serve, capsys):
    base_url = serve(github_mirror(samples, tmp_path / "mirror"))
    assert main(["samples", "fetch", str(tmp_path / "fetched"), "--base-url", base_url]) == 0
    assert f"FACESLEUTH_SAMPLES={tmp_path / 'fetched'}" in capsys.readouterr().out
    assert main(["samples", "verify", str(tmp_path / "fetched")]) == 0
    (tmp_path / "fetched" / "multiface" / "street.mp4").unlink()
    assert main(["samples", "verify", str(tmp_path / "fetched")]) == 1
    assert "multiface/street.mp4: missing" in capsys.readouterr().err


# ---------------------------------------------------------------- where the tests find samples


def run_pytest_in_clone(clone: Path, samples_variable: str | None) -> subprocess.CompletedProcess:
    """pytest in a bare copy of the tests' conftest with one test that reads samples and one that does not."""
    tests = clone / "tests"
    tests.mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    (tests / "test_probe.py").write_text(
        "def test_reads_samples(samples):\n    assert samples.is_dir()\n\n\n"
        "def test_needs_nothing():\n    assert 1 + 1 == 2\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FACESLEUTH_SAMPLES"}
    if samples_variable is not None:
        env["FACESLEUTH_SAMPLES"] = samples_variable
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "tests"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=120)


def test_a_clone_without_samples_skips_the_tests_that_need_them(tmp_path):
    result = run_pytest_in_clone(tmp_path / "clone", None)  # no ../shared beside the clone either
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
    assert "facesleuth samples fetch DIR" in result.stdout and "FACESLEUTH_SAMPLES=DIR" in result.stdout


def test_a_named_but_missing_samples_folder_fails(tmp_path):
    result = run_pytest_in_clone(tmp_path / "clone", str(tmp_path / "nowhere"))
    assert result.returncode == 1, result.stdout
    assert "1 passed, 1 error" in result.stdout
    assert f"FACESLEUTH_SAMPLES={tmp_path / 'nowhere'}: no such folder" in result.stdout


def test_samples_beside_the_clone_are_found(tmp_path):
    (tmp_path / "shared" / "data" / "samples").mkdir(parents=True)
    result = run_pytest_in_clone(tmp_path / "clone", None)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout
