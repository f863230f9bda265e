"""``facesleuth serve --broker`` against real servers: redis-server, the API and two ``facesleuth worker``
processes (each in its own working folder), all on 127.0.0.1.

Checked against something independent: results against ``facesleuth scan --format json`` on the
same files; the job records' event log in Redis (each accepted job finished exactly once, by
whom) after a worker is SIGKILLed mid-scan, after the API is stopped with jobs queued and after 50
concurrent uploads; ``/metrics`` read back with prometheus-client's own parser against the jobs'
documents; the OpenAPI document with openapi-spec-validator, the README's curl examples and the
app's routes against it, and live answers against its schemas; the job store's Lua steps on
hand-worked sequences.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jsonschema
import pytest
from broker_helpers import BrokerServer, Redis, Worker, wait_ready
from serve_helpers import FRAMES, shared_run

from facesleuth.cli import main as facesleuth_main
from facesleuth.serve.broker import BrokerSettings, RedisJobs
from facesleuth.serve.store import Upload

pytestmark = pytest.mark.slow

IMAGE = "images/ex_original.png"
VIDEO = "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"  # 640x480: quick to decode


@pytest.fixture(scope="module")
def run_and_config(samples, tmp_path_factory) -> tuple[Path, Path]:
    return shared_run(tmp_path_factory.getbasetemp(), samples)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    redis = Redis(tmp_path_factory.mktemp("redis")).start()
    yield redis
    redis.stop()


class Deployment:
    """Redis, the API and two workers; the data dir is what a cluster's shared mount would be."""

    def __init__(self, run_and_config, base: Path, redis: Redis):
        self.run_and_config, self.base, self.redis = run_and_config, base, redis
        self.data = base / "data"
        (self.data / "uploads").mkdir(parents=True)
        self.workers = {name: Worker(*run_and_config, self.data, redis.url, base / name, name).start()
                        for name in ("worker-a", "worker-b")}
        self.api = self.new_api()

    def new_api(self) -> BrokerServer:
        return BrokerServer(*self.run_and_config, self.data, self.redis.url, "--log-format", "json",
                            "--max-queue", "200", workers=2).start()

    def jobs(self) -> RedisJobs:
        return RedisJobs(BrokerSettings(self.redis.url))

    def stop(self) -> None:
        self.api.stop()
        for worker in self.workers.values():
            worker.stop()


@pytest.fixture(scope="module")
def deployment(run_and_config, redis_server, tmp_path_factory):
    deployment = Deployment(run_and_config, tmp_path_factory.mktemp("broker"), redis_server)
    yield deployment
    deployment.stop()


@pytest.fixture
def client():
    with httpx.Client(timeout=60) as client:
        yield client


