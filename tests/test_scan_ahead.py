"""facesleuth.scan.ahead: faces scored in a background thread while detection goes on."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from facesleuth.scan import ahead as ahead_module
from facesleuth.scan.ahead import AHEAD_BATCH, ScoresAhead, lower_this_thread_priority


def crop_of(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, dtype=np.uint8)


def column_sums(crops: list[np.ndarray]) -> np.ndarray:
    """Two columns per crop, as an ensemble of two members: its sum and its mean."""
    return np.array([[float(c.sum()), float(c.mean())] for c in crops])


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the scoring thread did not keep up"
        time.sleep(0.005)


def test_every_face_handed_over_is_prepared_then_scored_under_its_key():
    calls = []

    def score(crops):
        calls.append(len(crops))
        return column_sums(crops)

    ahead = ScoresAhead(score, prepare=lambda crop: crop + 1, batch_size=64)
    faces = [((frame, face), crop_of(10 * frame + face)) for frame in range(5) for face in range(3)]
    for start in range(0, len(faces), 3):  # a detected batch at a time, as the extraction hands them over
        ahead.submit(faces[start:start + 3])
    wait_until(lambda: sum(calls) == len(faces))
    scores = ahead.finish()
    assert set(scores) == {key for key, _ in faces}
    for (frame, face), _ in faces:
        value = 10 * frame + face + 1  # prepared: +1 on every pixel of a 4x4x3 crop
        np.testing.assert_array_equal(scores[(frame, face)], [48.0 * value, float(value)])
    assert max(calls) <= AHEAD_BATCH  # a pass in progress when detection ends stays short


def test_finish_stops_the_thread_and_drops_what_is_still_queued():
    release = threading.Event()
    passes = []

    def slow_score(crops):
        passes.append(len(crops))
        release.wait(10)
        return column_sums(crops)

    ahead = ScoresAhead(slow_score, prepare=lambda crop: crop, batch_size=2)
    ahead.submit([((0, 0), crop_of(1))])
    wait_until(lambda: passes)  # the first pass has begun: the rest queues behind it
    ahead.submit([((1, 0), crop_of(2)), ((2, 0), crop_of(3)), ((3, 0), crop_of(4))])
    threading.Timer(0.05, release.set).start()
    scores = ahead.finish()  # waits for the pass in progress, drops the three queued
    assert list(scores) == [(0, 0)] and passes == [1]
    assert not any(thread.name == "facesleuth-scores-ahead" and thread.is_alive() for thread in threading.enumerate())
    assert ahead.finish() is scores  # finishing twice is harmless


def test_a_failing_scorer_ends_the_thread_quietly_and_keeps_earlier_scores():
    def score(crops):
        if any(c[0, 0, 0] == 7 for c in crops):
            raise RuntimeError("model broke")
        return column_sums(crops)

    ahead = ScoresAhead(score, prepare=lambda crop: crop, batch_size=1)
    ahead.submit([((0, 0), crop_of(1))])
    wait_until(lambda: (0, 0) in ahead._scores)
    ahead.submit([((1, 0), crop_of(7)), ((2, 0), crop_of(2))])
    wait_until(lambda: not ahead._thread.is_alive())
    assert set(ahead.finish()) == {(0, 0)}  # the caller scores the rest and meets the error itself


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own priority on Linux only")
def test_the_scoring_thread_alone_runs_at_a_lower_priority():
    main_before = os.getpriority(os.PRIO_PROCESS, 0)
    seen = {}

    def record(crops):
        thread = threading.get_native_id()
        seen["scoring"] = os.getpriority(os.PRIO_PROCESS, thread)
        return column_sums(crops)

    ahead = ScoresAhead(record, prepare=lambda crop: crop)
    ahead.submit([((0, 0), crop_of(1))])
    wait_until(lambda: "scoring" in seen)
    ahead.finish()
    assert seen["scoring"] == min(19, main_before + ahead_module.AHEAD_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, 0) == main_before  # the process and this thread keep theirs


def test_lowering_priority_elsewhere_changes_nothing(monkeypatch):
    monkeypatch.setattr(ahead_module.sys, "platform", "darwin")
    called = []
    monkeypatch.setattr(ahead_module.os, "setpriority", lambda *args: called.append(args), raising=False)
    lower_this_thread_priority(10)
    assert called == []
