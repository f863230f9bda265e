"""facesleuth.train.checkpoint: atomic checkpoint files, readable without the trainer."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from facesleuth.train.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {"model_state": {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, "epoch": 3,
             "val_loss": 0.25, "run": {"model": "resnet50", "input_size": 64}}
    path = save_checkpoint(state, tmp_path / "run" / "best.pt")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model_state"]["w"], state["model_state"]["w"])
    assert {k: loaded[k] for k in ("epoch", "val_loss", "run")} == {k: state[k] for k in ("epoch", "val_loss", "run")}
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["best.pt"]


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises for a lambda
        save_checkpoint({"epoch": 2, "unpicklable": lambda: None}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_truncated_checkpoint_is_named_in_the_error(tmp_path):
    path = save_checkpoint({"w": torch.ones(1000)}, tmp_path / "best.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RuntimeError, match="cannot read checkpoint .*best.pt"):
        load_checkpoint(path)


def test_prediction_and_the_scanner_do_not_import_the_trainer():
    code = ("import sys, facesleuth.evaluate.predict, facesleuth.scan, facesleuth.cli.scan; "
            "print(sorted(m for m in ('facesleuth.train.loop', 'facesleuth.train.checkpoint') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # checkpoint is imported (so the check sees the real import graph), train is not
    assert loaded.strip() == "['facesleuth.train.checkpoint']"
