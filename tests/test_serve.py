"""``facesleuth serve`` over real HTTP: a server subprocess on 127.0.0.1, uploads of real samples.

What is checked against something independent: results against ``facesleuth scan --format
json`` on the same files, status codes against the HTTP rules the service promises (413, 415,
429, 401/403), the data dir's contents against the client's file names, and the job database's
event log (every accepted job finished exactly once) after 50 concurrent uploads and after a
SIGKILL. The job store's state machine is unit-tested on hand-worked sequences.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import httpx
import jsonschema
import pytest
from serve_helpers import FRAMES, Server, process_alive, shared_run

from facesleuth.cli import main as facesleuth_main
from facesleuth.scan.schema import DOCUMENT_SCHEMA
from facesleuth.serve.store import MAX_ATTEMPTS, JobStore, Upload

IMAGE = "images/ex_original.png"
MULTIFACE = "images/multiface.jpg"
VIDEO = "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"  # 640x480: quick to decode
LIMIT_MB = 3


@pytest.fixture(scope="module")
def run_and_config(samples, tmp_path_factory) -> tuple[Path, Path]:
    return shared_run(tmp_path_factory.getbasetemp(), samples)


@pytest.fixture(scope="module")
def server(run_and_config, tmp_path_factory):
    data = tmp_path_factory.mktemp("serve") / "data"
    server = Server(*run_and_config, data, "--max-upload-mb", str(LIMIT_MB), "--max-queue", "100",
                    "--log-format", "json").start()
    yield server
    server.stop()


@pytest.fixture
def client():
    with httpx.Client(timeout=60) as client:
        yield client


def post_files(client: httpx.Client, server: Server, files: list[tuple[str, bytes]], **kwargs) -> httpx.Response:
    return client.post(f"{server.url}/api/scans", files=[("file", (name, data)) for name, data in files], **kwargs)


def comparable(document: dict) -> dict:
    """A scan document without what differs between two scans of the same files (times, paths)."""
    results = [{k: v for k, v in r.items() if k not in ("seconds", "timings", "path")} for r in document["results"]]
    summary = {k: v for k, v in document["summary"].items() if k != "seconds"}
    return {"model": document["model"], "settings": document["settings"], "summary": summary, "results": results}


# ---------------------------------------------------------------------- job store (no server)


def test_store_claims_each_job_once_and_retries_an_interrupted_one_once(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    upload = [Upload(stored="a" * 32, name="x.png", size=1, kind="image")]
    assert store.submit("job1", upload, max_queued=2) and store.submit("job2", upload, max_queued=2)
    assert not store.submit("job3", upload, max_queued=2)  # two waiting: full
    assert store.claim(worker=11).id == "job1" and store.claim(worker=12).id == "job2"
    assert store.claim(worker=13) is None
    assert store.finish("job2", 12, {"results": []})
    assert not store.finish("job2", 12, {"results": []})  # finished once only
    # the server dies while worker 11 scans job1: at restart it runs again, once
    assert store.recover() == ["job1"]
    assert not store.finish("job1", 11, {"results": []})  # the old worker lost it
    assert store.claim(worker=21).attempts == 2
    assert store.recover() == []  # interrupted a second time: failed, not queued
    job = store.get("job1")
    assert (job.state, job.attempts) == ("failed", MAX_ATTEMPTS) and "interrupted 2 times" in job.error
    assert store.counts() == {"queued": 0, "running": 0, "done": 1, "failed": 1}
    events = [(e["job"], e["event"]) for e in store.events()]
    assert events.count(("job1", "claimed")) == 2 and events.count(("job2", "finished")) == 1


def test_store_graceful_stop_gives_the_attempt_back(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.submit("job1", [], max_queued=5)
    for worker in (1, 2, 3):  # three graceful stops in a row never fail the job
        assert store.claim(worker).attempts == 1
        assert store.recover(workers={worker}, counted=False) == ["job1"]
    assert store.recover(workers={99}) == []  # another worker's jobs are left alone


def test_usage_errors_exit_2_before_serving(tmp_path, capsys, run_and_config) -> None:
    run, _ = run_and_config
    (tmp_path / "empty-token").write_text("\n")
    cases = [
        (["--model", str(tmp_path / "no-such-run")], "no such file or folder"),
        (["--model", str(run), "--token-file", str(tmp_path / "missing")], "cannot read it"),
        (["--model", str(run), "--token-file", str(tmp_path / "empty-token")], "one token without spaces"),
        (["--model", str(run), "--workers", "0"], "--workers must be at least 1"),
        (["--model", str(run), "--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    ]
    for argv, message in cases:
        assert facesleuth_main(["serve", *argv, "--data-dir", str(tmp_path / "data")]) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_serve_and_worker_scan_with_the_frame_policy_given(tmp_path) -> None:
    from facesleuth.cli import build_parser
    from facesleuth.cli.serve import settings_from_args as serve_settings
    from facesleuth.cli.worker import settings_from_args as worker_settings
    from facesleuth.scan.scanner import ScanOptions
    from facesleuth.serve.workers import scan_options

    (tmp_path / "data" / "uploads").mkdir(parents=True)
    common = ["--model", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data")]
    frames = ["--frames", "8", "--frame-policy", "exact", "--max-frame-offset", "0"]
    serve = build_parser("serve").parse_args(["serve", *common, *frames])
    worker = build_parser("worker").parse_args(["worker", *common, *frames, "--broker", "redis://127.0.0.1:1/0"])
    for options in (scan_options(serve_settings(serve).worker), scan_options(worker_settings(worker))):
        assert (options.frames, options.frame_policy, options.max_frame_offset) == (8, "exact", 0)
    # without the flags both scan as `facesleuth scan` does: with the scanner's own defaults,
    # those the README states
    default = ScanOptions()
    assert (default.frames, default.frame_policy, default.max_frame_offset) == (32, "nearest_reference", 2)
    serve = build_parser("serve").parse_args(["serve", *common])
    worker = build_parser("worker").parse_args(["worker", *common, "--broker", "redis://127.0.0.1:1/0"])
    for options in (scan_options(serve_settings(serve).worker), scan_options(worker_settings(worker))):
        assert (options.frames, options.frame_policy, options.max_frame_offset) == (
            default.frames, default.frame_policy, default.max_frame_offset)


def test_a_one_thread_cpu_worker_decodes_in_its_scanning_thread(tmp_path, monkeypatch) -> None:
    """A worker keeps to its cores: with one CPU thread no decoding thread runs ahead; with more
    threads (or a GPU) it does, as `facesleuth scan` always does."""
    import torch

    from facesleuth.cli import build_parser
    from facesleuth.cli.serve import settings_from_args as serve_settings
    from facesleuth.cli.worker import settings_from_args as worker_settings
    from facesleuth.scan.scanner import ScanOptions
    from facesleuth.serve.workers import scan_options

    assert ScanOptions().decode_ahead and ScanOptions().classify_ahead
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    common = ["--model", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"), "--device", "cpu"]
    for threads, ahead in (("1", False), ("2", True)):
        serve = build_parser("serve").parse_args(["serve", *common, "--threads", threads, "--workers", "1"])
        worker = build_parser("worker").parse_args(["worker", *common, "--threads", threads,
                                                    "--broker", "redis://127.0.0.1:1/0"])
        for settings in (serve_settings(serve).worker, worker_settings(worker)):
            assert settings.threads == int(threads)
            assert scan_options(settings).decode_ahead is ahead
            assert scan_options(settings).classify_ahead is ahead
    # on a GPU (device auto finds one) a one-thread worker decodes ahead: the GPU's work overlaps it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    worker = build_parser("worker").parse_args(["worker", "--model", str(tmp_path / "run"), "--data-dir",
                                                str(tmp_path / "data"), "--threads", "1",
                                                "--broker", "redis://127.0.0.1:1/0"])
    assert worker_settings(worker).device == "auto"
    assert scan_options(worker_settings(worker)).decode_ahead


def test_a_negative_frame_offset_is_a_usage_error(tmp_path, capsys) -> None:
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    common = ["--model", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"), "--max-frame-offset", "-1"]
    for argv in (["serve", *common], ["worker", *common, "--broker", "redis://127.0.0.1:1/0"]):
        assert facesleuth_main(argv) == 2, argv
        assert "--max-frame-offset must be 0 or more, got -1" in capsys.readouterr().err, argv


# ---------------------------------------------------------------------- API against a running server


@pytest.mark.usefixtures("one_torch_thread")
def test_results_equal_facesleuth_scan_json(server, client, samples, run_and_config, tmp_path) -> None:
    files = [samples / IMAGE, samples / VIDEO, samples / MULTIFACE]
    answer = post_files(client, server, [(f.name, f.read_bytes()) for f in files])
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.headers["location"] == f"/api/scans/{job_id}"
    first = client.get(f"{server.url}/api/scans/{job_id}").json()
    assert first["state"] in ("queued", "running", "done")
    assert [(i["name"], i["kind"]) for i in first["inputs"]] == [(IMAGE.split("/")[-1], "image"),
                                                                  ("519_515.mp4", "video"), ("multiface.jpg", "image")]
    done = server.wait_done(client, [job_id])[job_id]
    assert done["state"] == "done" and done["attempts"] == 1, done
    document = done["document"]
    jsonschema.validate(document, DOCUMENT_SCHEMA)

    run, config = run_and_config
    output = tmp_path / "scan.json"
    code = facesleuth_main(["scan", *map(str, files), "--model", str(run), "--frames", FRAMES, "--config",
                            str(config), "--threads", "1", "--device", "cpu", "--format", "json", "--no-progress",
                            "--output", str(output)])
    assert code == 0
    expected = json.loads(output.read_text())
    assert comparable(document) == comparable(expected)
    assert [r["path"] for r in document["results"]] == [f.name for f in files]  # the client's names
    assert all("thumbnail" not in face for r in document["results"] for face in r["faces"])
    assert document["summary"]["statuses"] == {"ok": 3}

    with_thumbnails = client.get(f"{server.url}/api/scans/{job_id}", params={"thumbnails": "1"}).json()["document"]
    thumbnails = [sum("thumbnail" in f for f in r["faces"]) for r in with_thumbnails["results"]]
    assert thumbnails == [min(12, len(r["faces"])) for r in document["results"]]

    report = client.get(f"{server.url}/api/scans/{job_id}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    images = _ReportImages()
    images.feed(report.text)
    assert images.count == sum(thumbnails)
    for result in document["results"]:
        assert result["path"] in report.text
        assert f'<span class="badge {result["verdict"]}">{result["verdict"].upper()}</span>' in report.text


class _ReportImages(HTMLParser):
    """Counts the report's inline JPEG face thumbnails."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img" and dict(attrs).get("src", "").startswith("data:image/jpeg;base64,"):
            self.count += 1


