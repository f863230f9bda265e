"""Broker mode: jobs on Celery with Redis as broker and result store, workers on any number of machines.

The API process records each job in Redis and sends a Celery task that names only the job's id;
``facesleuth worker --broker URL --model RUN --data-dir DIR`` processes consume the queue, each
with the run loaded once, and scan with :func:`facesleuth.serve.workers.scan_job` (the code of the
embedded mode and of ``facesleuth scan``). Uploads never travel in messages: they stay in the
data dir's ``uploads/`` folder, which every worker must see with the same contents (on a cluster,
a shared mount such as NFS, CephFS or Lustre; the path may differ between machines).

Delivery is at least once, results exactly once:

- tasks are acknowledged late (``acks_late``) and given back when the worker process dies
  (``task_reject_on_worker_lost``); a message a lost machine held goes back to the queue after
  the visibility timeout;
- each job has a record in Redis (a hash), changed only by the Lua scripts below, each atomic: a
  worker *claims* a queued job (attempts + 1), writes the result only while it still holds that
  claim (same worker, same attempt), so a duplicate delivery finds the job running or finished
  and does nothing;
- every worker keeps a heartbeat key with a time to live; the API's reaper queues again a running
  job whose worker's key expired (the worker was killed or its machine lost), and fails it with
  a message instead once it has used ``max_attempts`` claims (an input that kills its worker
  every time must not go round forever).

An input stuck past its wall-clock limit (``input_seconds``; inside a decoder, on a hung mount)
cannot be interrupted from Python, so the worker's :class:`InputWatchdog` ends the process, as
the embedded pool replaces its workers: it marks the input timed out beside its upload, gives
the job back without using an attempt (when Redis cannot be told, the reaper queues it again
once the heartbeat expires, and that uses one) and exits with :data:`EXIT_INPUT_TIMED_OUT`. The
next delivery answers that input ``timed_out`` and scans the others. Workers must therefore run
under a supervisor that starts them again (systemd ``Restart=always``, a Kubernetes Deployment,
a SLURM job array with requeue).

Redis must keep its data across restarts (``appendonly yes``): it holds the queue and the results.
One Redis database per deployment: every key starts with ``facesleuth:``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesleuth.serve.store import DONE, FAILED, QUEUED, RUNNING, STATES, Job, Upload

log = logging.getLogger(__name__)

PREFIX = "facesleuth"
QUEUE = "facesleuth-scans"
TASK = "facesleuth.scan"
#: Upper bounds of the scan-seconds histogram (``/metrics``); the last bucket is +Inf.
SCAN_SECONDS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
EVENTS_KEPT = 100_000  # the event log keeps the latest claims, requeues and finishes
UNSENT_GRACE_SECONDS = 30.0  # a queued job whose task was never sent (the API died in between) is sent again


class BrokerUnavailable(Exception):
    """Redis cannot be reached (or answered too slowly): the API answers 503, the worker retries."""


@dataclass
class BrokerSettings:
    """How to reach the broker and how jobs behave there (the API's and every worker's)."""

    url: str
    max_attempts: int = 3  # claims per job, interruptions and errors together
    keep_days: float = 0.0  # the API deletes finished jobs older than this (0: keep them all, as SQLite does)
    visibility_timeout: float = 3600.0  # seconds before a message a lost machine held is delivered again
    heartbeat_seconds: float = 5.0  # a worker silent for 3 heartbeats is lost
    stop_timeout: float = 30.0  # SIGTERM: seconds a worker may finish its job before giving it back

    def check(self) -> BrokerSettings:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"--broker must be a Redis URL (redis://HOST:PORT/DB), got {self.url!r}")
        if self.max_attempts < 1:
            raise ValueError(f"--max-attempts must be at least 1, got {self.max_attempts}")
        if self.keep_days < 0:
            raise ValueError(f"--keep-days must be 0 (keep all) or positive, got {self.keep_days}")
        for name in ("visibility_timeout", "heartbeat_seconds", "stop_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        return self


def _key(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


def histogram_bucket(seconds: float) -> int:
    return next((i for i, bound in enumerate(SCAN_SECONDS_BUCKETS) if seconds <= bound), len(SCAN_SECONDS_BUCKETS))


# ---------------------------------------------------------------------- Lua: each call one atomic step

# KEYS: the job's hash. Helpers shared by the scripts: the time from Redis (one clock for every
# machine), moving a job between the per-state sets, and the event log.
_LUA_PRELUDE = """
local prefix = '""" + PREFIX + """'
local job = KEYS[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local function event(id, name, worker, detail)
  redis.call('RPUSH', prefix .. ':events', cjson.encode({job = id, event = name, worker = worker or false,
                                                           at = now(), detail = detail or false}))
  redis.call('LTRIM', prefix .. ':events', -""" + str(EVENTS_KEPT) + """, -1)
end
local function move(id, from, to)
  redis.call('SREM', prefix .. ':state:' .. from, id)
  redis.call('SADD', prefix .. ':state:' .. to, id)
  redis.call('HSET', job, 'state', to)
end
local function fail(id, from, worker, message)
  move(id, from, 'failed')
  redis.call('HSET', job, 'finished', now(), 'error', message)
  redis.call('HDEL', job, 'worker')
  event(id, 'failed', worker, message)
end
local function requeue_or_fail(id, worker, attempts, why)
  if attempts >= tonumber(redis.call('HGET', job, 'max_attempts')) then
    fail(id, 'running', worker, why .. '; gave up after ' .. attempts .. ' attempts: upload the files again, ' ..
         'or scan them with `facesleuth scan`')
    return 'failed'
  end
  move(id, 'running', 'queued')
  redis.call('HSET', job, 'attempts', attempts, 'queued_at', now(), 'sent', 0)
  redis.call('HDEL', job, 'worker', 'started')
  event(id, 'requeued', worker, why)
  return 'requeued'
end
"""

# ARGV: id, max queued, inputs (JSON), max attempts. 1 when queued, 0 when the queue is full.
_SUBMIT = _LUA_PRELUDE + """
if redis.call('SCARD', prefix .. ':state:queued') >= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', job) == 1 then return redis.error_reply('job exists') end
local t = now()
redis.call('HSET', job, 'id', ARGV[1], 'state', 'queued', 'attempts', 0, 'created', t, 'queued_at', t,
           'inputs', ARGV[3], 'max_attempts', ARGV[4], 'sent', 0)
redis.call('SADD', prefix .. ':state:queued', ARGV[1])
redis.call('ZADD', prefix .. ':jobs', t, ARGV[1])
event(ARGV[1], 'queued')
return 1
"""

# ARGV: id, worker. {outcome, attempt}: claimed; held (a live worker runs it: a duplicate);
# finished (done or failed already); missing; failed (attempts used up).
_CLAIM = _LUA_PRELUDE + """
local state = redis.call('HGET', job, 'state')
if not state then return {'missing', 0} end
if state == 'done' or state == 'failed' then return {'finished', 0} end
local attempts = tonumber(redis.call('HGET', job, 'attempts'))
if state == 'running' then
  local holder = redis.call('HGET', job, 'worker')
  if holder and redis.call('EXISTS', prefix .. ':worker:' .. holder) == 1 then return {'held', attempts} end
  -- its worker was lost and the message came back before the reaper looked
  if requeue_or_fail(ARGV[1], holder, attempts, 'interrupted (its worker was lost)') == 'failed' then return {'failed', attempts} end
end
attempts = attempts + 1
move(ARGV[1], 'queued', 'running')
redis.call('HSET', job, 'attempts', attempts, 'worker', ARGV[2], 'started', now())
event(ARGV[1], 'claimed', ARGV[2])
return {'claimed', attempts}
"""

# ARGV: id, worker, attempt, state (done|failed), document JSON or '', error or '', seconds,
# histogram bucket, input statuses JSON ({status: count}). 1 when stored, 0 when no longer held.
_FINISH = _LUA_PRELUDE + """
if redis.call('HGET', job, 'state') ~= 'running' or redis.call('HGET', job, 'worker') ~= ARGV[2]
   or redis.call('HGET', job, 'attempts') ~= ARGV[3] then
  return 0
end
move(ARGV[1], 'running', ARGV[4])
redis.call('HSET', job, 'finished', now(), 'seconds', ARGV[7])
if ARGV[5] ~= '' then redis.call('HSET', job, 'document', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', job, 'error', ARGV[6]) end
redis.call('HDEL', job, 'worker')
local hist = prefix .. ':scan_seconds'
redis.call('HINCRBY', hist, 'bucket:' .. ARGV[8], 1)
redis.call('HINCRBY', hist, 'count', 1)
redis.call('HINCRBYFLOAT', hist, 'sum', ARGV[7])
for status, count in pairs(cjson.decode(ARGV[9])) do
  redis.call('HINCRBY', prefix .. ':inputs', status, count)
end
redis.call('LPUSH', prefix .. ':recent_seconds', ARGV[7])
redis.call('LTRIM', prefix .. ':recent_seconds', 0, 19)
event(ARGV[1], ARGV[4] == 'done' and 'finished' or 'failed', ARGV[2], ARGV[6] ~= '' and ARGV[6] or nil)
return 1
"""

# ARGV: id, worker, attempt, counted (1|0), why. Gives a job this worker holds back to the queue
# (a graceful stop gives the attempt back: counted 0); 'requeued', 'failed' or 'not held'.
_RELEASE = _LUA_PRELUDE + """
if redis.call('HGET', job, 'state') ~= 'running' or redis.call('HGET', job, 'worker') ~= ARGV[2]
   or redis.call('HGET', job, 'attempts') ~= ARGV[3] then
  return 'not held'
end
local attempts = tonumber(ARGV[3])
if ARGV[4] == '0' then attempts = attempts - 1 end
return requeue_or_fail(ARGV[1], ARGV[2], attempts, ARGV[5])
"""

# ARGV: id, grace seconds. Queues again (or fails) a running job whose worker's heartbeat expired,
# or whose worker has said for longer than the grace that it scans something else (it lost the job
# to an error); '' otherwise.
_REAP = _LUA_PRELUDE + """
if redis.call('HGET', job, 'state') ~= 'running' then return '' end
local holder = redis.call('HGET', job, 'worker')
local beat = holder and redis.call('GET', prefix .. ':worker:' .. holder)
local why = 'interrupted (its worker was lost)'
if beat then
  local scanning = cjson.decode(beat)['job']
  local started = tonumber(redis.call('HGET', job, 'started') or 0)
  if scanning == ARGV[1] or now() - started < tonumber(ARGV[2]) then return '' end
  why = 'interrupted (its worker dropped it)'
end
return requeue_or_fail(ARGV[1], holder, tonumber(redis.call('HGET', job, 'attempts')), why)
"""
REAP_GRACE_SECONDS = 60.0  # a worker reports the job it claimed in its next heartbeat, seconds later


# ARGV: id. Deletes a finished (done or failed) job; 1 when deleted.
_FORGET = _LUA_PRELUDE + """
local state = redis.call('HGET', job, 'state')
if state ~= 'done' and state ~= 'failed' then return 0 end
redis.call('DEL', job)
redis.call('SREM', prefix .. ':state:' .. state, ARGV[1])
redis.call('ZREM', prefix .. ':jobs', ARGV[1])
return 1
"""

# ARGV: id. Deletes a queued job whose task was never sent (sending failed); 1 when deleted.
_WITHDRAW = _LUA_PRELUDE + """
if redis.call('HGET', job, 'state') ~= 'queued' or redis.call('HGET', job, 'sent') ~= '0' then return 0 end
redis.call('DEL', job)
redis.call('SREM', prefix .. ':state:queued', ARGV[1])
redis.call('ZREM', prefix .. ':jobs', ARGV[1])
event(ARGV[1], 'withdrawn')
return 1
"""


def _unavailable_on_redis_errors(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: RedisJobs, *args: Any, **kwargs: Any) -> Any:
        from kombu.exceptions import OperationalError
        from redis.exceptions import RedisError

        try:
            return method(self, *args, **kwargs)
        except (RedisError, OperationalError, OSError) as err:
            raise BrokerUnavailable(f"the job queue (Redis at {self.safe_url}) is unreachable: {err}") from err
    return wrapper


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url


class RedisJobs:
    """The job records in Redis: what :class:`facesleuth.serve.store.JobStore` is in embedded mode.

    Methods raise :class:`BrokerUnavailable` when Redis does not answer within a few seconds.
    ``publish`` sends a job's task (given by the caller: the API's or a worker's Celery app).
    """

    def __init__(self, settings: BrokerSettings, publish: Callable[[str], None] | None = None):
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.settings = settings
        self.safe_url = _safe_url(settings.url)
        # Short timeouts: an upload must be refused at once when Redis is down, not hang.
        self.redis = redis.Redis.from_url(settings.url, decode_responses=True, socket_connect_timeout=2,
                                          socket_timeout=5, health_check_interval=10,
                                          retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
        self._publish = publish
        self._scripts = {name: self.redis.register_script(text) for name, text in
                         [("submit", _SUBMIT), ("claim", _CLAIM), ("finish", _FINISH), ("release", _RELEASE),
                          ("reap", _REAP), ("withdraw", _WITHDRAW),
                          ("forget", _FORGET)]}

    def _run(self, script: str, job_id: str, *args: Any) -> Any:
        return self._scripts[script](keys=[_key("job", job_id)], args=[job_id, *args])

    # ------------------------------------------------------------------ API process

    @_unavailable_on_redis_errors
    def submit(self, job_id: str, inputs: list[Upload], max_queued: int) -> bool:
        """Record the job and send its task; False (nothing stored) when ``max_queued`` jobs wait."""
        if not self._run("submit", job_id, max_queued, json.dumps([u.to_dict() for u in inputs]),
                         self.settings.max_attempts):
            return False
        try:
            self.send(job_id)
        except BrokerUnavailable:
            with contextlib.suppress(BrokerUnavailable):
                self.withdraw(job_id)  # the client is told to retry: the job must not run meanwhile
            raise
        return True

    @_unavailable_on_redis_errors
    def withdraw(self, job_id: str) -> bool:
        """Delete a queued job whose task was never sent; False when it is gone or was sent."""
        return bool(self._run("withdraw", job_id))

    @_unavailable_on_redis_errors
    def send(self, job_id: str) -> None:
        """Send the job's task, then mark it sent (a job left unsent is sent again by the reaper)."""
        self._publish(job_id)
        self.redis.hset(_key("job", job_id), "sent", 1)

    @_unavailable_on_redis_errors
    def get(self, job_id: str) -> Job | None:
        record = self.redis.hgetall(_key("job", job_id))
        if not record:
            return None

        def number(name: str) -> float | None:
            return float(record[name]) if record.get(name) else None

        return Job(id=record["id"], state=record["state"], attempts=int(record["attempts"]),
                   created=float(record["created"]), started=number("started"), finished=number("finished"),
                   error=record.get("error"), inputs=[Upload(**item) for item in json.loads(record["inputs"])],
                   document=json.loads(record["document"]) if record.get("document") else None)

    @_unavailable_on_redis_errors
    def counts(self) -> dict[str, int]:
        with self.redis.pipeline(transaction=False) as pipe:
            for state in STATES:
                pipe.scard(_key("state", state))
            return dict(zip(STATES, map(int, pipe.execute())))

    @_unavailable_on_redis_errors
    def mean_seconds(self) -> float | None:
        recent = [float(s) for s in self.redis.lrange(_key("recent_seconds"), 0, -1)]
        return sum(recent) / len(recent) if recent else None

    @_unavailable_on_redis_errors
    def job_ids(self, *states: str) -> set[str]:
        if not states:
            return set(self.redis.zrange(_key("jobs"), 0, -1))
        return set(self.redis.sunion([_key("state", state) for state in states]))

    @_unavailable_on_redis_errors
    def events(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Every claim, requeue and finish, in order (how each job ran, for checks afterwards)."""
        events = [json.loads(line) for line in self.redis.lrange(_key("events"), 0, -1)]
        return [e for e in events if job_id is None or e["job"] == job_id]

    @_unavailable_on_redis_errors
    def reap(self, grace: float = REAP_GRACE_SECONDS) -> list[str]:
        """Queue again the jobs of lost workers (or fail them) and send their tasks, and send the
        tasks of queued jobs never sent (the API died between recording and sending); returns the
        ids sent."""
        sent = []
        for job_id in sorted(self.redis.smembers(_key("state", RUNNING))):
            if self._run("reap", job_id, grace) == "requeued":
                log.warning("job %s: its worker was lost; queued again", job_id, extra={"job": job_id})
                self.send(job_id)
                sent.append(job_id)
        now = self.redis.time()[0]
        for job_id in sorted(self.redis.smembers(_key("state", QUEUED))):
            sent_flag, queued_at = self.redis.hmget(_key("job", job_id), "sent", "queued_at")
            if sent_flag == "0" and queued_at and now - float(queued_at) > UNSENT_GRACE_SECONDS:
                log.warning("job %s: its task was never sent; sending it", job_id, extra={"job": job_id})
                self.send(job_id)
                sent.append(job_id)
        return sent

    @_unavailable_on_redis_errors
    def forget_finished(self, older_than_days: float) -> int:
        """Delete the done and failed jobs created more than ``older_than_days`` ago (Redis keeps
        everything in memory); returns how many."""
        cutoff = self.redis.time()[0] - older_than_days * 86400
        return sum(int(self._run("forget", job_id)) for job_id in self.redis.zrangebyscore(_key("jobs"), 0, cutoff))

    # ------------------------------------------------------------------ workers

    @_unavailable_on_redis_errors
    def claim(self, job_id: str, worker: str) -> tuple[str, int]:
        outcome, attempt = self._run("claim", job_id, worker)
        return outcome, int(attempt)

    @_unavailable_on_redis_errors
    def finish(self, job_id: str, worker: str, attempt: int, document: dict[str, Any] | None, error: str | None,
               seconds: float) -> bool:
        """Store the outcome if ``worker`` still holds this attempt of the job; False otherwise."""
        statuses: dict[str, int] = {}
        for result in (document or {}).get("results", []):
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
        stored = self._run("finish", job_id, worker, attempt, DONE if error is None else FAILED,
                           "" if document is None else json.dumps(document, allow_nan=False), error or "",
                           round(seconds, 3), histogram_bucket(seconds), json.dumps(statuses))
        return bool(stored)

    @_unavailable_on_redis_errors
    def release(self, job_id: str, worker: str, attempt: int, counted: bool, why: str) -> str:
        """Give a held job back to the queue and send it again; 'requeued', 'failed' or 'not held'."""
        outcome = self._run("release", job_id, worker, attempt, 1 if counted else 0, why)
        if outcome == "requeued":
            self.send(job_id)
        return outcome

    # ------------------------------------------------------------------ workers' heartbeats, metrics

    @_unavailable_on_redis_errors
    def beat(self, worker: str, info: dict[str, Any], ttl: float) -> None:
        self.redis.set(_key("worker", worker), json.dumps(info), px=int(ttl * 1000))

    @_unavailable_on_redis_errors
    def forget_worker(self, worker: str) -> None:
        self.redis.delete(_key("worker", worker))

    @_unavailable_on_redis_errors
    def workers(self) -> list[dict[str, Any]]:
        """The live workers' last heartbeats."""
        keys = list(self.redis.scan_iter(_key("worker", "*"), count=1000))
        return [json.loads(value) for value in self.redis.mget(keys) if value] if keys else []

    def worker_counts(self) -> tuple[int, int]:
        """(alive, ready): workers with a live heartbeat, and those with their model loaded."""
        workers = self.workers()
        return len(workers), sum(bool(w.get("ready")) for w in workers)

    @_unavailable_on_redis_errors
    def queue_depth(self) -> int:
        """Task messages waiting in the broker's queue (not yet taken by a worker)."""
        return int(self.redis.llen(QUEUE))

    @_unavailable_on_redis_errors
    def scan_seconds(self) -> tuple[list[int], float]:
        """Finished jobs per histogram bucket (not cumulative; the last is +Inf) and their total seconds."""
        hist = self.redis.hgetall(_key("scan_seconds"))
        counts = [int(hist.get(f"bucket:{i}", 0)) for i in range(len(SCAN_SECONDS_BUCKETS) + 1)]
        return counts, float(hist.get("sum", 0.0))

    @_unavailable_on_redis_errors
    def input_statuses(self) -> dict[str, int]:
        return {status: int(count) for status, count in self.redis.hgetall(_key("inputs")).items()}

    def close(self) -> None:
        self.redis.close()


# ---------------------------------------------------------------------- Celery


def celery_app(settings: BrokerSettings, results: bool) -> Any:
    """The Celery application on ``settings.url``; ``results``: store each task's outcome in Redis
    too (the workers do; the API never reads task results, so it needs no result backend)."""
    from celery import Celery

    app = Celery("facesleuth", broker=settings.url, backend=settings.url if results else None)
    restore_every = max(1, min(10, int(settings.visibility_timeout / 4)))
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,  # a message is removed only once its job is finished
        task_reject_on_worker_lost=True,  # a worker process that dies gives its message back
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,  # a worker holds one message at a time: the others are for other workers
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for Redis to come back
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
            "socket_timeout": 5,
            "socket_connect_timeout": 2,
        },
        result_expires=7 * 24 * 3600,
        result_backend_transport_options={"socket_timeout": 5, "socket_connect_timeout": 2},
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def task_sender(app: Any) -> Callable[[str], None]:
    """``publish(job_id)``: send the job's task, failing within seconds when Redis is down.

    Every send runs on one thread of its own: Celery keeps its result backend and producer per
    thread, and a thread's first send looks the backend up among every installed package's entry
    points, which on the API's short-lived request threads cost more than the whole upload.
    """
    sender = ThreadPoolExecutor(1, thread_name_prefix="facesleuth-send")

    def send(job_id: str) -> None:
        app.send_task(TASK, args=[job_id], queue=QUEUE, retry=True,
                      retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2,
                                    "interval_max": 0.5})

    def publish(job_id: str) -> None:
        sender.submit(send, job_id).result()  # raises what the send raised

    return publish


# ---------------------------------------------------------------------- the API side


class BrokerPool:
    """The API's view of the workers in broker mode: their heartbeats, and a reaper thread that
    queues again the jobs of lost workers. Same interface as :class:`WorkerPool` for the app."""

    def __init__(self, jobs: RedisJobs, settings: BrokerSettings):
        self.jobs, self.settings = jobs, settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._reap, name="facesleuth-reaper", daemon=True)
        self._thread.start()

    def _reap(self) -> None:
        sweeps = 0
        while not self._stop.wait(1.0):
            try:
                self.jobs.reap()
                if self.settings.keep_days and sweeps % 600 == 0:  # every 10 minutes
                    forgotten = self.jobs.forget_finished(self.settings.keep_days)
                    if forgotten:
                        log.info("%d finished job(s) older than %g days deleted", forgotten, self.settings.keep_days)
                sweeps += 1
            except BrokerUnavailable as err:
                log.warning("reaper: %s", err)
            except Exception:  # the reaper must outlive any one bad record
                log.exception("reaper failed; trying again")

    def notify(self) -> None:
        """Nothing to wake: the task was sent with the job."""

    @property
    def ready_count(self) -> int:
        try:
            return self.jobs.worker_counts()[1]
        except BrokerUnavailable:
            return 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.jobs.close()


