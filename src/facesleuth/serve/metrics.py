"""``/metrics``: the service's state in Prometheus' text format (prometheus-client), read at each scrape.

The figures come from where the state lives (the SQLite job store, or Redis in broker mode), not
from counters in the API process, so they are right after a restart and with workers on other
machines:

- ``facesleuth_jobs{state}``: jobs by state (queued, running, done, failed);
- ``facesleuth_queue_depth``: jobs waiting for a worker (broker mode: task messages in Redis);
- ``facesleuth_scan_seconds``: histogram of the scan time of finished jobs;
- ``facesleuth_inputs_total{status}``: scanned inputs by status (ok, no_face, unreadable, ...);
- ``facesleuth_workers_alive``, ``facesleuth_workers_ready``: workers running, and those with the model loaded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from facesleuth.serve.broker import SCAN_SECONDS_BUCKETS, histogram_bucket
from facesleuth.serve.store import QUEUED, JobStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsSource(Protocol):
    def counts(self) -> dict[str, int]: ...
    def queue_depth(self) -> int: ...
    def scan_seconds(self) -> tuple[list[int], float]: ...
    def input_statuses(self) -> dict[str, int]: ...
    def worker_counts(self) -> tuple[int, int]: ...


class SQLiteMetrics:
    """The embedded mode's figures: the job database and the local worker pool."""

    def __init__(self, store: JobStore, pool: Any):
        self.store, self.pool = store, pool

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def queue_depth(self) -> int:
        return self.store.counts()[QUEUED]

    def _query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.store.path, timeout=self.store.timeout) as db:
            return db.execute(sql).fetchall()

    def scan_seconds(self) -> tuple[list[int], float]:
        counts = [0] * (len(SCAN_SECONDS_BUCKETS) + 1)
        rows = self._query("SELECT finished - started FROM jobs WHERE document IS NOT NULL AND started IS NOT NULL")
        for (seconds,) in rows:
            counts[histogram_bucket(seconds)] += 1
        return counts, float(sum(seconds for (seconds,) in rows))

    def input_statuses(self) -> dict[str, int]:
        rows = self._query("SELECT json_extract(result.value, '$.status'), COUNT(*) FROM jobs, "
                           "json_each(jobs.document, '$.results') AS result WHERE jobs.document IS NOT NULL "
                           "GROUP BY 1")
        return {status: int(count) for status, count in rows}

    def worker_counts(self) -> tuple[int, int]:
        alive = sum(1 for p in self.pool.processes if p is not None and p.is_alive())
        return alive, self.pool.ready_count


class _Collector(Collector):
    def __init__(self, source: MetricsSource):
        self.source = source

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily("facesleuth_jobs", "Jobs by state", labels=["state"])
        for state, count in self.source.counts().items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily("facesleuth_queue_depth", "Jobs waiting for a worker",
                                value=self.source.queue_depth())
        per_bucket, total = self.source.scan_seconds()
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, SCAN_SECONDS_BUCKETS), "+Inf"], per_bucket):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily("facesleuth_scan_seconds", "Scan time of finished jobs, seconds",
                                    buckets=buckets, sum_value=total)
        inputs = CounterMetricFamily("facesleuth_inputs", "Scanned inputs by status", labels=["status"])
        for status, count in sorted(self.source.input_statuses().items()):
            inputs.add_metric([status], count)
        yield inputs
        alive, ready = self.source.worker_counts()
        yield GaugeMetricFamily("facesleuth_workers_alive", "Worker processes running", value=alive)
        yield GaugeMetricFamily("facesleuth_workers_ready", "Workers with the model loaded", value=ready)


def exposition(source: MetricsSource) -> bytes:
    """The text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(source))
    return generate_latest(registry)