def test_unknown_job_and_unfinished_report(server, client) -> None:
    assert client.get(f"{server.url}/api/scans/{'0' * 32}").status_code == 404
    assert client.get(f"{server.url}/api/scans/..%2F..%2Fetc").status_code == 404
    assert client.get(f"{server.url}/healthz").json()["status"] == "ok"
    page = client.get(f"{server.url}/")
    assert page.status_code == 200 and 'type="file"' in page.text and "/api/scans" in page.text


def uploads_now(server: Server) -> list[Path]:
    return [p for p in (server.data_dir / "uploads").rglob("*") if p.is_file()]


def test_over_the_size_limit_is_413_while_streaming(server, client, samples) -> None:
    before = uploads_now(server)
    too_big = os.urandom(LIMIT_MB * 2**20 + 1)
    declared = post_files(client, server, [("big.png", too_big)])
    assert declared.status_code == 413 and "3 MB" in declared.json()["error"]

    # No Content-Length (chunked), and the body is never finished: a server that read the whole
    # upload before checking its size would wait forever; one that counts while reading answers.
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"POST /api/scans HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for chunk in [part] + [b"\0" * 2**20] * (LIMIT_MB + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert not set(uploads_now(server)) - set(before)
    # a file under the limit still goes through
    assert post_files(client, server, [("ok.png", (samples / IMAGE).read_bytes())]).status_code == 202