# ---------------------------------------------------------------------- the worker process


@dataclass
class BrokerWorkerSettings:
    """What ``facesleuth worker`` needs: the broker, the shared data dir, and the scan settings."""

    broker: BrokerSettings
    data_dir: Path
    model: str
    # ScanOptions' frames, frame_policy and max_frame_offset as given (the rest: its defaults)
    sampling: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    backend: str = "auto"  # the classifier's (facesleuth.evaluate.inference.BACKENDS)
    detection: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    thumbnails: int = 12
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    limits: dict[str, Any] = field(default_factory=dict)  # ScanOptions' max_pixels, ..., input_seconds

    @property
    def input_seconds(self) -> float | None:
        from facesleuth.scan.scanner import ScanOptions

        return self.limits.get("input_seconds", ScanOptions.input_seconds)


class Heartbeat:
    """A thread that keeps this worker's key alive in Redis (3 beats of life) with what it is doing."""

    def __init__(self, jobs: RedisJobs, name: str, interval: float):
        self.jobs, self.name, self.interval = jobs, name, interval
        self.info: dict[str, Any] = {"name": name, "host": socket.gethostname(), "pid": os.getpid(),
                                     "ready": False, "job": None, "jobs_done": 0, "since": time.time()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facesleuth-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        try:
            self.jobs.beat(self.name, self.info, ttl=3 * self.interval)
        except BrokerUnavailable as err:
            log.warning("heartbeat: %s", err)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def update(self, **info: Any) -> None:
        self.info.update(info)
        self.beat()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.jobs.forget_worker(self.name)
        except BrokerUnavailable:
            pass  # the key expires by itself


EXIT_INPUT_TIMED_OUT = 3  # facesleuth worker ended itself: one input ran past --input-seconds


def _exit_now(code: int) -> None:
    """End the process at once, the log written out: another thread (the scan) may be stuck."""
    logging.shutdown()
    os._exit(code)


class InputWatchdog:
    """A thread that ends the worker when one input has run ``limit + grace`` seconds.

    The scanner keeps to the limit by itself between frames, so the watchdog acts only on an
    input stuck where Python cannot interrupt it; then ``overdue(upload)`` (mark the input, give
    the job back) and ``exit(EXIT_INPUT_TIMED_OUT)``, by default at once: the main thread is
    stuck, so no clean exit could run.
    """

    def __init__(self, limit: float, overdue: Callable[[Path], None], grace: float | None = None,
                 exit: Callable[[int], Any] = _exit_now):
        from facesleuth.serve.workers import KILL_GRACE_SECONDS

        self.limit = limit
        self.grace = KILL_GRACE_SECONDS if grace is None else grace
        self._overdue, self._exit = overdue, exit
        self._poll = min(1.0, (self.limit + self.grace) / 10)
        self._current: tuple[Path, float] | None = None  # (upload, time.monotonic() it began)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="facesleuth-watchdog", daemon=True)

    def start(self) -> InputWatchdog:
        self._thread.start()
        return self

    def begin(self, upload: Path) -> None:
        self._current = (upload, time.monotonic())

    def end(self) -> None:
        self._current = None

    def check(self, now: float | None = None) -> bool:
        """Act when the current input is overdue; True when it was."""
        current = self._current
        if current is None:
            return False
        upload, since = current
        if (time.monotonic() if now is None else now) - since <= self.limit + self.grace:
            return False
        self._current = None
        try:
            self._overdue(upload)
        except Exception:  # the process must go all the same: the scan will not come back
            log.exception("marking %s timed out failed", upload)
        finally:
            self._exit(EXIT_INPUT_TIMED_OUT)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            self.check()

    def stop(self) -> None:
        self._stop.set()


class UploadsNotVisible(Exception):
    """The job's upload folder is not in this worker's data dir (not shared, or not yet synced)."""


OUTAGE_SECONDS = 120.0  # a worker retries its Redis steps this long before giving the message back


def _through_outage(step: Callable[[], Any]) -> Any:
    """``step()``, tried again every 2 s while Redis is unreachable, for at most OUTAGE_SECONDS."""
    deadline = time.monotonic() + OUTAGE_SECONDS
    while True:
        try:
            return step()
        except BrokerUnavailable as err:
            if time.monotonic() > deadline:
                raise
            log.warning("%s; trying again", err)
            time.sleep(2)


class JobRunner:
    """Runs one delivered task: claim, scan with the loaded scanner, store the result once.

    Each step on Redis waits out a short outage; after a long one the claim gives the message
    back unacknowledged (it is delivered again after the visibility timeout) and a result that
    could not be stored leaves the job to the reaper, which queues it again.
    """

    def __init__(self, jobs: RedisJobs, scanner: Any, settings: BrokerWorkerSettings, heartbeat: Heartbeat,
                 watchdog_grace: float | None = None, exit: Callable[[int], Any] = _exit_now):
        self.jobs, self.scanner, self.settings, self.heartbeat = jobs, scanner, settings, heartbeat
        self.uploads = Path(settings.data_dir) / "uploads"
        self.current: tuple[str, int] | None = None  # (job, attempt) being scanned
        self.lock = threading.Lock()  # the job is finished or given back once, by the task or by a stop
        limit = settings.input_seconds
        self.watchdog = None if limit is None else InputWatchdog(limit, self.input_overdue, watchdog_grace,
                                                                 exit).start()

    def _on_input(self, job_id: str) -> Callable[[Any], None]:
        def on_input(upload: Any) -> None:
            if self.watchdog is not None:
                if upload is None:
                    self.watchdog.end()
                else:
                    self.watchdog.begin(self.uploads / job_id / upload.stored)
        return on_input

    def input_overdue(self, upload: Path) -> None:
        """The watchdog's step before the process ends: mark ``upload`` timed out (on the shared
        data dir, for whichever worker takes the job next) and give the job back, attempt returned."""
        from facesleuth.serve.workers import mark_timed_out

        limit = self.settings.input_seconds
        # marked first: should that fail (raise), the job is left to the reaper, whose requeue uses
        # an attempt, so an input that cannot be marked does not go round for ever
        mark_timed_out(upload, limit)
        outcome = "left to the reaper"
        with self.lock:
            held, self.current = self.current, None
            if held is not None:
                job_id, attempt = held
                try:
                    outcome = self.jobs.release(job_id, self.settings.name, attempt, counted=False,
                                                why=f"an input ran past the limit of {limit:g} s (--input-seconds)")
                except BrokerUnavailable as err:  # the heartbeat expires and the reaper queues it (an attempt)
                    log.warning("giving the job back: %s", err)
        job_id = upload.parent.name
        log.error("job %s: input %s ran past the limit of %g s per input (--input-seconds); it answers timed_out, "
                  "the job was given back (%s); worker exits with code %d for its supervisor to start it again",
                  job_id, upload.name, limit, outcome, EXIT_INPUT_TIMED_OUT,
                  extra={"event": "timed_out", "job": job_id, "exit_code": EXIT_INPUT_TIMED_OUT})
        self.heartbeat.stop()

    def __call__(self, job_id: str) -> dict[str, Any]:
        from facesleuth.serve.workers import remove_uploads, scan_job

        me = self.settings.name
        outcome, attempt = _through_outage(lambda: self.jobs.claim(job_id, me))
        if outcome != "claimed":
            # a duplicate delivery (the job is running elsewhere or finished) or a job out of attempts
            log.info("job %s: %s; message dropped", job_id, outcome, extra={"job": job_id, "outcome": outcome})
            return {"job": job_id, "outcome": outcome}
        self.current = (job_id, attempt)
        self.heartbeat.update(job=job_id)
        job = _through_outage(lambda: self.jobs.get(job_id))
        started = time.perf_counter()
        try:
            folder = self.uploads / job_id
            if not folder.is_dir():
                raise UploadsNotVisible(
                    f"the upload folder of job {job_id} is not in this worker's --data-dir "
                    f"({self.settings.data_dir}): it must be the API's data dir, on a mount every machine shares")
            try:
                document, error = scan_job(self.scanner, job, self.uploads, self._on_input(job_id)), None
            finally:
                if self.watchdog is not None:
                    self.watchdog.end()
        except Exception as err:  # the attempt failed; the job is tried again while attempts remain
            log.exception("job %s: attempt %d failed", job_id, attempt, extra={"job": job_id})
            error = f"{type(err).__name__}: {err}"
            with self.lock:
                if self.current is None:
                    return {"job": job_id, "outcome": "given back"}
                self.current = None
                outcome = _through_outage(lambda: self.jobs.release(job_id, me, attempt, counted=True,
                                                                    why=f"attempt {attempt} failed: {error}"))
            if outcome == "failed":
                log.error("job %s failed after %d attempts: %s", job_id, attempt, error,
                          extra={"event": "job", "job": job_id, "state": FAILED, "attempt": attempt})
            self.heartbeat.update(job=None)
            return {"job": job_id, "outcome": outcome}
        seconds = time.perf_counter() - started
        with self.lock:
            if self.current is None:  # a stop gave it back meanwhile
                return {"job": job_id, "outcome": "given back"}
            self.current = None
            stored = _through_outage(lambda: self.jobs.finish(job_id, me, attempt, document, None, seconds))
        self.heartbeat.update(job=None, jobs_done=self.heartbeat.info["jobs_done"] + 1)
        if stored:
            remove_uploads(self.uploads / job_id)
            statuses = [r["status"] for r in document["results"]]
            log.info("job %s done in %.2f s", job_id, seconds,
                     extra={"event": "job", "job": job_id, "state": DONE, "attempt": attempt,
                            "seconds": round(seconds, 3), "inputs": len(statuses),
                            "statuses": {s: statuses.count(s) for s in sorted(set(statuses))}})
            return {"job": job_id, "outcome": DONE}
        log.warning("job %s was taken from this worker meanwhile; result dropped", job_id, extra={"job": job_id})
        return {"job": job_id, "outcome": "dropped"}

    def give_back(self) -> str | None:
        """On a stop that cannot wait: the job being scanned goes back to the queue, attempt returned."""
        with self.lock:
            if self.current is None:
                return None
            job_id, attempt = self.current
            self.current = None
            outcome = self.jobs.release(job_id, self.settings.name, attempt, counted=False,
                                        why="worker stopped")
        log.warning("job %s given back to the queue (%s): the worker is stopping", job_id, outcome,
                    extra={"job": job_id})
        return job_id


def run_worker(settings: BrokerWorkerSettings, celery_args: Iterable[str] = ()) -> int:
    """Load the run once, then consume the queue until stopped (SIGTERM: finish the job within
    ``stop_timeout`` seconds, else give it back; either way exit)."""
    from celery import signals
    from celery.exceptions import Reject

    app = celery_app(settings.broker, results=True)
    jobs = RedisJobs(settings.broker, publish=task_sender(app))
    heartbeat = Heartbeat(jobs, settings.name, settings.broker.heartbeat_seconds).start()
    from facesleuth.serve.workers import load_scanner

    scanner = load_scanner(settings)
    runner = JobRunner(jobs, scanner, settings, heartbeat)

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)
    def scan(job_id: str) -> dict[str, Any]:
        try:
            return runner(job_id)
        except BrokerUnavailable as err:
            runner.current = None
            heartbeat.info["job"] = None
            # back to the queue; or, Redis still down, left unacknowledged: delivered again after
            # the visibility timeout
            raise Reject(str(err), requeue=True) from err

    def bounded_stop(**_: Any) -> None:
        def give_back_and_exit() -> None:
            if runner.current is not None:
                runner.give_back()
                heartbeat.stop()
                _exit_now(0)  # the scan is still running in the main thread; its result is not wanted

        log.warning("stopping: the job being scanned has %g s to finish", settings.broker.stop_timeout)
        timer = threading.Timer(settings.broker.stop_timeout, give_back_and_exit)
        timer.daemon = True
        timer.start()

    signals.worker_shutting_down.connect(bounded_stop, weak=False)
    # A receiver here tells Celery to leave logging as setup_logging made it (format, level).
    signals.setup_logging.connect(lambda **_: None, weak=False)
    logging.getLogger("celery").setLevel(logging.WARNING)
    heartbeat.update(ready=True, model=str(settings.model))
    log.info("worker %s ready: %s on %s, %d frames per video (%s)", settings.name, scanner.run.name,
             scanner.run.device, scanner.options.frames, scanner.options.frame_policy,
             extra={"event": "ready", "worker": settings.name})
    try:
        app.worker_main(["--quiet", "worker", "--pool=solo", "--concurrency=1", f"--queues={QUEUE}", f"--hostname={settings.name}",
                         "--without-gossip", "--without-mingle", "--without-heartbeat",
                         *celery_args])
    finally:
        heartbeat.stop()
        jobs.close()
    return 0
