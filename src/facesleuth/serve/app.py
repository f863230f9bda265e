"""The HTTP service: an upload page and a small JSON API over the job store and the worker pool.

Endpoints (JSON unless said otherwise):

- ``POST /api/scans``: multipart upload of one or more files (any field name). 202 with the
  job's id and URLs; 413 when the body exceeds ``--max-upload-mb`` (counted while it streams
  in, so an oversized upload is never read whole); 415 when a file is neither a video nor an
  image by content (the scanner's sniffing, names do not count); 429 with ``Retry-After``
  when ``--max-queue`` jobs are already waiting.
- ``GET /api/scans/{id}``: the job's state (queued, running, done, failed) and, once done,
  ``document``: the ``facesleuth scan --format json`` document of its files, each input named
  by the client's file name (``?thumbnails=1`` adds the faces' base64 thumbnails).
- ``GET /api/scans/{id}/report``: the HTML report (``facesleuth scan --format html``).
- ``GET /healthz``: liveness and how many workers have loaded the model (no token needed).
- ``GET /readyz``: readiness: 200 when at least one worker has loaded the model, else 503.
- ``GET /metrics``: Prometheus' text format (:mod:`.metrics`).
- ``GET /openapi.json``: the OpenAPI document of this API.
- ``GET /``: the upload page (static; holds no data, so it loads without a token and sends
  the token the user types with each API call).

With a token file every endpoint but the page and the operators' ones (health, readiness,
metrics, OpenAPI document: they hold no job data) wants ``Authorization: Bearer TOKEN``: 401
without one, 403 with a wrong one.

Two modes, one API: jobs in SQLite with a local worker pool (:mod:`.store`, :mod:`.workers`; the
default), or in Redis with ``facesleuth worker`` processes anywhere (:mod:`.broker`, with
``--broker URL``). In broker mode an unreachable Redis is answered with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
from html import escape
import hmac
import logging
import math
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from facesleuth import __version__
from facesleuth.scan.formats import html_report
from facesleuth.serve.broker import BrokerSettings, BrokerUnavailable
from facesleuth.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from facesleuth.serve.metrics import SQLiteMetrics, exposition
from facesleuth.serve.store import DONE, QUEUED, RUNNING, Job, JobStore, Upload, new_id
from facesleuth.serve.workers import WorkerPool, WorkerSettings, remove_uploads
from facesleuth.extract.video import sniff_media

log = logging.getLogger(__name__)

DATABASE_NAME = "jobs.sqlite3"
UPLOADS_NAME = "uploads"
MAX_FILES_PER_JOB = 100
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_COPY_CHUNK = 1 << 20
LIMITS_PLACEHOLDER = "<!-- model limits -->"


@dataclass
class ServeSettings:
    data_dir: Path
    worker: WorkerSettings = field(repr=False)
    workers: int = 2
    max_upload_bytes: int = 200 * 2**20
    max_queued: int = 100
    token: str | None = field(default=None, repr=False)
    broker: BrokerSettings | None = None  # None: the embedded SQLite mode
    #: the model's limits (ScanRun.limits), shown on the upload page before anything is uploaded
    model_limits: tuple[str, ...] = ()

    @classmethod
    def make(cls, data_dir: str | Path, model: str | Path, **options: Any) -> ServeSettings:
        """Settings with the database and upload folder inside ``data_dir``; ``options`` go to the
        fields of this class or of :class:`WorkerSettings`."""
        data_dir = Path(data_dir).resolve()
        own = {k: options.pop(k) for k in ("workers", "max_upload_bytes", "max_queued", "token", "broker", "model_limits")
               if k in options}
        worker = WorkerSettings(database=str(data_dir / DATABASE_NAME), uploads=str(data_dir / UPLOADS_NAME),
                                model=str(model), **options)
        return cls(data_dir=data_dir, worker=worker, **own)


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class BearerAuth:
    """ASGI middleware: every path but the public ones needs ``Authorization: Bearer <token>``."""

    PUBLIC = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json"})

    def __init__(self, app: ASGIApp, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in self.PUBLIC:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            response = _error(401, "this server needs a token: send the header 'Authorization: Bearer <token>'",
                              headers={"WWW-Authenticate": 'Bearer realm="facesleuth"'})
        elif not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            response = _error(403, "wrong token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


class UploadTooLarge(Exception):
    pass


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The request body, stopped with UploadTooLarge as soon as it passes ``limit`` bytes."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise UploadTooLarge
        yield chunk


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).isoformat(timespec="milliseconds")


def _without_thumbnails(document: dict[str, Any]) -> dict[str, Any]:
    """The document as ``facesleuth scan --format json`` writes it (faces without thumbnails)."""
    results = [{**r, "faces": [{k: v for k, v in f.items() if k != "thumbnail"} for f in r["faces"]]}
               for r in document["results"]]
    return {**document, "results": results}


def _save(upload: UploadFile, target: Path) -> int:
    """Copy an upload from the parser's spool file to ``target``; returns its size in bytes."""
    upload.file.seek(0)
    with open(target, "xb") as out:
        shutil.copyfileobj(upload.file, out, _COPY_CHUNK)
        return out.tell()


