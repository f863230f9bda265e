"""Training on real face crops, on CPU: outputs, resume, NaN stop and NaN validation, determinism."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch
import yaml
from face_crops import write_split
from train_settings import tiny_run_settings

from facesleuth.train import models
from facesleuth.train import loop as train_module
from facesleuth.train.loop import (
    CHOSEN_BY_LAST_EPOCH,
    CHOSEN_BY_VAL_LOSS,
    HISTORY_COLUMNS,
    NonFiniteLossError,
    load_checkpoint,
    train_run,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
settings = tiny_run_settings


@pytest.fixture(scope="module")
def split(samples, tmp_path_factory):
    # 6 train videos x 4 faces = 24 train faces (3 batches of 8), 4 val videos = 16 val faces
    return write_split(tmp_path_factory.mktemp("split") / "train.parquet", samples)


def losses(history):
    return [(row["epoch"], row["train_loss"], row["val_loss"]) for row in history]


def test_two_epochs_write_the_run_folder(split, tmp_path):
    # the workflow passes the frame policy and the crop settings the training faces were extracted
    # with (rule train's params)
    frames = {"frame_policy": "nearest_reference", "max_frame_offset": 2}
    face_crops = {"detect_max_side": 192, "thresholds": [0.6, 0.7, 0.7], "min_detection_size": 20,
                  "min_probability": 0.9, "min_face_size": 40, "margin": 12, "jpeg_quality": 95}
    summary = train_run(split, tmp_path, {**settings(), "frames": frames, "face_crops": face_crops})
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2]
    assert (history[["train_loss", "val_loss", "seconds", "images_per_s"]] > 0).all().all()
    assert [row["train_images"] for row in summary["history"]] == [24, 24]
    assert [row["val_images"] for row in summary["history"]] == [16, 16]

    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == int(history.loc[history["val_loss"].idxmin(), "epoch"]) == summary["best_epoch"]
    assert best["val_loss"] == pytest.approx(history["val_loss"].min())
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2 and len(last["history"]) == 2
    assert {"model_state", "optimizer_state", "scaler_state", "rng", "fingerprint", "best"} <= set(last)

    run = yaml.safe_load((tmp_path / "run.yaml").read_text())
    assert run["model"] == "mobilenetv3_small_050" and run["timm_name"] == "mobilenetv3_small_050"
    assert (run["setup"], run["input_size"], run["precision"], run["batch_size"]) == ("default", 64, "fp32", 8)
    assert (run["epochs"], run["lr"], run["dropout"], run["seed"]) == (2, 0.001, 0.2, 7)
    assert run["trained_on"] == ["samples"] and run["preprocessing"]["padding"] == "zeros, centred"
    assert run["frames"] == frames
    assert run["face_crops"] == face_crops
    assert best["run"] == run


def test_same_seed_same_history_other_seed_differs(split, tmp_path):
    first = train_run(split, tmp_path / "a", settings(num_workers=0))
    again = train_run(split, tmp_path / "b", settings())
    other = train_run(split, tmp_path / "c", settings(seed=8))
    assert losses(first["history"]) == losses(again["history"])
    assert losses(first["history"]) != losses(other["history"])


def test_killed_run_resumes_to_the_same_end_state(split, tmp_path, monkeypatch):
    reference = train_run(split, tmp_path / "uninterrupted", settings(epochs=3))

    run_dir = tmp_path / "killed"
    real_evaluate = __import__("facesleuth.train.loop", fromlist=["Trainer"]).Trainer.evaluate

    def killed_in_epoch_3(self, loader, epoch, note="", **options):
        if epoch == 3:
            raise KeyboardInterrupt("killed")
        return real_evaluate(self, loader, epoch, note, **options)

    with monkeypatch.context() as patch:
        patch.setattr("facesleuth.train.loop.Trainer.evaluate", killed_in_epoch_3)
        with pytest.raises(KeyboardInterrupt):
            train_run(split, run_dir, settings(epochs=3))
    # Snakemake deletes the declared outputs before the rerun, not last.pt.
    for name in ("best.pt", "history.csv", "run.yaml"):
        (run_dir / name).unlink()
    resumed = train_run(split, run_dir, settings(epochs=3))

    assert resumed["resumed_from"] == 2
    assert losses(resumed["history"]) == losses(reference["history"])
    assert pd.read_csv(run_dir / "history.csv")["epoch"].tolist() == [1, 2, 3]
    for name in ("best.pt", "last.pt"):
        expected = load_checkpoint(tmp_path / "uninterrupted" / name)
        got = load_checkpoint(run_dir / name)
        assert got["epoch"] == expected["epoch"]
        for key, value in expected["model_state"].items():
            assert torch.equal(got["model_state"][key], value), (name, key)


def test_finished_run_rerun_rewrites_outputs_without_training(split, tmp_path):
    first = train_run(split, tmp_path, settings())
    for name in ("best.pt", "history.csv", "run.yaml"):
        (tmp_path / name).unlink()
    again = train_run(split, tmp_path, settings())
    assert again["resumed_from"] == 2 and losses(again["history"]) == losses(first["history"])
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == first["best_epoch"]
    assert (tmp_path / "run.yaml").exists() and len(pd.read_csv(tmp_path / "history.csv")) == 2


def test_changed_settings_start_fresh_and_say_so(split, tmp_path, caplog):
    train_run(split, tmp_path, settings(epochs=1))
    with caplog.at_level(logging.WARNING, logger="facesleuth.train.loop"):
        summary = train_run(split, tmp_path, settings(epochs=1, lr=0.0005))
    assert summary["resumed_from"] is None
    assert "starting fresh" in caplog.text and "training" in caplog.text


def test_more_epochs_continue_a_finished_run(split, tmp_path):
    train_run(split, tmp_path, settings(epochs=1))
    summary = train_run(split, tmp_path, settings(epochs=2))  # epochs are not part of the fingerprint
    assert summary["resumed_from"] == 1 and [r["epoch"] for r in summary["history"]] == [1, 2]


class _NaNAt:
    """Wraps a model: the ``at``-th training forward pass returns NaN logits."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self, *args, **kwargs):
        model = real_build_model(*args, **kwargs)
        inner = model.forward
        wrapper = self

        def forward(x):
            out = inner(x)
            if model.training:
                wrapper.calls += 1
                if wrapper.calls == wrapper.at:
                    return out * float("nan")
            return out

        model.forward = forward
        return model


