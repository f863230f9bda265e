"""Checkpoints of SCLBD/DeepfakeBench: its Xception and EfficientNet-B4 detectors.

A DeepfakeBench checkpoint is the state dict of a whole detector (``trainer.save_ckpt``:
``torch.save(self.model.state_dict())``), so the network's keys sit under ``backbone.``, with a
further ``module.`` when it was trained with DistributedDataParallel. Both detectors return two
logits; the softmax's index 1 is the probability of fake (``label_dict``: real 0, fake 1). Layout and
preprocessing: docs/weights.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from facesleuth.published.polimi import (
    B4_FEATURES,
    CadeneXception,
    EfficientNetB4Trunk,
    load_renamed,
    read_checkpoint,
)

REPOSITORY = "https://github.com/SCLBD/DeepfakeBench"
COMMIT = "8a4a7bf5e966c5c5618bc27d1719c3683eae9a04"
RELEASE = f"{REPOSITORY}/releases/download/v1.0.1/"
LICENCE = "CC BY-NC 4.0 (the repository's licence; non-commercial use only)"


class DeepfakeBenchXception(nn.Module):
    """detectors/xception_detector.py's XceptionDetector: networks/xception.py's Xception (Cadene's
    network with a two-logit ``last_linear``) in ``mode: original``."""

    def __init__(self):
        super().__init__()
        self.xception = CadeneXception(outputs=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.xception(x)

    def publisher_names(self) -> dict[str, str]:
        return {f"xception.{own}": theirs for own, theirs in self.xception.cadene_names("backbone.").items()}

    @staticmethod
    def ignored(key: str) -> bool:
        # networks/xception.py always builds adjust_channel; mode 'original' never runs it
        return key.startswith("backbone.adjust_channel.")


class DeepfakeBenchEfficientNetB4(nn.Module):
    """detectors/efficientnetb4_detector.py's EfficientDetector: networks/efficientnetb4.py's
    efficientnet_pytorch B4 whose stem is replaced by an unpadded ``nn.Conv2d`` and whose ``_fc`` is an
    identity, then average pooling and a two-logit ``last_layer`` (``mode: Original``, no dropout)."""

    def __init__(self):
        super().__init__()
        self.trunk = EfficientNetB4Trunk(padded_stem=False)
        self.last_layer = nn.Linear(B4_FEATURES, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.trunk(x))

    def publisher_names(self) -> dict[str, str]:
        names = {f"trunk.{own}": theirs
                 for own, theirs in self.trunk.efficientnet_pytorch_names("backbone.efficientnet.").items()}
        names.update({f"last_layer.{leaf}": f"backbone.last_layer.{leaf}" for leaf in ("weight", "bias")})
        return names

    @staticmethod
    def ignored(key: str) -> bool:
        return False


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "xception": DeepfakeBenchXception,
    "efficientnetb4": DeepfakeBenchEfficientNetB4,
}

_ESTABLISHED_BY = {
    "xception": "training/detectors/xception_detector.py, training/networks/xception.py, "
                "training/config/detector/xception.yaml",
    "efficientnetb4": "training/detectors/efficientnetb4_detector.py, training/networks/efficientnetb4.py, "
                      "training/config/detector/efficientnetb4.yaml",
}
_COMMON_FILES = ("training/trainer/trainer.py (save_ckpt), training/test.py, training/dataset/abstract_dataset.py, "
                 "preprocessing/preprocess.py")

LIMITS = ("DeepfakeBench weights are licensed for non-commercial use only (CC BY-NC 4.0); its threshold is the "
          "softmax's 0.5, chosen on no data")

VARIANTS: dict[str, dict] = {
    name: {
        "architecture": architecture,
        "file": file_name,
        "url": RELEASE + file_name,
        "sha256": None,  # the publisher gives none
        "licence": LICENCE,
        "training_data": "FaceForensics++ c23 under the benchmark's protocol (its config's train_dataset; "
                         f"at this commit {config_note})",
        "limits": LIMITS,
        "layout_source": f"{REPOSITORY}/blob/{COMMIT}/{_ESTABLISHED_BY[architecture]}, {_COMMON_FILES}",
    }
    for name, architecture, file_name, config_note in (
        ("xception", "xception", "xception_best.pth", "xception.yaml names FaceForensics++"),
        ("efficientnetb4", "efficientnetb4", "effnb4_best.pth",
         "efficientnetb4.yaml names FF-NT; the release does not say which was used"),
    )
}

# config/detector/*.yaml: resolution 256, mean = std = 0.5; abstract_dataset.py reads the crops as RGB
# and resizes them to the resolution; preprocessing/preprocess.py aligns each face by a similarity
# transform of five landmarks onto the 112-px ArcFace template (x + 8), with margin scale 1.3
PREPROCESSING = {
    "input_size": 256,
    "resize": "similarity_align",
    "face_scale": 1.3,
    "value_scale": 1 / 255,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "colour_order": "RGB",
    "output": "two_logits_fake_index",
    "fake_index": 1,
}

LAYOUT = ("DeepfakeBench {architecture} checkpoint: the detector's bare state dict as trainer.save_ckpt "
          "writes it, keys such as {example} ('module.' before them when trained with DDP)")
_EXAMPLE_KEYS = {
    "xception": "'backbone.conv1.weight', 'backbone.last_linear.weight'",
    "efficientnetb4": "'backbone.efficientnet._conv_stem.weight', 'backbone.last_layer.weight'",
}


def _without_ddp_prefix(state: object) -> object:
    if isinstance(state, Mapping) and state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {re.sub(r"^module\.", "", key): value for key, value in state.items()}
    return state


def load(variant: str, checkpoint: str | Path) -> tuple[nn.Module, dict]:
    """The detector of ``variant`` (a key of VARIANTS) with the weights in ``checkpoint``, in eval mode on
    the CPU, and its preprocessing; its forward returns N x 2 logits (index 1: fake)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown DeepfakeBench variant {variant!r}; known: {', '.join(VARIANTS)}")
    architecture = VARIANTS[variant]["architecture"]
    model = ARCHITECTURES[architecture]()
    layout = LAYOUT.format(architecture=architecture, example=_EXAMPLE_KEYS[architecture])
    state = _without_ddp_prefix(read_checkpoint(checkpoint))
    load_renamed(model, state, model.publisher_names(), layout, checkpoint, model.ignored)
    return model, dict(PREPROCESSING)