def _client_name(upload: UploadFile, index: int) -> str:
    """The client's file name, as metadata only: printable, at most 255 characters."""
    name = "".join(ch for ch in (upload.filename or "") if ch.isprintable())[:255]
    return name or f"upload-{index + 1}"


class Service:
    """The state behind the routes: settings, job store (SQLite or Redis), worker pool (local
    processes, or the broker's workers seen through their heartbeats)."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.uploads = Path(settings.worker.uploads)
        self.store: Any = None  # JobStore | RedisJobs: the same methods
        self.pool: Any = None  # WorkerPool | BrokerPool

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)
        if self.settings.broker is not None:
            self._start_broker()
            return
        self.store = JobStore(self.settings.worker.database)
        requeued = self.store.recover()  # jobs a killed server left running
        if requeued:
            log.warning("%d job(s) interrupted by the last stop are queued again", len(requeued))
        self._remove_stale_uploads()
        self.pool = WorkerPool(self.settings.worker, self.settings.workers)
        self.pool.start()
        self.metrics = SQLiteMetrics(self.store, self.pool)

    def _start_broker(self) -> None:
        from facesleuth.serve.broker import (
            BrokerPool,
            RedisJobs,
            celery_app,
            task_sender,
        )

        # Running jobs belong to workers elsewhere: a restart of the API leaves them alone (the
        # reaper queues again those whose worker is lost).
        self.store = RedisJobs(self.settings.broker, publish=task_sender(celery_app(self.settings.broker, False)))
        try:
            self._remove_stale_uploads()
        except BrokerUnavailable as err:
            log.warning("%s; old uploads are removed at the next start", err)
        self.pool = BrokerPool(self.store, self.settings.broker)
        self.pool.start()
        self.metrics = self.store

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()

    def workers_expected(self) -> int:
        """Workers sharing the queue: the pool's size, or the broker's live workers."""
        if self.settings.broker is None:
            return self.settings.workers
        return self.store.worker_counts()[0]

    def _remove_stale_uploads(self) -> None:
        """Upload folders of finished jobs, or of uploads the server died before queueing."""
        keep = self.store.job_ids(QUEUED, RUNNING)
        for folder in self.uploads.iterdir():
            if folder.name not in keep:
                remove_uploads(folder) if folder.is_dir() else folder.unlink()

    # ------------------------------------------------------------------ admission

    def retry_after(self) -> str:
        """Seconds until a place in the queue is likely free: the queue's share per worker."""
        queued = self.store.counts()["queued"]
        seconds = (self.store.mean_seconds() or 5.0) * max(1, queued) / max(1, self.workers_expected())
        return str(min(600, max(1, math.ceil(seconds))))

    def queue_full(self) -> bool:
        return self.store.counts()["queued"] >= self.settings.max_queued

    def busy(self) -> JSONResponse:
        return _error(429, f"the queue is full ({self.settings.max_queued} jobs waiting); retry later",
                      headers={"Retry-After": self.retry_after()})

    def too_large(self) -> JSONResponse:
        limit_mb = self.settings.max_upload_bytes / 2**20
        return _error(413, f"upload larger than the server's limit of {limit_mb:g} MB (--max-upload-mb)",
                      headers={"Connection": "close"})

    # ------------------------------------------------------------------ routes

    async def create_scan(self, request: Request) -> Response:
        limit = self.settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self.too_large()
        if await run_in_threadpool(self.queue_full):
            return self.busy()
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(400, "send the files as multipart/form-data (e.g. curl -F file=@video.mp4)")
        parser = MultiPartParser(request.headers, _limited(request.stream(), limit),
                                 max_files=MAX_FILES_PER_JOB, max_fields=MAX_FILES_PER_JOB)
        try:
            form = await parser.parse()
        except UploadTooLarge:
            return self.too_large()
        except MultiPartException as err:
            return _error(400, f"malformed upload: {err.message}")
        job_id = new_id()
        folder = self.uploads / job_id
        try:
            files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
            if not files:
                return _error(400, "no file in the upload: send one or more files as multipart form fields")
            folder.mkdir()
            inputs, rejected = [], []
            for index, upload in enumerate(files):
                stored = new_id()
                size = await run_in_threadpool(_save, upload, folder / stored)
                kind = await run_in_threadpool(sniff_media, folder / stored) if size else None
                name = _client_name(upload, index)
                if kind is None:
                    rejected.append(name)
                inputs.append(Upload(stored=stored, name=name, size=size, kind=kind or ""))
        finally:
            await form.close()
        if rejected:
            remove_uploads(folder)
            return _error(415, "not a video or an image (judged by content, not by name): "
                               f"{', '.join(rejected)}; upload video or image files", rejected=rejected)
        try:
            submitted = await run_in_threadpool(self.store.submit, job_id, inputs, self.settings.max_queued)
        except BrokerUnavailable:
            remove_uploads(folder)
            raise
        if not submitted:
            remove_uploads(folder)
            return self.busy()
        self.pool.notify()
        log.info("job %s queued: %d file(s)", job_id, len(inputs), extra={"job": job_id, "inputs": len(inputs)})
        url = f"/api/scans/{job_id}"
        return JSONResponse({"id": job_id, "state": "queued", "url": url, "report": f"{url}/report"},
                            status_code=202, headers={"Location": url})

    def _job(self, request: Request) -> Job | None:
        job_id = request.path_params["job_id"]
        return self.store.get(job_id) if _JOB_ID.fullmatch(job_id) else None

    def get_scan(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "no such job")
        document = job.document
        if document is not None and request.query_params.get("thumbnails") not in ("1", "true", "yes"):
            document = _without_thumbnails(document)
        return JSONResponse({
            "id": job.id,
            "state": job.state,
            "attempts": job.attempts,
            "created": _iso(job.created),
            "started": _iso(job.started),
            "finished": _iso(job.finished),
            "error": job.error,
            "inputs": [{"name": u.name, "size": u.size, "kind": u.kind} for u in job.inputs],
            "report": f"/api/scans/{job.id}/report",
            "document": document,
        })

    def get_report(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "no such job")
        if job.state != DONE or job.document is None:
            reason = job.error if job.error else "the scan has not finished yet"
            return _error(409, f"no report: job is {job.state} ({reason})", state=job.state)
        return HTMLResponse(html_report(job.document))

    def healthz(self, request: Request) -> Response:
        """Liveness: the process answers (in broker mode even while Redis is down)."""
        try:
            workers = self.workers_expected()
        except BrokerUnavailable:
            workers = 0
        return JSONResponse({"status": "ok", "version": __version__, "mode": self.mode, "workers": workers,
                             "workers_ready": self.pool.ready_count if self.pool else 0})

    @property
    def mode(self) -> str:
        return "sqlite" if self.settings.broker is None else "broker"

    def readyz(self, request: Request) -> Response:
        """Readiness: at least one worker has its model loaded (else 503: send no traffic yet)."""
        ready = self.pool.ready_count if self.pool else 0
        return JSONResponse({"ready": ready >= 1, "workers_ready": ready}, status_code=200 if ready >= 1 else 503)

    def metrics_text(self, request: Request) -> Response:
        return Response(exposition(self.metrics), media_type=METRICS_CONTENT_TYPE)

    def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    def page(self, request: Request) -> Response:
        html = resources.files("facesleuth.serve").joinpath("static/index.html").read_text(encoding="utf-8")
        limits = "".join(f'<p class="limits"><strong>Limits of this model:</strong> {escape(limit)}</p>'
                         for limit in self.settings.model_limits)
        html = html.replace(LIMITS_PLACEHOLDER, limits)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API (``openapi.yaml`` beside this module), this version's."""
    text = resources.files("facesleuth.serve").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    document["info"]["version"] = __version__
    return document