def post_files(client: httpx.Client, url: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    return client.post(f"{url}/api/scans", files=[("file", (name, data)) for name, data in files])


def comparable(document: dict) -> dict:
    results = [{k: v for k, v in r.items() if k not in ("seconds", "timings", "path")} for r in document["results"]]
    summary = {k: v for k, v in document["summary"].items() if k != "seconds"}
    return {"model": document["model"], "settings": document["settings"], "summary": summary, "results": results}


def finished_once(jobs: RedisJobs, ids: list[str]) -> None:
    finishes = Counter(e["job"] for e in jobs.events() if e["event"] == "finished" and e["job"] in ids)
    assert finishes == Counter(dict.fromkeys(ids, 1))


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


# ---------------------------------------------------------------------- the job records (Redis only)


def test_job_record_steps_are_exactly_once(redis_server) -> None:
    sent: list[str] = []
    # database 1: the deployment below uses 0 of the same server
    jobs = RedisJobs(BrokerSettings(redis_server.url[:-1] + "1", max_attempts=2), publish=sent.append)
    upload = [Upload(stored="a" * 32, name="x.png", size=1, kind="image")]
    assert jobs.submit("unit-1", upload, max_queued=2) and jobs.submit("unit-2", upload, max_queued=2)
    assert not jobs.submit("unit-3", upload, max_queued=2)  # two waiting: full
    assert sent == ["unit-1", "unit-2"] and jobs.get("unit-3") is None
    jobs.beat("unit-w1", {"ready": True}, ttl=30)
    assert jobs.claim("unit-1", "unit-w1") == ("claimed", 1)
    assert jobs.claim("unit-1", "unit-w2") == ("held", 1)  # a duplicate delivery while w1 scans it
    assert not jobs.finish("unit-1", "unit-w2", 1, {"results": []}, None, 1.0)  # not its claim
    assert jobs.finish("unit-1", "unit-w1", 1, {"results": [{"status": "ok"}, {"status": "no_face"}]}, None, 1.5)
    assert not jobs.finish("unit-1", "unit-w1", 1, {"results": []}, None, 1.0)  # stored once only
    assert jobs.claim("unit-1", "unit-w2") == ("finished", 0)
    # unit-w3 has no heartbeat: it is lost the moment it claims; the reaper queues its job again
    assert jobs.claim("unit-2", "unit-w3") == ("claimed", 1)
    assert "unit-2" in jobs.reap() and sent[-1] == "unit-2"
    assert jobs.claim("unit-2", "unit-w4") == ("claimed", 2)
    jobs.reap()  # lost again: out of attempts
    job = jobs.get("unit-2")
    assert (job.state, job.attempts) == ("failed", 2) and "gave up after 2 attempts" in job.error
    # a graceful stop gives the attempt back
    assert jobs.submit("unit-4", upload, max_queued=10**6)
    jobs.beat("unit-w5", {"ready": True}, ttl=30)
    for _ in range(3):
        assert jobs.claim("unit-4", "unit-w5") == ("claimed", 1)
        assert jobs.release("unit-4", "unit-w5", 1, counted=False, why="worker stopped") == "requeued"
    events = [(e["job"], e["event"], e["worker"] or None) for e in jobs.events()]
    assert events[:9] == [("unit-1", "queued", None), ("unit-2", "queued", None), ("unit-1", "claimed", "unit-w1"),
                          ("unit-1", "finished", "unit-w1"), ("unit-2", "claimed", "unit-w3"),
                          ("unit-2", "requeued", "unit-w3"), ("unit-2", "claimed", "unit-w4"),
                          ("unit-2", "failed", "unit-w4"), ("unit-4", "queued", None)]
    assert jobs.withdraw("unit-4") is False  # sent: a worker may hold its message
    # a live worker that says it scans something else has dropped its job (an error): queued again
    assert jobs.claim("unit-4", "unit-w5") == ("claimed", 1)
    jobs.beat("unit-w5", {"ready": True, "job": "unit-4"}, ttl=30)
    assert jobs.reap(grace=0) == []  # it says it is scanning it
    jobs.beat("unit-w5", {"ready": True, "job": None}, ttl=30)
    assert jobs.reap(grace=60) == []  # within the grace its next heartbeat may still name it
    assert jobs.reap(grace=0) == ["unit-4"] and jobs.events("unit-4")[-1]["detail"].endswith("dropped it)")
    assert jobs.get("unit-4").attempts == 1
    assert jobs.counts() == {"queued": 1, "running": 0, "done": 1, "failed": 1}
    assert jobs.input_statuses() == {"ok": 1, "no_face": 1}
    assert jobs.scan_seconds() == ([0, 0, 1] + [0] * 9, 1.5)  # buckets <= 0.5, <= 1, <= 2 s, ...: 1.5 s in the third
    assert jobs.forget_finished(older_than_days=1) == 0  # all younger
    assert jobs.forget_finished(older_than_days=-1) == 2  # (a cutoff in the future) the done and the failed one
    assert jobs.job_ids() == {"unit-4"} and jobs.get("unit-1") is None
    assert jobs.counts() == {"queued": 1, "running": 0, "done": 0, "failed": 0}


@pytest.mark.usefixtures("one_torch_thread")
def test_stuck_input_ends_the_worker_and_the_next_answers_timed_out(redis_server, run_and_config, samples,
                                                                    tmp_path) -> None:
    """A worker's scan stuck on one input (a stand-in scan blocked until the watchdog fires) past
    --input-seconds: the input is marked beside its upload, the job given back with its attempt
    returned and the worker told to exit 3; the next worker answers that input timed_out without
    scanning it and scans the other."""
    import threading

    from facesleuth.scan import Scanner, ScanOptions
    from facesleuth.cli.common import detection_settings
    from facesleuth.serve.broker import (
        EXIT_INPUT_TIMED_OUT,
        BrokerWorkerSettings,
        Heartbeat,
        JobRunner,
    )
    from facesleuth.serve.workers import timed_out_marker

    run, config = run_and_config
    sent: list[str] = []
    broker = BrokerSettings(redis_server.url[:-1] + "2")  # database 2: the others use 0 and 1
    jobs = RedisJobs(broker, publish=sent.append)
    job_id, folder = "stuck-job", tmp_path / "uploads" / "stuck-job"
    folder.mkdir(parents=True)
    inputs = [Upload(stored="s" * 32, name="stuck.mp4", size=1, kind="video"),
              Upload(stored="f" * 32, name="fine.png", size=1, kind="image")]
    (folder / inputs[0].stored).write_bytes((samples / VIDEO).read_bytes())
    (folder / inputs[1].stored).write_bytes((samples / IMAGE).read_bytes())
    assert jobs.submit(job_id, inputs, max_queued=10)
    limits = {"input_seconds": 0.3}
    scanner = Scanner(str(run), ScanOptions(frames=int(FRAMES), device="cpu", detection=detection_settings(config),
                                            **limits))
    real_scan, scanned, exits, let_go = scanner.scan_file, [], [], threading.Event()

    def scan_file(path):
        scanned.append(Path(path).name)
        if Path(path).name == inputs[0].stored:
            assert let_go.wait(10)  # stuck, as inside a decoder, until the watchdog acts
        return real_scan(path)

    def exit_stand_in(code):  # os._exit in a worker
        exits.append(code)
        let_go.set()

    scanner.scan_file = scan_file
    runners = []
    for name in ("stuck-worker", "next-worker"):
        settings = BrokerWorkerSettings(broker=broker, data_dir=tmp_path, model=str(run), name=name, limits=limits)
        runners.append(JobRunner(jobs, scanner, settings, Heartbeat(jobs, name, 30).start(), watchdog_grace=0.2,
                                 exit=exit_stand_in))
    try:
        started = time.monotonic()
        assert runners[0](job_id) == {"job": job_id, "outcome": "given back"}
        assert 0.5 <= time.monotonic() - started < 10
        assert exits == [EXIT_INPUT_TIMED_OUT]
        assert timed_out_marker(folder / inputs[0].stored).read_text() == "0.3\n"
        job = jobs.get(job_id)
        assert (job.state, job.attempts) == ("queued", 0)  # given back, the attempt returned
        assert sent == [job_id, job_id]  # and its task sent again
        assert "stuck-worker" not in {w["name"] for w in jobs.workers()}  # its heartbeat is gone
        # (the stand-in let the stuck scan go on to the image; a real worker had exited)
        assert scanned[0] == inputs[0].stored
        scanned.clear()
        assert runners[1](job_id) == {"job": job_id, "outcome": "done"}
    finally:
        for runner in runners:
            runner.watchdog.stop()
            runner.heartbeat.stop()
    assert exits == [EXIT_INPUT_TIMED_OUT]  # the image scanned within its time
    assert scanned == [inputs[1].stored]  # the stuck input was not scanned again
    results = jobs.get(job_id).document["results"]
    assert [(r["path"], r["status"]) for r in results] == [("stuck.mp4", "timed_out"), ("fine.png", "ok")]
    assert "0.3 s" in results[0]["message"] and "--input-seconds" in results[0]["message"]
    events = [(e["event"], e["worker"]) for e in jobs.events(job_id)]
    assert events == [("queued", False), ("claimed", "stuck-worker"), ("requeued", "stuck-worker"),
                      ("claimed", "next-worker"), ("finished", "next-worker")]
    assert "--input-seconds" in jobs.events(job_id)[2]["detail"]
    assert not folder.exists()  # removed with the marker once the result was stored


def test_broker_usage_errors_exit_2(tmp_path, capsys, run_and_config) -> None:
    run, _ = run_and_config
    (tmp_path / "shared" / "uploads").mkdir(parents=True)
    cases = [
        (["serve", "--model", str(run), "--broker", "amqp://127.0.0.1", "--data-dir", str(tmp_path / "d")],
         "--broker must be a Redis URL"),
        (["serve", "--model", str(run), "--broker", "redis://127.0.0.1:1/0", "--max-attempts", "0",
          "--data-dir", str(tmp_path / "d")], "--max-attempts must be at least 1"),
        (["worker", "--model", str(run), "--broker", "redis://127.0.0.1:1/0", "--data-dir", str(tmp_path)],
         "no uploads/ folder in it"),  # not the API's data dir: a mount missing on this machine
        (["worker", "--model", str(tmp_path / "no-run"), "--broker", "redis://127.0.0.1:1/0",
          "--data-dir", str(tmp_path / "shared")], "no such file or folder"),
        (["worker", "--model", str(run), "--broker", "redis://127.0.0.1:1/0", "--data-dir", str(tmp_path / "shared"),
          "--heartbeat-seconds", "0"], "--heartbeat-seconds must be positive"),
        (["worker", "--model", str(run), "--broker", "redis://127.0.0.1:1/0", "--data-dir", str(tmp_path / "shared"),
          "--input-seconds", "0"], "--input-seconds must be a positive number or none"),
    ]
    for argv, message in cases:
        assert facesleuth_main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    # the limits reach the worker's settings: flag over the config's scan.limits over the defaults
    from facesleuth.cli import build_parser
    from facesleuth.config import section_defaults
    from facesleuth.cli.worker import settings_from_args

    config = tmp_path / "limits.yaml"
    config.write_text("scan:\n  limits:\n    max_seconds: 30\n    max_frames: 900\n")
    args = build_parser("worker").parse_args(["worker", "--model", str(run), "--broker", "redis://127.0.0.1:1/0",
                                      "--data-dir", str(tmp_path / "shared"), "--config", str(config),
                                      "--max-frames", "50", "--input-seconds", "none"])
    assert settings_from_args(args).limits == {**section_defaults("scan", "limits"), "max_seconds": 30,
                                               "max_frames": 50, "input_seconds": None}


# ---------------------------------------------------------------------- one deployment, many checks


@pytest.mark.usefixtures("one_torch_thread")
def test_results_equal_facesleuth_scan_json(deployment, client, samples, run_and_config, tmp_path) -> None:
    from facesleuth.serve.app import openapi_document

    api = deployment.api
    files = [samples / IMAGE, samples / VIDEO]
    answer = post_files(client, api.url, [(f.name, f.read_bytes()) for f in files])
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    spec = openapi_document()
    job_schema = {**spec["components"]["schemas"]["Job"], "$defs": spec["components"]["schemas"]}
    job_schema = json.loads(json.dumps(job_schema).replace("#/components/schemas/", "#/$defs/"))
    first = client.get(f"{api.url}/api/scans/{job_id}").json()
    jsonschema.validate(first, job_schema)
    assert first["state"] in ("queued", "running", "done")
    done = api.wait_done(client, [job_id])[job_id]
    jsonschema.validate(done, job_schema)
    assert done["state"] == "done" and done["attempts"] == 1, done

    run, config = run_and_config
    output = tmp_path / "scan.json"
    assert facesleuth_main(["scan", *map(str, files), "--model", str(run), "--frames", FRAMES, "--config",
                            str(config), "--threads", "1", "--device", "cpu", "--format", "json", "--no-progress",
                            "--output", str(output)]) == 0
    assert comparable(done["document"]) == comparable(json.loads(output.read_text()))
    assert [r["path"] for r in done["document"]["results"]] == [f.name for f in files]
    report = client.get(f"{api.url}/api/scans/{job_id}/report")
    assert report.status_code == 200 and all(f.name in report.text for f in files)
    assert not (deployment.data / "uploads" / job_id).exists()  # removed once stored

    # one JSON line for the job, from whichever worker scanned it, and one per request in the API's log
    lines = [line for w in deployment.workers.values() for line in json_lines(w.log)
             if line.get("event") == "job" and line.get("job") == job_id]
    assert len(lines) == 1 and lines[0]["state"] == "done" and lines[0]["statuses"] == {"ok": 2}
    requests = [line for line in json_lines(api.log) if line.get("event") == "request"]
    assert {"method": "POST", "path": "/api/scans", "status": 202} in [
        {k: line[k] for k in ("method", "path", "status")} for line in requests]


def test_metrics_readiness_and_openapi(deployment, client, samples, repo_root) -> None:
    from openapi_spec_validator import validate
    from prometheus_client.parser import text_string_to_metric_families

    api = deployment.api
    scanned = post_files(client, api.url, [("metrics.png", (samples / IMAGE).read_bytes())]).json()["id"]
    api.wait_done(client, [scanned])
    assert client.get(f"{api.url}/readyz").json() == {"ready": True, "workers_ready": 2}
    metrics = client.get(f"{api.url}/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    jobs = deployment.jobs()
    documents = [client.get(f"{api.url}/api/scans/{i}").json() for i in jobs.job_ids()]
    states = Counter(d["state"] for d in documents)
    assert states["done"] >= 1
    for state in ("queued", "running", "done", "failed"):
        assert samples[("facesleuth_jobs", (("state", state),))] == states[state], state
    statuses = Counter(r["status"] for d in documents if d["document"] for r in d["document"]["results"])
    for status, count in statuses.items():
        assert samples[("facesleuth_inputs_total", (("status", status),))] == count
    assert samples[("facesleuth_scan_seconds_count", ())] == states["done"]
    assert samples[("facesleuth_scan_seconds_bucket", (("le", "+Inf"),))] == states["done"]
    assert samples[("facesleuth_workers_alive", ())] == 2 and samples[("facesleuth_workers_ready", ())] == 2
    assert ("facesleuth_queue_depth", ()) in samples

    spec = client.get(f"{api.url}/openapi.json").json()
    validate(spec)
    # the app's routes are the document's paths
    from facesleuth.serve.app import ServeSettings, create_app

    app = create_app(ServeSettings.make(deployment.base / "unused", "unused"))
    routes = {(route.path, method) for route in app.routes for method in route.methods if method != "HEAD"}
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    assert routes == documented
    # every curl example of the README's service section names a documented path and method
    readme = (repo_root / "README.md").read_text()
    section = readme[readme.index("## Run as a service"):]
    section = section[:section.index("\n## ", 4)]
    examples = [line for line in section.splitlines() if line.startswith("curl ")]
    assert len(examples) >= 5
    templates = {(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), method)
                 for path, method in documented}
    for example in examples:
        url = re.search(r"http://[^\s/]+(/\S*)", example).group(1).split("?")[0]
        method = "POST" if " -F " in example or "-X POST" in example else "GET"
        assert any(pattern.match(url) and m == method for pattern, m in templates), example


def test_fifty_concurrent_uploads_none_lost_or_duplicated(deployment, samples) -> None:
    api = deployment.api
    data = (samples / IMAGE).read_bytes()
    names = [f"upload-{i:02d}.png" for i in range(50)]
    with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=50)) as client:
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda name: post_files(client, api.url, [(name, data)]), names))
        assert [a.status_code for a in answers] == [202] * 50, [a.text for a in answers if a.status_code != 202]
        ids = [a.json()["id"] for a in answers]
        assert len(set(ids)) == 50
        done = api.wait_done(client, ids, timeout=300)
    assert {i: done[i]["state"] for i in ids} == dict.fromkeys(ids, "done")
    assert [done[i]["document"]["results"][0]["path"] for i in ids] == names
    jobs = deployment.jobs()
    finished_once(jobs, ids)
    workers = {e["worker"] for e in jobs.events() if e["event"] == "claimed" and e["job"] in ids}
    assert workers == {"worker-a", "worker-b"}  # both took part