real_build_model = models.build_model


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_checkpoint(split, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "build_model", _NaNAt(at=5))  # epoch 2 (3 steps each), step 2
    with pytest.raises(NonFiniteLossError, match=r"training loss became nan at epoch 2, step 2 of 3") as info:
        train_run(split, tmp_path, settings(epochs=3))
    assert "epoch 1" in str(info.value) and "last.pt" in str(info.value)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model_state"].values() if v.is_floating_point())
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [1]
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1


class _NaNValidationIn:
    """Wraps a model: every validation forward pass of the given epochs returns NaN logits.

    The epoch is counted from the model itself (each switch from training to evaluation starts
    the next epoch's validation), so the real ``Trainer.evaluate`` sees the NaN.
    """

    def __init__(self, *epochs: int):
        self.epochs, self.epoch, self.was_training = set(epochs), 0, True

    def __call__(self, *args, **kwargs):
        model = real_build_model(*args, **kwargs)
        inner = model.forward
        wrapper = self

        def forward(x):
            out = inner(x)
            if model.training:
                wrapper.was_training = True
                return out
            if wrapper.was_training:
                wrapper.epoch, wrapper.was_training = wrapper.epoch + 1, False
            return out * float("nan") if wrapper.epoch in wrapper.epochs else out

        model.forward = forward
        return model


@pytest.mark.parametrize("nan_epochs", [(2,), (1, 2)])
def test_nan_validation_loss_is_recorded_never_best_and_training_goes_on(split, tmp_path, monkeypatch, caplog, nan_epochs):
    monkeypatch.setattr(train_module, "build_model", _NaNValidationIn(*nan_epochs))
    with caplog.at_level(logging.WARNING, logger="facesleuth.train.loop"):
        summary = train_run(split, tmp_path, settings(epochs=3))

    assert f"epoch {nan_epochs[0]}: validation loss is nan" in caplog.text
    assert "nan" in (tmp_path / "history.csv").read_text()  # written as nan, not a blank cell
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history.loc[history["epoch"].isin(nan_epochs), "val_loss"].isna().all()
    finite = history.dropna(subset=["val_loss"])
    assert len(finite) == 3 - len(nan_epochs) and (finite["train_loss"] > 0).all()
    # The best epoch is the lowest of the finite validation losses (pandas skips NaN on its own).
    expected_best = int(finite.loc[finite["val_loss"].idxmin(), "epoch"])
    assert expected_best not in nan_epochs
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == summary["best_epoch"] == expected_best
    assert best["val_loss"] == pytest.approx(finite["val_loss"].min())
    assert best["chosen_by"] == summary["best_chosen_by"] == CHOSEN_BY_VAL_LOSS
    last = load_checkpoint(tmp_path / "last.pt")
    if expected_best != 3:
        assert not all(torch.equal(best["model_state"][k], v) for k, v in last["model_state"].items())