def test_neither_video_nor_image_is_415(server, client, samples) -> None:
    before = uploads_now(server)
    for name, data in [("clip.mp4", b"just some text, named like a video\n"), ("empty.png", b""),
                       ("metadata.json", (samples / "dfdc/dfdc_train_part_0/metadata.json").read_bytes())]:
        answer = post_files(client, server, [("fine.png", (samples / IMAGE).read_bytes()), (name, data)])
        assert answer.status_code == 415, (name, answer.text)
        assert answer.json()["rejected"] == [name]
    assert not set(uploads_now(server)) - set(before)  # nothing kept of refused uploads
    # judged by content: a PNG named .txt is an image
    assert post_files(client, server, [("photo.txt", (samples / IMAGE).read_bytes())]).status_code == 202


def test_client_file_names_never_become_paths(server, client, samples) -> None:
    data = (samples / IMAGE).read_bytes()
    names = ["../../escaped.png", "/tmp/absolute-escape.png", "..\\..\\windows.png", "sub/dir/x.png", "..", "."]
    answer = post_files(client, server, [(name, data) for name in names])
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    stored = [p for p in uploads_now(server) if p.parent.name == job_id]
    for path in stored:  # random hex names inside the job's folder, or already scanned and removed
        assert path.parent.parent == server.data_dir / "uploads" and len(path.name) == 32 and int(path.name, 16) >= 0
    done = server.wait_done(client, [job_id])[job_id]
    assert [r["path"] for r in done["document"]["results"]] == names
    assert [r["status"] for r in done["document"]["results"]] == ["ok"] * len(names)
    for escaped in [server.data_dir.parent / "escaped.png", server.data_dir.parents[1] / "escaped.png",
                    Path("/tmp/absolute-escape.png")]:
        assert not escaped.exists()
    inside = {p.relative_to(server.data_dir).parts[0] for p in server.data_dir.rglob("*")}
    assert inside <= {"uploads", "jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"}