def test_api_stopped_with_jobs_queued_loses_none(deployment, samples) -> None:
    video, image = (samples / VIDEO).read_bytes(), (samples / IMAGE).read_bytes()
    # The workers (solo pool: one process each) are paused while the jobs go in, so that jobs are
    # still queued when the API stops however fast this machine scans.
    paused = [worker.process for worker in deployment.workers.values()]
    for process in paused:
        process.send_signal(signal.SIGSTOP)
    try:
        with httpx.Client(timeout=60) as client:
            ids = [post_files(client, deployment.api.url, [("first.mp4", video)]).json()["id"]]
            ids += [post_files(client, deployment.api.url, [(f"q{i}.png", image)]).json()["id"] for i in range(8)]
        # SIGTERM: the API stops within its bound (uvicorn ends a clean stop by re-raising the signal)
        stopping = time.monotonic()
        deployment.api.process.send_signal(signal.SIGTERM)
        assert deployment.api.process.wait(20) == -signal.SIGTERM and time.monotonic() - stopping < 15
        jobs = deployment.jobs()
        assert all(jobs.get(i).state == "queued" for i in ids)  # waiting when the API stopped
    finally:
        for process in paused:
            process.send_signal(signal.SIGCONT)
    deployment.api = deployment.new_api()  # same Redis and data dir, new port
    with httpx.Client(timeout=60) as client:
        done = deployment.api.wait_done(client, ids)
    assert {i: done[i]["state"] for i in ids} == dict.fromkeys(ids, "done")
    finished_once(jobs, ids)


