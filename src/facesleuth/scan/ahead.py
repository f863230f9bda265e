"""Classifying a video's faces in a second thread while its later frames are still being detected.

A scan detects faces batch by batch and only then knows, from the tracks, which faces it scores.
On a CPU with a core to spare, :class:`ScoresAhead` scores each batch's faces as soon as they
are cut, so that by the end of detection most of the classification is done; the scanner then
scores only what is left. Faces the tracks drop are scored for nothing, on the core that would
otherwise wait; those still queued when detection ends are dropped unscored.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Hashable, Mapping

import numpy as np

log = logging.getLogger(__name__)

# Faces scored per pass at most: a pass in progress when detection ends is waited for, so it stays short.
AHEAD_BATCH = 8
# Niceness added to the scoring thread: on a busy core the decoding thread, which detection waits
# for, goes first; the scoring thread takes what is left (benchmarks/README.md, scan latency).
AHEAD_NICENESS = 10

# A face key and its crop, as the extraction hands them over (facesleuth.extract.flows.CropsCallback).
Face = tuple[Hashable, np.ndarray]


class ScoresAhead:
    """Scores of faces handed over with :meth:`submit`, computed in a background thread.

    ``score`` maps a list of crops to an array with one row per crop (the scanner's: each
    member's fake probability); ``prepare`` turns a handed-over crop into what ``score`` takes
    (the scanner's: the JPEG round trip the stored faces go through). Each pass takes every face
    queued so far, up to ``batch_size`` (at most AHEAD_BATCH). :meth:`finish` stops the thread
    after the pass in progress and returns the scores computed, by key. A failure in the thread
    is logged and ends it; the caller scores what is missing itself, where the same failure is
    raised in its own thread.
    """

    def __init__(self, score: Callable[[list[np.ndarray]], np.ndarray], prepare: Callable[[np.ndarray], np.ndarray],
                 batch_size: int = 64):
        self._score, self._prepare = score, prepare
        self._batch_size = max(1, min(int(batch_size), AHEAD_BATCH))
        self._queue: queue.SimpleQueue[Face | None] = queue.SimpleQueue()
        self._scores: dict[Hashable, np.ndarray] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facesleuth-scores-ahead", daemon=True)
        self._thread.start()

    def submit(self, faces: list[Face]) -> None:
        for face in faces:
            self._queue.put(face)

    def finish(self) -> Mapping[Hashable, np.ndarray]:
        """Stop after the batch in progress; the scores computed so far, by key."""
        if self._thread.is_alive():
            self._stop.set()
            self._queue.put(None)
            self._thread.join()
        return self._scores

    def _next_batch(self) -> list[Face]:
        """The faces queued so far (waiting for the first), none once stopped."""
        first = self._queue.get()
        if first is None or self._stop.is_set():
            return []
        batch = [first]
        while len(batch) < self._batch_size:
            try:
                face = self._queue.get_nowait()
            except queue.Empty:
                break
            if face is None:
                return []
            batch.append(face)
        return batch

    def _run(self) -> None:
        lower_this_thread_priority(AHEAD_NICENESS)
        try:
            while batch := self._next_batch():
                scores = np.asarray(self._score([self._prepare(crop) for _, crop in batch]))
                self._scores.update(zip((key for key, _ in batch), scores))
        except Exception as err:  # noqa: BLE001 (the caller scores the rest and meets it there)
            log.debug("scoring ahead stopped: %s: %s", type(err).__name__, err, exc_info=True)


def lower_this_thread_priority(niceness: int) -> None:
    """Add ``niceness`` to the calling thread's alone (Linux, where a thread has its own
    priority); elsewhere, or where refused, leave it as it is."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere PRIO_PROCESS takes a process id, not a thread's
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + int(niceness))
    except OSError as err:
        log.debug("thread priority left as it is: %s", err)