def test_a_worker_killed_mid_scan_is_replaced_and_its_job_runs_again(server, client, samples) -> None:
    answer = post_files(client, server, [("killed.mp4", (samples / VIDEO).read_bytes())])
    job_id = answer.json()["id"]
    store = JobStore(server.data_dir / "jobs.sqlite3")
    deadline = time.monotonic() + 60
    while not (claims := [e for e in store.events(job_id) if e["event"] == "claimed"]):
        assert time.monotonic() < deadline, "the job was never claimed"
        time.sleep(0.1)
    os.kill(claims[0]["worker"], signal.SIGKILL)
    done = server.wait_done(client, [job_id])[job_id]
    assert (done["state"], done["attempts"]) == ("done", 2), done
    events = [(e["event"], e["worker"]) for e in store.events(job_id)]
    assert [event for event, _ in events] == ["queued", "claimed", "requeued", "claimed", "finished"]
    assert events[1][1] == events[2][1] == claims[0]["worker"] != events[3][1]
    deadline = time.monotonic() + 120  # the pool starts a new worker in the dead one's place
    while client.get(f"{server.url}/healthz").json()["workers_ready"] < 2:
        assert time.monotonic() < deadline, f"no worker replaced the killed one:\n{server.log_tail()}"
        time.sleep(0.5)


def test_fifty_concurrent_uploads_against_two_workers(server, samples) -> None:
    data = (samples / IMAGE).read_bytes()
    names = [f"upload-{i:02d}.png" for i in range(50)]
    database = server.data_dir / "jobs.sqlite3"
    jobs_before = JobStore(database).job_ids()
    with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=50)) as client:
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda name: post_files(client, server, [(name, data)]), names))
        assert [a.status_code for a in answers] == [202] * 50, [a.text for a in answers if a.status_code != 202]
        ids = [a.json()["id"] for a in answers]
        assert len(set(ids)) == 50
        done = server.wait_done(client, ids, timeout=300)
    assert {job_id: done[job_id]["state"] for job_id in ids} == dict.fromkeys(ids, "done")
    # each job holds its own upload: names in and out match one to one
    assert [done[job_id]["document"]["results"][0]["path"] for job_id in ids] == names
    store = JobStore(database)
    assert store.job_ids() - jobs_before == set(ids)
    finished = Counter(e["job"] for e in store.events() if e["event"] == "finished" and e["job"] in ids)
    assert finished == Counter(dict.fromkeys(ids, 1))
    workers = {e["worker"] for e in store.events() if e["event"] == "claimed" and e["job"] in ids}
    assert len(workers) == 2  # both workers took part