def test_no_finite_validation_loss_keeps_the_last_epoch_flagged(split, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(train_module, "build_model", _NaNValidationIn(1, 2))
    with caplog.at_level(logging.WARNING, logger="facesleuth.train.loop"):
        summary = train_run(split, tmp_path, settings(epochs=2))
    assert pd.read_csv(tmp_path / "history.csv")["val_loss"].isna().all()
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == summary["best_epoch"] == 2
    assert best["chosen_by"] == summary["best_chosen_by"] == CHOSEN_BY_LAST_EPOCH
    for key, value in last["model_state"].items():
        assert torch.equal(best["model_state"][key], value), key
    assert "no epoch so far has a finite validation loss" in caplog.text


def test_stop_on_nan_validation_stops_naming_epoch_and_batch(split, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "build_model", _NaNValidationIn(2))
    with pytest.raises(NonFiniteLossError, match=r"validation loss became nan at epoch 2, batch 1 of 2"):
        train_run(split, tmp_path, settings(epochs=3, stop_on_nan_validation=True))
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [1]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1


def test_max_steps_per_epoch_caps_steps(split, tmp_path):
    summary = train_run(split, tmp_path, settings(epochs=1, max_steps_per_epoch=2))
    assert summary["history"][0]["train_images"] == 16


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_on_cpu(split, tmp_path, precision):
    summary = train_run(split, tmp_path, settings(epochs=1, precision=precision, max_steps_per_epoch=1))
    assert summary["history"][0]["train_loss"] > 0
    assert yaml.safe_load((tmp_path / "run.yaml").read_text())["precision"] == precision


def test_workers_load_the_same_augmented_batches_as_the_main_process(split, tmp_path):
    main = train_run(split, tmp_path / "w0", settings(epochs=1, setup="coarse"))
    workers = train_run(split, tmp_path / "w2", settings(epochs=1, setup="coarse", num_workers=2))
    assert losses(main["history"]) == losses(workers["history"])


def test_missing_training_keys_are_named(split, tmp_path):
    broken = settings()
    del broken["training"]["lr"]
    with pytest.raises(ValueError, match=r"\['lr'\]"):
        train_run(split, tmp_path, broken)


def test_a_compiled_trainer_trains_the_model_as_the_eager_one_does(monkeypatch):
    """``Trainer(compile_model=True)`` (the GPU check's torch.compile step): the compiled forward
    trains the very parameters the eager trainer trains, to the same values. TorchDynamo traces
    here; AOTAutograd's eager backend stands in for Inductor, which needs a C++ or GPU compiler."""
    import copy

    from facesleuth.train.loop import Trainer

    compile_model = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compile_model(model, backend="aot_eager"))
    torch.manual_seed(0)
    model = models.build_model("resnet10t", dropout=0.0)
    images = torch.randint(0, 256, (4, 64, 64, 3), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 1, 0])
    eager = Trainer(copy.deepcopy(model), torch.device("cpu"), channels_last=True)
    compiled = Trainer(copy.deepcopy(model), torch.device("cpu"), channels_last=True, compile_model=True)
    assert compiled.forward_model is not compiled.model
    for _ in range(2):
        expected, got = eager.train_step(images, labels), compiled.train_step(images, labels)
        assert float(got) == pytest.approx(float(expected), rel=1e-5)
    before = dict(model.named_parameters())
    for (name, trained), (_, reference) in zip(compiled.module.named_parameters(), eager.module.named_parameters()):
        assert not torch.equal(trained, before[name]), f"{name} was not trained"
        torch.testing.assert_close(trained, reference, rtol=1e-4, atol=1e-6)
