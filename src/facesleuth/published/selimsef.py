"""Checkpoints of selimsef/dfdc_deepfake_challenge, the winning entry of the Deepfake Detection Challenge:
seven DeepFakeClassifier models on an EfficientNet-B7 (noisy student) encoder, averaged by its
predict_submission.sh.

The network is timm's ``tf_efficientnet_b7`` (the architecture of ``tf_efficientnet_b7_ns``; "ns" names
the pretrained weights only) with the publisher's pooling and one-logit head. Layout and preprocessing:
docs/weights.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from facesleuth.published.polimi import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_renamed,
    read_checkpoint,
    unwrap,
)

REPOSITORY = "https://github.com/selimsef/dfdc_deepfake_challenge"
COMMIT = "89c6290490bac96b29193a4061b3db9dd3933e36"
RELEASE = f"{REPOSITORY}/releases/download/0.0.1/"
B7_FEATURES = 2560


class DeepFakeClassifier(nn.Module):
    """training/zoo/classifiers.py's DeepFakeClassifier("tf_efficientnet_b7_ns"): the encoder's
    ``forward_features``, average pooling, dropout (0 by default) and a linear logit ``fc``."""

    def __init__(self):
        super().__init__()
        import timm  # on use: it imports torchvision, which a scan from an exported model never needs

        self.encoder = timm.create_model("tf_efficientnet_b7", pretrained=False, num_classes=0)
        self.fc = nn.Linear(B7_FEATURES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder.forward_features(x).mean(dim=(2, 3)))

    def publisher_names(self) -> dict[str, str]:
        # the same timm modules under the same attribute names: the keys are the publisher's
        return {key: key for key in self.state_dict()}

    @staticmethod
    def ignored(key: str) -> bool:
        # the encoder keeps timm's ImageNet classifier; DeepFakeClassifier.forward never runs it
        return key.startswith("encoder.classifier.")


LIMITS = ("one of the seven models the DFDC winner averaged; its crop is approximated: a square of 5/3 of the "
          "box's longer side, where the authors grew the box by a third on each side keeping its aspect; its "
          "threshold is the sigmoid's 0.5, chosen on no data")

# download_weights.sh and predict_submission.sh (the seven models of the winning submission)
_FILES = [
    "final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36",
    "final_555_DeepFakeClassifier_tf_efficientnet_b7_ns_0_19",
    "final_777_DeepFakeClassifier_tf_efficientnet_b7_ns_0_29",
    "final_777_DeepFakeClassifier_tf_efficientnet_b7_ns_0_31",
    "final_888_DeepFakeClassifier_tf_efficientnet_b7_ns_0_37",
    "final_888_DeepFakeClassifier_tf_efficientnet_b7_ns_0_40",
    "final_999_DeepFakeClassifier_tf_efficientnet_b7_ns_0_23",
]

VARIANTS: dict[str, dict] = {
    name: {
        "architecture": "DeepFakeClassifier(tf_efficientnet_b7_ns)",
        "file": name,
        "url": RELEASE + name,
        "sha256": None,  # the publisher gives none
        "licence": "MIT (the repository's licence; the weights are released with it)",
        "training_data": "DFDC training set (the challenge's public training videos, split into folds by "
                         "preprocessing/generate_folds.py); the number after 'final_' is the training seed",
        "limits": LIMITS,
        "layout_source": f"{REPOSITORY}/blob/{COMMIT}/training/zoo/classifiers.py, predict_folder.py, "
                          "kernel_utils.py, training/pipelines/train_classifier.py, download_weights.sh",
    }
    for name in _FILES
}

# predict_folder.py (input_size = 380) and kernel_utils.py: MTCNN box grown by a third of its width and
# height on each side, isotropically resized to 380 and zero-padded to the centre, /255, ImageNet
# statistics, RGB frames (VideoReader converts BGR to RGB), sigmoid of the logit = P(fake)
PREPROCESSING = {
    "input_size": 380,
    "resize": "isotropic_pad",
    "face_scale": 5 / 3,
    "value_scale": 1 / 255,
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "colour_order": "RGB",
    "output": "fake_logit",
}

LAYOUT = ("selimsef dfdc_deepfake_challenge checkpoint: {'epoch', 'state_dict', 'bce_best'} as "
          "train_classifier.py saves it (or a bare state dict), the state dict of DeepFakeClassifier"
          "(tf_efficientnet_b7_ns) with keys such as 'module.encoder.conv_stem.weight', 'module.fc.weight' "
          "('module.' from DataParallel, optional)")


def _without_data_parallel_prefix(state: object) -> object:
    """As predict_folder.py does: drop a leading 'module.' from every key."""
    if not isinstance(state, Mapping):
        return state
    return {re.sub(r"^module\.", "", key) if isinstance(key, str) else key: value for key, value in state.items()}


def load(variant: str, checkpoint: str | Path) -> tuple[nn.Module, dict]:
    """The DeepFakeClassifier of ``variant`` (a key of VARIANTS) with the weights in ``checkpoint``, in
    eval mode on the CPU, and its preprocessing; its forward returns N x 1 fake logits."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown selimsef variant {variant!r}; known: {', '.join(VARIANTS)}")
    model = DeepFakeClassifier()
    state = _without_data_parallel_prefix(unwrap(read_checkpoint(checkpoint), "state_dict"))
    load_renamed(model, state, model.publisher_names(), LAYOUT, checkpoint, model.ignored)
    return model, dict(PREPROCESSING)
