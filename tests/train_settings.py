"""The resolved settings of a tiny training run on real face crops, shared by the training tests."""

from __future__ import annotations

import copy

TINY_RUN = {
    "model": "mobilenetv3_small_050",  # timm BatchNormAct2d layers, like six of the thesis's eight
    "setup": "default",
    "training": {
        "input_size": 64, "epochs": 2, "batch_size": 8, "precision": "fp32", "lr": 0.001, "dropout": 0.2,
        "pretrained": False, "weights": None, "num_workers": 0, "seed": 7, "device": "cpu",
        "channels_last": True, "max_steps_per_epoch": None, "gpus": 1,
    },
    "augmentations": {},
}


def tiny_run_settings(setup: str = "default", **training) -> dict:
    """:data:`TINY_RUN` with ``setup`` and the given ``training`` settings replaced."""
    out = copy.deepcopy(TINY_RUN)
    out["setup"] = setup
    out["training"].update(training)
    return out
