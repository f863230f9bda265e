"""Jobs and their results in SQLite (WAL), shared by the web process and the worker processes.

A job moves ``queued -> running -> done | failed``. Workers claim the oldest queued job in one
write transaction, so two workers never take the same job, and write the result only while
they still hold it (``state = 'running' AND worker = their pid``), so a worker that lost its
job (the server was restarted meanwhile) can never finish it a second time. Every claim and
every finish is logged in ``events``: how a job ran can be checked afterwards, and the tests
count finishes per job.

A job found ``running`` when the server starts was interrupted (the server or its worker was
killed mid-scan): it is queued again, once. ``attempts`` counts claims; a job interrupted
after its second claim is marked failed with a message instead of being tried forever (an
input that kills its worker every time must not take the service down in a loop).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)
MAX_ATTEMPTS = 2  # a job killed mid-scan runs again once

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT,
    inputs TEXT NOT NULL,
    document TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    event TEXT NOT NULL,
    worker INTEGER,
    at REAL NOT NULL,
    detail TEXT
);
"""


@dataclass(frozen=True)
class Upload:
    """One uploaded file: ``stored`` is its random name in the job's upload folder; ``name`` is
    the client's file name, kept as metadata only (never joined to a path)."""

    stored: str
    name: str
    size: int
    kind: str  # video | image, sniffed from the content

    def to_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "name": self.name, "size": self.size, "kind": self.kind}


@dataclass
class Job:
    id: str
    state: str
    attempts: int
    created: float
    started: float | None
    finished: float | None
    error: str | None
    inputs: list[Upload]
    document: dict[str, Any] | None


def new_id() -> str:
    """A random id (128 bits, hex): unguessable, and safe as a file name."""
    return uuid.uuid4().hex


class JobStore:
    """The job database at ``path``. Each call opens its own connection, so one store can be
    used from many threads and a copy of it from other processes."""

    def __init__(self, path: str | Path, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint, never corrupt
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE): no two writers interleave."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _log(db: sqlite3.Connection, job: str, event: str, worker: int | None = None, detail: str | None = None) -> None:
        db.execute("INSERT INTO events (job, event, worker, at, detail) VALUES (?, ?, ?, ?, ?)",
                   (job, event, worker, time.time(), detail))

    # ------------------------------------------------------------------ web process

    def submit(self, job_id: str, inputs: list[Upload], max_queued: int) -> bool:
        """Queue a job unless ``max_queued`` jobs are already waiting (then False, nothing stored)."""
        with self._write() as db:
            if db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (QUEUED,)).fetchone()[0] >= max_queued:
                return False
            db.execute("INSERT INTO jobs (id, state, created, inputs) VALUES (?, ?, ?, ?)",
                       (job_id, QUEUED, time.time(), json.dumps([u.to_dict() for u in inputs])))
            self._log(db, job_id, "queued")
        return True

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        found = {state: count for state, count in rows}
        return {state: int(found.get(state, 0)) for state in STATES}

    def mean_seconds(self, last: int = 20) -> float | None:
        """Mean wall time of the last ``last`` finished jobs (for Retry-After); None before any."""
        with self._connect() as db:
            row = db.execute(
                "SELECT AVG(finished - started) FROM (SELECT finished, started FROM jobs WHERE state = ? "
                "ORDER BY finished DESC LIMIT ?)", (DONE, last)).fetchone()
        return None if row[0] is None else float(row[0])

    def job_ids(self, *states: str) -> set[str]:
        """Ids of the jobs in ``states`` (all jobs when none is given)."""
        with self._connect() as db:
            rows = db.execute("SELECT id, state FROM jobs").fetchall()
        return {job_id for job_id, state in rows if not states or state in states}

    def recover(self, workers: set[int] | None = None, counted: bool = True) -> list[str]:
        """Queue again the running jobs (of ``workers``, or all at startup); fail those that ran twice.

        ``counted=False`` (a graceful stop interrupted them) gives the attempt back.
        Returns the ids put back in the queue.
        """
        requeued = []
        with self._write() as db:
            rows = db.execute("SELECT id, attempts, worker FROM jobs WHERE state = ?", (RUNNING,)).fetchall()
            for job_id, attempts, worker in rows:
                if workers is not None and worker not in workers:
                    continue
                if not counted:
                    attempts -= 1
                if attempts >= MAX_ATTEMPTS:
                    message = (f"interrupted {attempts} times while scanning (server or worker stopped); "
                               "not tried again: upload the files again, or scan them with `facesleuth scan`")
                    db.execute("UPDATE jobs SET state = ?, attempts = ?, worker = NULL, finished = ?, error = ? "
                               "WHERE id = ?", (FAILED, attempts, time.time(), message, job_id))
                    self._log(db, job_id, "failed", worker, message)
                else:
                    db.execute("UPDATE jobs SET state = ?, attempts = ?, worker = NULL, started = NULL WHERE id = ?",
                               (QUEUED, attempts, job_id))
                    self._log(db, job_id, "requeued", worker)
                    requeued.append(job_id)
        return requeued

    # ------------------------------------------------------------------ workers

    def claim(self, worker: int) -> Job | None:
        """Take the oldest queued job for ``worker`` (a pid); None when the queue is empty."""
        with self._write() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = ? ORDER BY seq LIMIT 1", (QUEUED,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = ?, attempts = attempts + 1, worker = ?, started = ? WHERE id = ?",
                       (RUNNING, worker, time.time(), row[0]))
            self._log(db, row[0], "claimed", worker)
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (row[0],)).fetchone()
        return _job(job)

    def finish(self, job_id: str, worker: int, document: dict[str, Any] | None, error: str | None = None) -> bool:
        """Store the outcome if ``worker`` still holds the job; False when it no longer does."""
        state = DONE if error is None else FAILED
        with self._write() as db:
            updated = db.execute(
                "UPDATE jobs SET state = ?, finished = ?, document = ?, error = ?, worker = NULL "
                "WHERE id = ? AND state = ? AND worker = ?",
                (state, time.time(), None if document is None else json.dumps(document, allow_nan=False), error,
                 job_id, RUNNING, worker),
            ).rowcount
            if updated:
                self._log(db, job_id, "finished" if error is None else "failed", worker, error)
        return bool(updated)

    def events(self, job_id: str | None = None) -> list[dict[str, Any]]:
        with self._connect() as db:
            query, args = "SELECT * FROM events ORDER BY seq", ()
            if job_id is not None:
                query, args = "SELECT * FROM events WHERE job = ? ORDER BY seq", (job_id,)
            return [dict(row) for row in db.execute(query, args)]


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], state=row["state"], attempts=int(row["attempts"]), created=row["created"],
        started=row["started"], finished=row["finished"], error=row["error"],
        inputs=[Upload(**item) for item in json.loads(row["inputs"])],
        document=None if row["document"] is None else json.loads(row["document"]),
    )