def test_redis_down_uploads_refused_with_503_then_accepted(deployment, samples) -> None:
    api, image = deployment.api, (samples / IMAGE).read_bytes()
    with httpx.Client(timeout=30) as client:
        before = post_files(client, api.url, [("before.png", image)]).json()["id"]
        api.wait_done(client, [before])
        deployment.redis.stop()
        try:
            started = time.monotonic()
            refused = post_files(client, api.url, [("during.png", image)])
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1, refused.text
            assert time.monotonic() - started < 10  # refused, not hung
            assert client.get(f"{api.url}/api/scans/{before}").status_code == 503
            assert client.get(f"{api.url}/healthz").status_code == 200  # alive
            assert client.get(f"{api.url}/readyz").status_code == 503  # but not ready
            time.sleep(2)
        finally:
            deployment.redis.start()  # same port, same append-only file
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            answer = post_files(client, api.url, [("after.png", image)])
            if answer.status_code == 202:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(1)
        assert answer.status_code == 202, answer.text
        after = answer.json()["id"]
        done = api.wait_done(client, [before, after], timeout=180)
    assert done[before]["state"] == done[after]["state"] == "done"  # kept across the restart, and scanned after
    assert not list((deployment.data / "uploads").glob("*/*"))  # the refused upload left nothing behind
    wait_ready(api.url, 2)