def test_metrics_readiness_and_json_logs(server, client, samples) -> None:
    """The operators' endpoints in the embedded mode, against the job database read directly."""
    from openapi_spec_validator import validate
    from prometheus_client.parser import text_string_to_metric_families

    job_id = post_files(client, server, [("metrics.png", (samples / IMAGE).read_bytes())]).json()["id"]
    server.wait_done(client, [job_id])
    assert client.get(f"{server.url}/readyz").json() == {"ready": True, "workers_ready": 2}
    text = client.get(f"{server.url}/metrics").text
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    with sqlite3.connect(server.data_dir / "jobs.sqlite3") as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        documents = [json.loads(d) for (d,) in db.execute("SELECT document FROM jobs WHERE document IS NOT NULL")]
    for state in ("queued", "running", "done", "failed"):
        assert values[("facesleuth_jobs", (("state", state),))] == states.get(state, 0), state
    statuses = Counter(r["status"] for d in documents for r in d["results"])
    assert {k[1][0][1]: v for k, v in values.items() if k[0] == "facesleuth_inputs_total"} == statuses
    assert values[("facesleuth_scan_seconds_count", ())] == len(documents)
    assert values[("facesleuth_workers_alive", ())] == 2
    validate(client.get(f"{server.url}/openapi.json").json())
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert [line["state"] for line in lines if line.get("event") == "job" and line["job"] == job_id] == ["done"]
    assert any(line.get("event") == "request" and line["path"] == "/api/scans" and line["status"] == 202
               for line in lines)


# ---------------------------------------------------------------------- a second server: token, small queue


@pytest.fixture(scope="module")
def guarded(run_and_config, tmp_path_factory):
    base = tmp_path_factory.mktemp("serve-guarded")
    (base / "token").write_text("s3cret-token\n")
    server = Server(*run_and_config, base / "data", "--token-file", str(base / "token"), "--max-queue", "1",
                    workers=1).start()
    yield server
    server.stop()


def test_token_is_required_everywhere_but_healthz(guarded, client) -> None:
    url = guarded.url
    assert client.get(f"{url}/healthz").status_code == 200
    assert client.get(f"{url}/").status_code == 200  # the page (no data) asks the user for the token
    requests = [("GET", f"{url}/api/scans/{'0' * 32}"), ("GET", f"{url}/api/scans/{'0' * 32}/report"),
                ("POST", f"{url}/api/scans"), ("GET", f"{url}/no/such/path")]
    for method, target in requests:
        missing = client.request(method, target)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer"), target
        for wrong in ["Bearer wrong", "Bearer s3cret-token-but-longer", "Basic czNjcmV0LXRva2Vu", "Bearer"]:
            answer = client.request(method, target, headers={"Authorization": wrong})
            assert answer.status_code in (401, 403), (target, wrong)
        assert client.request(method, target, headers={"Authorization": "Bearer wrong"}).status_code == 403
    right = {"Authorization": "Bearer s3cret-token"}
    assert client.get(f"{url}/api/scans/{'0' * 32}", headers=right).status_code == 404


def test_full_queue_is_429_with_retry_after(guarded, client, samples) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    video, image = (samples / VIDEO).read_bytes(), (samples / IMAGE).read_bytes()
    accepted, refused = [], None
    for i in range(6):  # one worker busy with the video, one job may wait: a third is refused
        answer = post_files(client, guarded, [(f"{i}.mp4", video)] if i == 0 else [(f"{i}.png", image)],
                            headers=auth)
        if answer.status_code == 429:
            refused = answer
            break
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["id"])
    assert refused is not None, "six uploads into a queue of one were all accepted"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(accepted) >= 1
    with httpx.Client(timeout=60, headers=auth) as authed:
        done = guarded.wait_done(authed, accepted)
    assert {d["state"] for d in done.values()} == {"done"}
    # refused uploads leave nothing behind
    assert not list((guarded.data_dir / "uploads").rglob("*"))


