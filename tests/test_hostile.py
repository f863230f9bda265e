"""Damaged and forged media through a real ``facesleuth scan`` and a real ``facesleuth serve``:
every input one entry with a known status, no traceback, no decoder noise, bounded time.

The corpus is made at test time from the sample media (tests/hostile_media.py, seeded).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from hostile_media import (
    CLAIMED_FRAMES,
    MAX_PIXELS,
    MAX_SECONDS,
    MEGAMIND,
    build_corpus,
)
from serve_helpers import FRAMES, Server, shared_run

from facesleuth.registry import ERROR, SCAN_STATUSES

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

INPUT_SECONDS = 60  # each input's wall-clock bound in these tests
LIMITS = ["--max-pixels", str(MAX_PIXELS), "--max-seconds", str(MAX_SECONDS), "--input-seconds", str(INPUT_SECONDS)]
KNOWN = set(SCAN_STATUSES) - {ERROR}  # statuses of the input; error would be a fault of facesleuth
# What FFmpeg and OpenCV print when left alone: "[h264 @ 0x55...] error while decoding MB",
# "[ WARN:0@1.2] global cap_ffmpeg_impl.hpp ...", "moov atom not found".
DECODER_NOISE = re.compile(r"\[\w+ @ 0x[0-9a-f]+\]|\[ ?WARN:|\[ERROR:|moov atom|Invalid data found", re.IGNORECASE)


@pytest.fixture(scope="module")
def run_and_config(samples, tmp_path_factory) -> tuple[Path, Path]:
    return shared_run(tmp_path_factory.getbasetemp(), samples)


@pytest.fixture(scope="module")
def corpus(samples, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    return folder, build_corpus(samples, folder)


def opencv_frame_count(path: Path) -> int:
    import cv2

    capture, count = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG), 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def check_expected(results: dict[str, dict], samples: Path) -> None:
    """The inputs whose status is known beforehand, each checked against it."""
    assert results["forged_30000x30000.png"]["status"] == "too_large"
    assert "900,000,000 pixels" in results["forged_30000x30000.png"]["message"]  # 30000 x 30000
    assert results["over_limit.png"]["status"] == "too_large"
    assert "--max-pixels" in results["over_limit.png"]["message"]
    assert results["exact_limit.png"]["status"] in ("ok", "no_face")  # at the limit is within it
    assert results["long_519.mp4"]["status"] == "too_long" and "--max-seconds" in results["long_519.mp4"]["message"]
    assert results["text_named.mp4"]["status"] == "unsupported"
    for name in ("clean_clip.mp4", "clean_megamind.avi", "clean_face.png", "png_named.mp4", "avi_named.png",
                 "clean_group.jpg"):
        assert results[name]["status"] in ("ok", "no_face"), (name, results[name])
    # the full-size group photo is larger than the limit: refused before decoding
    assert results["large_group.jpg"]["status"] == "too_large"
    # a header claiming ten million frames: the frames present are counted, and scanned
    forged = results["claims_10M_frames.avi"]
    assert forged["status"] in ("ok", "no_face"), forged
    assert forged["frames_total"] == opencv_frame_count(samples / MEGAMIND) < CLAIMED_FRAMES
    assert results["cut_40_clip.mp4"]["status"] == "unreadable"  # an MP4 cut before its index
    damaged = [r for r in results.values() if r["frames_failed"] or r["frames_skipped"]]
    assert damaged, "no damaged video reported its damage"
    for result in damaged:
        assert "damaged video" in result["message"] or result["status"] != "ok", result


def test_scan_answers_every_damaged_input_with_a_status_and_keeps_stderr_quiet(run_and_config, corpus, samples,
                                                                              tmp_path):
    run, config = run_and_config
    folder, about = corpus
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).parents[1] / "src"),
                                                                     os.environ.get("PYTHONPATH", "")] if p)}
    env.pop("OPENCV_LOG_LEVEL", None)
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)  # the package sets them, not the environment
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "facesleuth.cli", "scan", str(folder), "--model", str(run), "--config", str(config),
         "--frames", FRAMES, "--threads", "1", "--no-progress", "--jsonl", *LIMITS],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )
    wall = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-3000:]  # some inputs could not be scanned; no crash
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    results = {Path(r["path"]).name: r for r in lines}
    assert len(lines) == len(results) == len(about), sorted(set(about) ^ set(results))  # one entry each
    assert {r["status"] for r in lines} <= KNOWN, Counter(r["status"] for r in lines)
    # stderr holds the scanner's summary only: no traceback, no decoder line
    assert "Traceback" not in done.stderr and not DECODER_NOISE.search(done.stderr), done.stderr[-3000:]
    own = re.compile(r"^facesleuth scan: |^\S+ \S+ (WARNING|ERROR) facesleuth\.")  # its summary, its own warnings
    assert all(own.search(line) for line in done.stderr.splitlines() if line.strip()), done.stderr
    slowest = max(lines, key=lambda r: r["seconds"])
    assert slowest["seconds"] < INPUT_SECONDS
    check_expected(results, samples)
    statuses = Counter(r["status"] for r in lines)
    print(f"\nhostile corpus via scan: {len(lines)} inputs, statuses {dict(sorted(statuses.items()))}, "
          f"slowest {Path(slowest['path']).name} {slowest['seconds']:.2f} s, whole scan {wall:.1f} s")


def test_serve_answers_every_damaged_upload_and_stays_healthy(run_and_config, corpus, tmp_path):
    folder, about = corpus
    server = Server(*run_and_config, tmp_path / "data", *LIMITS, workers=1).start()
    try:
        answers, jobs = {}, {}
        with httpx.Client(timeout=60) as client:
            for name in sorted(about):
                reply = client.post(f"{server.url}/api/scans", files=[("file", (name, (folder / name).read_bytes()))])
                if reply.status_code == 415:  # refused at the door: judged by content, neither video nor image
                    answers[name] = {"status": "unsupported", "message": reply.json()["error"], "seconds": 0.0}
                    continue
                assert reply.status_code == 202, (name, reply.text)
                jobs[reply.json()["id"]] = name
            for job_id, answer in server.wait_done(client, list(jobs), timeout=400).items():
                assert answer["state"] == "done", answer
                (result,) = answer["document"]["results"]  # exactly one entry for the one upload
                answers[jobs[job_id]] = result
            health = client.get(f"{server.url}/healthz").raise_for_status().json()
        assert health["workers_ready"] == 1
        assert set(answers) == set(about)
        assert {a["status"] for a in answers.values()} <= KNOWN, Counter(a["status"] for a in answers.values())
        assert answers["forged_30000x30000.png"]["status"] == "too_large"
        assert answers["long_519.mp4"]["status"] == "too_long"
        assert max(a["seconds"] for a in answers.values()) < INPUT_SECONDS
        log = server.log_tail(200_000)
        assert "Traceback" not in log and not DECODER_NOISE.search(log), log[-3000:]
        statuses = Counter(a["status"] for a in answers.values())
        slowest = max(answers, key=lambda n: answers[n]["seconds"])
        print(f"\nhostile corpus via serve: {len(answers)} uploads, statuses {dict(sorted(statuses.items()))}, "
              f"slowest {slowest} {answers[slowest]['seconds']:.2f} s")
    finally:
        server.stop()


# ---------------------------------------------------------------------- the pool's wall clock


class _FakeScanner:
    """Stands in for a loaded Scanner in scan_job: records what it is asked to scan."""

    def __init__(self):
        self.scanned: list[str] = []

    def scan_file(self, path):
        from facesleuth.scan.scanner import ScanResult

        self.scanned.append(Path(path).name)
        return ScanResult(path=str(path), status="no_face", message="scanned")

    def limit_result(self, path, status, message):
        from facesleuth.scan.scanner import ScanResult

        return ScanResult(path=str(path), status=status, message=message)


def test_a_worker_past_the_input_limit_is_replaced_and_the_input_answers_timed_out(tmp_path):
    """The pool kills a worker stuck on one input past input_seconds (here a process asleep, as
    one stuck inside a decoder would be), marks that input, and queues the job again without
    using an attempt; scanning the job again answers that input timed_out and scans the rest."""
    from facesleuth.serve import workers
    from facesleuth.serve.store import QUEUED, RUNNING, JobStore, Upload

    data = tmp_path / "data"
    (data / "uploads" / ("a" * 32)).mkdir(parents=True)
    settings = workers.WorkerSettings(database=str(data / "jobs.sqlite3"), uploads=str(data / "uploads"),
                                      model="unused", limits={"input_seconds": 5})
    store = JobStore(settings.database)
    inputs = [Upload(stored="b" * 32, name="slow.mp4", size=1, kind="video"),
              Upload(stored="c" * 32, name="fine.png", size=1, kind="image")]
    for upload in inputs:
        (data / "uploads" / ("a" * 32) / upload.stored).write_bytes(b"x")
    assert store.submit("a" * 32, inputs, 10)
    pool = workers.WorkerPool(settings, 1)
    stuck = mp.get_context("spawn").Process(target=time.sleep, args=(120,), daemon=True)
    stuck.start()
    try:
        job = store.claim(stuck.pid)
        assert job is not None and store.get(job.id).state == RUNNING
        pool.processes = [stuck]
        pool.busy_input[0].value = f"{job.id}/{inputs[0].stored}".encode()
        pool.busy_since[0] = time.time()
        assert pool.replace_overdue() == []  # within its time: left alone
        assert stuck.is_alive()
        assert pool.replace_overdue(now=time.time() + 5 + workers.KILL_GRACE_SECONDS + 1) == [0]
        stuck.join(10)
        assert not stuck.is_alive()
        again = store.get(job.id)
        assert again.state == QUEUED and again.attempts == 0  # queued again, the attempt given back
        fake = _FakeScanner()
        results = workers.scan_inputs(fake, again, data / "uploads")
    finally:
        if stuck.is_alive():
            stuck.kill()
        pool.wake.close()
    statuses = {r.path: r.status for r in results}
    assert statuses == {"slow.mp4": "timed_out", "fine.png": "no_face"}
    assert fake.scanned == [inputs[1].stored]  # the timed-out input was not scanned again
    message = next(r.message for r in results if r.path == "slow.mp4")
    assert "5 s" in message and "--input-seconds" in message


def test_broker_watchdog_ends_the_worker_only_past_the_limit_and_grace(tmp_path):
    """The broker worker's watchdog: an input that ends within limit + grace is left alone; one
    stuck past it (a stand-in scan blocked on an event, as one inside a decoder would be) is
    handed to ``overdue`` once and the process told to exit with EXIT_INPUT_TIMED_OUT."""
    import threading

    from facesleuth.serve import broker, workers

    assert broker.InputWatchdog(5, print).grace == workers.KILL_GRACE_SECONDS  # the embedded mode's grace
    upload = tmp_path / "job" / "stuck"
    overdue, exits, unblock = [], [], threading.Event()

    def exit_stand_in(code):  # os._exit in a worker; here the stuck scan is let go instead
        exits.append(code)
        unblock.set()

    watchdog = broker.InputWatchdog(0.2, overdue.append, grace=0.1, exit=exit_stand_in)
    # by the clock given: within limit + grace nothing happens; past it, once
    watchdog.begin(upload)
    began = watchdog._current[1]
    assert not watchdog.check(now=began + 0.29) and (overdue, exits) == ([], [])
    assert watchdog.check(now=began + 0.31) and (overdue, exits) == ([upload], [broker.EXIT_INPUT_TIMED_OUT])
    assert not watchdog.check(now=began + 9)  # acted once; the next input begins afresh
    overdue.clear(), exits.clear(), unblock.clear()
    # with the thread: a quick input passes, a stuck one is ended after about 0.3 s
    watchdog.start()
    try:
        watchdog.begin(tmp_path / "quick")
        time.sleep(0.1)
        watchdog.end()
        started = time.monotonic()
        watchdog.begin(upload)
        assert unblock.wait(5), "the watchdog never fired"  # the stand-in scan, blocked until then
        elapsed = time.monotonic() - started
    finally:
        watchdog.stop()
    assert (overdue, exits) == ([upload], [broker.EXIT_INPUT_TIMED_OUT])
    assert 0.3 <= elapsed < 2, elapsed


def test_html_card_says_a_video_was_scanned_from_damaged_frames():
    from facesleuth.scan.html import _card
    from facesleuth.scan.scanner import ScanResult

    result = ScanResult(path="upload.mp4", status="no_face", message="no face", kind="video", frames_total=300,
                        frames_read=32, frames_failed=3, frames_skipped=1, width=640, height=480).to_dict()
    card = _card(0, result, 0.5)
    assert "damaged: 3 frames failed to decode, 1 sampled frame skipped" in card
    intact = _card(0, {**result, "frames_failed": 0, "frames_skipped": 0}, 0.5)
    assert "damaged" not in intact


def test_an_internal_error_is_one_short_line_and_its_traceback_waits_for_verbose(caplog):
    import logging

    from facesleuth.scan.scanner import _internal_error

    try:
        raise ValueError("a bug in facesleuth\nwith a second line")
    except ValueError as err:
        with caplog.at_level(logging.INFO, logger="facesleuth.scan.scanner"):
            message = _internal_error(Path("upload.mp4"), err)
    assert message == "internal error: ValueError: a bug in facesleuth (please report this)"
    warning, info = caplog.records
    assert warning.levelno == logging.WARNING and warning.exc_info is None  # shown by default: one line
    assert info.levelno == logging.INFO and info.exc_info is not None  # the traceback: --verbose only