def test_worker_killed_mid_scan_job_finished_once_by_the_other(deployment, samples) -> None:
    api, jobs = deployment.api, deployment.jobs()
    with httpx.Client(timeout=60) as client:
        job_id = post_files(client, api.url, [("killed.mp4", (samples / VIDEO).read_bytes())]).json()["id"]
        deadline = time.monotonic() + 60
        while not (claims := [e for e in jobs.events(job_id) if e["event"] == "claimed"]):
            assert time.monotonic() < deadline, "the job was never claimed"
            time.sleep(0.05)
        victim = deployment.workers[claims[0]["worker"]]
        victim.signal(signal.SIGKILL)
        done = api.wait_done(client, [job_id])[job_id]
    assert (done["state"], done["attempts"]) == ("done", 2), done
    events = [(e["event"], e["worker"]) for e in jobs.events(job_id)]
    survivor = next(name for name in deployment.workers if name != victim.name)
    assert events == [("queued", False), ("claimed", victim.name), ("requeued", victim.name),
                      ("claimed", survivor), ("finished", survivor)]
    # SIGTERM to the survivor mid-scan: it finishes the job (within --stop-timeout) and exits 0
    worker = deployment.workers[survivor]
    with httpx.Client(timeout=60) as client:
        job_id = post_files(client, api.url, [("last.mp4", (samples / VIDEO).read_bytes())]).json()["id"]
        while not any(e["event"] == "claimed" for e in jobs.events(job_id)):
            time.sleep(0.05)
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0
        assert client.get(f"{api.url}/api/scans/{job_id}").json()["state"] == "done"
    finished_once(jobs, [job_id])
    # a worker whose job cannot finish within --stop-timeout gives it back, attempt returned, and exits
    third = Worker(*deployment.run_and_config, deployment.data, deployment.redis.url, deployment.base / "worker-c",
                   "worker-c", "--stop-timeout", "0.01").start()  # no scan finishes within 10 ms
    deployment.workers["worker-c"] = third
    wait_ready(api.url, 1)
    with httpx.Client(timeout=60) as client:
        job_id = post_files(client, api.url, [("given-back.mp4", (samples / VIDEO).read_bytes())]).json()["id"]
        while not any(e["event"] == "claimed" for e in jobs.events(job_id)):
            time.sleep(0.05)
        stopping = time.monotonic()
        third.signal(signal.SIGTERM)
        assert third.process.wait(30) == 0 and time.monotonic() - stopping < 10
        answer = client.get(f"{api.url}/api/scans/{job_id}").json()
    assert (answer["state"], answer["attempts"]) == ("queued", 0), answer
    assert [(e["event"], e["worker"], e["detail"]) for e in jobs.events(job_id)][1:] == [
        ("claimed", "worker-c", False), ("requeued", "worker-c", "worker stopped")]