# ---------------------------------------------------------------------- SIGKILL and restart


def test_sigkill_with_queued_jobs_then_every_job_finishes_once(run_and_config, tmp_path, samples) -> None:
    data = tmp_path / "data"
    server = Server(*run_and_config, data, workers=1).start()
    video, image = (samples / VIDEO).read_bytes(), (samples / IMAGE).read_bytes()
    database = data / "jobs.sqlite3"
    try:
        with httpx.Client(timeout=60) as client:
            ids = [post_files(client, server, [("first.mp4", video)]).json()["id"]]
            ids += [post_files(client, server, [(f"q{i}.png", image)]).json()["id"] for i in range(8)]
            deadline = time.monotonic() + 60
            while client.get(f"{server.url}/api/scans/{ids[0]}").json()["state"] != "running":
                assert time.monotonic() < deadline, "the video job never started"
                time.sleep(0.2)
        server.kill()
        workers = {e["worker"] for e in JobStore(database).events() if e["event"] == "claimed"}
        deadline = time.monotonic() + 10
        while any(process_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(process_alive(pid) for pid in workers), "a worker outlived the killed server"
        with sqlite3.connect(database) as db:
            states = dict(db.execute("SELECT id, state FROM jobs").fetchall())
        assert states[ids[0]] == "running" and list(states.values()).count("queued") >= 1, states

        server = Server(*run_and_config, data, workers=1).start()  # same data dir, new port
        with httpx.Client(timeout=60) as client:
            done = server.wait_done(client, ids)
    finally:
        server.stop()
    assert {job_id: done[job_id]["state"] for job_id in ids} == dict.fromkeys(ids, "done")
    assert done[ids[0]]["attempts"] == 2  # killed mid-scan: ran again, once
    store = JobStore(database)
    assert store.job_ids() == set(ids)
    events = store.events()
    assert Counter(e["job"] for e in events if e["event"] == "finished") == Counter(dict.fromkeys(ids, 1))
    assert [e["job"] for e in events if e["event"] == "requeued"] == [ids[0]]
    assert not list((data / "uploads").rglob("*"))


# ---------------------------------------------------------------------- a real browser on the upload page

BROWSER_VIDEO = "dfdc/dfdc_train_part_10/widuwuoiur.mp4"


def system_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing and running as root; else skip."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0:
        pytest.skip("the browser test needs Debian's chromium: install it (apt-get install chromium) or run as root")
    if not shutil.which("apt-get"):
        pytest.skip("the browser test needs chromium, and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        result = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    path = shutil.which("chromium")
    assert path, "installed chromium, but it is not on PATH"
    return path


def test_browser_uploads_a_video_and_an_image_and_sees_verdicts_and_faces(guarded, samples, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = system_chromium()
    files = [samples / BROWSER_VIDEO, samples / IMAGE]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{guarded.url}/")
            page.set_input_files("#files", [str(f) for f in files])
            # the server wants a token: the page asks for it, then sends the upload again
            expect(page.locator("#token-box")).to_be_visible(timeout=30_000)
            page.fill("#token", "s3cret-token")
            page.click("#token-save")
            cards = page.locator(".job .card")
            expect(cards).to_have_count(2, timeout=180_000)
            assert page.evaluate("sessionStorage.getItem('facesleuth-token')") == "s3cret-token"
            job_id = page.locator(".job").first.get_attribute("data-id")
            shown = [
                (card.locator("h2").inner_text(), card.locator("figure img").count(),
                 card.locator("figure img").first.evaluate("img => img.complete && img.naturalWidth"))
                for card in cards.all()
            ]
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    with httpx.Client(timeout=60, headers={"Authorization": "Bearer s3cret-token"}) as client:
        document = client.get(f"{guarded.url}/api/scans/{job_id}").json()["document"]
    expected = [(f"{r['verdict'].upper()} {r['path']}", min(12, len(r["faces"]))) for r in document["results"]]
    assert [(title, count) for title, count, _ in shown] == expected
    assert [r["kind"] for r in document["results"]] == ["video", "image"]
    assert all(width > 0 for _, _, width in shown), "a face thumbnail did not decode in the browser"
