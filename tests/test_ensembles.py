"""Ensembles of runs' video scores: one member equals the run, hand-worked two-run cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from facesleuth.evaluate import ensembles as E
from facesleuth import registry
from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA


def _videos(scores: dict[str, float], scored: dict[str, bool] | None = None) -> pd.DataFrame:
    ids = list(scores)
    return pd.DataFrame({
        "dataset": "testset", "video_id": ids, "label": [i % 2 for i in range(len(ids))],
        "tags": [[] for _ in ids], "status": "ok", "n_faces": 3,
        "score": [scores[v] for v in ids], "scored": [True if scored is None else scored[v] for v in ids],
    })[VIDEO_PREDICTIONS_SCHEMA.names]


@pytest.mark.parametrize("method", sorted(E.METHODS))
def test_an_ensemble_of_one_run_is_that_run(method):
    run = _videos({"a": 0.91, "b": 0.03, "c": 0.5, "d": 1e-9})
    alone = E.combine_videos([run], method)
    pd.testing.assert_frame_equal(alone.drop(columns="score"), run.drop(columns="score"))
    np.testing.assert_allclose(alone["score"], run["score"], rtol=1e-9)


def test_two_runs_by_hand():
    first = _videos({"a": 0.8, "b": 0.9, "c": 0.9})
    # the second lists the videos in another order: they are matched by id
    second = _videos({"c": 0.6, "a": 0.5, "b": 0.1})
    probability = E.combine_videos([first, second], "mean_probability").set_index("video_id")["score"]
    assert probability.tolist() == pytest.approx([0.65, 0.5, 0.75])
    logit = E.combine_videos([first, second], "mean_logit").set_index("video_id")["score"]
    # a: logits log 4 and 0 -> mean log 2 -> 2/3. b: log 9 and -log 9 -> 0 -> 1/2.
    # c: odds 9 and 1.5 -> geometric mean sqrt(13.5) -> sqrt(13.5) / (1 + sqrt(13.5))
    odds = math.sqrt(13.5)
    assert logit.tolist() == pytest.approx([2 / 3, 0.5, odds / (1 + odds)])


def test_scored_only_when_every_member_scored_and_mismatches_refused():
    first = _videos({"a": 0.5, "b": 0.7}, {"a": False, "b": True})
    second = _videos({"a": 0.5, "b": 0.2})
    combined = E.combine_videos([first, second], "mean_logit").set_index("video_id")
    assert not combined.loc["a", "scored"] and combined.loc["b", "scored"]
    assert combined.loc["a", "score"] == pytest.approx(0.5)  # both fell back to 0.5
    with pytest.raises(E.EnsembleError, match="other videos"):
        E.combine_videos([first, _videos({"a": 0.5, "z": 0.1})], "mean_probability")
    with pytest.raises(E.EnsembleError, match="unknown ensemble method"):
        E.combine_videos([first], "vote")


def test_methods_are_the_registrys():
    assert E.METHODS is registry.ENSEMBLE_METHODS


def test_spec_round_trip(tmp_path):
    runs = [tmp_path / "models" / "m1" / "none", tmp_path / "models" / "m2" / "grid"]
    folder = tmp_path / "ensembles" / "pair"
    folder.mkdir(parents=True)
    E.write_spec(folder, "pair", runs, "mean_logit")
    spec = E.read_spec(folder)
    assert spec["method"] == "mean_logit" and spec["name"] == "pair"
    assert spec["members"] == [run.resolve() for run in runs]
    assert "../../models/m1/none" in (folder / E.SPEC_FILE).read_text()  # relative: the tree can move
    assert E.is_ensemble_folder(folder) and not E.is_ensemble_folder(runs[0])