def test_worker_limits_answer_too_large_as_facesleuth_scan(deployment, samples, run_and_config, tmp_path) -> None:
    """A worker given --max-pixels answers too_large with the same JSON as `facesleuth scan --max-pixels`."""
    for worker in deployment.workers.values():
        worker.stop()  # only the worker with limits below takes jobs
    limited = Worker(*run_and_config, deployment.data, deployment.redis.url, deployment.base / "worker-limits",
                     "worker-limits", "--max-pixels", "1000")
    deployment.workers["worker-limits"] = limited.start()
    files = [samples / IMAGE, samples / VIDEO]
    with httpx.Client(timeout=60) as client:
        job_id = post_files(client, deployment.api.url, [(f.name, f.read_bytes()) for f in files]).json()["id"]
        done = deployment.api.wait_done(client, [job_id])[job_id]
    assert done["state"] == "done", done
    run, config = run_and_config
    output = tmp_path / "scan.json"
    assert facesleuth_main(["scan", *map(str, files), "--model", str(run), "--frames", FRAMES, "--config",
                            str(config), "--threads", "1", "--device", "cpu", "--format", "json", "--no-progress",
                            "--max-pixels", "1000", "--output", str(output)]) == 1  # too_large is a failed input
    expected = json.loads(output.read_text())
    assert [r["status"] for r in expected["results"]] == ["too_large", "too_large"]
    assert comparable(done["document"]) == comparable(expected)
    assert done["document"]["settings"]["limits"]["max_pixels"] == 1000