def _unavailable(request: Request, err: Exception) -> Response:
    log.warning("%s", err)
    return _error(503, f"{err}; retry later", headers={"Retry-After": "5"})


class RequestLog:
    """ASGI middleware: one log line per request (method, path, status, seconds)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            log.info("%s %s %d %.3f s", scope["method"], scope["path"], status, seconds,
                     extra={"event": "request", "method": scope["method"], "path": scope["path"], "status": status,
                            "seconds": round(seconds, 4)})


def create_app(settings: ServeSettings) -> Starlette:
    """The ASGI application; the worker pool (or the broker's reaper) runs while the app's lifespan does."""
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(service.start)
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop)

    routes = [
        Route("/", service.page, methods=["GET"]),
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/readyz", service.readyz, methods=["GET"]),
        Route("/metrics", service.metrics_text, methods=["GET"]),
        Route("/openapi.json", service.openapi, methods=["GET"]),
        Route("/api/scans", service.create_scan, methods=["POST"]),
        Route("/api/scans/{job_id}", service.get_scan, methods=["GET"]),
        Route("/api/scans/{job_id}/report", service.get_report, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={BrokerUnavailable: _unavailable})
    app.state.service = service
    app.add_middleware(BearerAuth, token=settings.token)
    app.add_middleware(RequestLog)  # outermost: refused requests are logged too
    return app
