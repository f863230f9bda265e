"""The thesis's backbones (Table 2.1) and newer ones by config name, built through timm with a 2-class head.

Every model is a timm backbone that returns pooled features, followed by the head the thesis
describes (section 2.5): ``Dropout`` then ``Linear(num_features, 2)`` (class 1 = fake). The
same factory serves training and inference (:mod:`facesleuth.evaluate.predict` rebuilds a run's model
from its ``run.yaml`` without pretrained weights), so the two cannot drift apart.

Pretrained ImageNet weights come from timm (the Hugging Face hub) or from a local file
(``training.weights``). Without internet access the weights cannot be reached; the error then
says both ways out instead of hanging in download retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import torch
from torch import nn

from facesleuth.train.backbones import ModelSpec, resolve

log = logging.getLogger(__name__)

NUM_CLASSES = 2  # 0 real, 1 fake
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be loaded."""


class FaceClassifier(nn.Module):
    """timm backbone (pooled features) -> Dropout -> Linear(num_features, 2)."""

    def __init__(self, backbone: nn.Module, dropout: float, timm_name: str):
        super().__init__()
        self.backbone = backbone
        self.timm_name = timm_name
        # num_classes=0 leaves the pooled (pre-logits) features; some heads (MobileNetV3)
        # widen them beyond num_features, so ask the model.
        width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
        self.head = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(width, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def get_classifier(self) -> nn.Module:
        return self.head


def build_model(
    name: str, pretrained: bool = False, weights: str | os.PathLike | None = None, dropout: float = 0.2
) -> FaceClassifier:
    """The backbone ``name`` with the thesis's head: Dropout(``dropout``) + Linear(features, 2).

    ``pretrained``: load ImageNet weights, from ``weights`` (a folder holding
    ``<timm name>.safetensors|.pth`` or one file) when given, else through timm's hub download.
    Raises :class:`WeightsUnavailableError` naming both ways out when they cannot be loaded.
    """
    spec = resolve(name)
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout must be within [0, 1], got {dropout}")
    if not pretrained and weights:
        log.warning("training.weights is set but training.pretrained is false: the weights are not loaded")
    if pretrained:
        backbone = _pretrained_backbone(spec, weights)
    else:
        import timm  # heavy (seconds, hundreds of model definitions): only building a model needs it

        backbone = timm.create_model(spec.timm_name, pretrained=False, num_classes=0, **dict(spec.timm_kwargs))
    return FaceClassifier(backbone, dropout, spec.timm_name)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (Table 2.1 counts them with the new 2-class head)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------ pretrained weights


def _ways_out(spec: ModelSpec, looked_at: str) -> str:
    return (
        f"Pretrained ImageNet weights for {spec.name} ({spec.timm_name}) could not be loaded: {looked_at}. "
        f"Either put the weights file at <folder>/{spec.timm_name}.safetensors (or .pth) and set "
        f"training.weights: <folder> (or the file itself), or set training.pretrained: false to train "
        f"from random initialisation."
    )


def local_weights_file(spec: ModelSpec, weights: str | os.PathLike) -> Path:
    """The file ``weights`` names: itself, or ``<timm name>.<suffix>`` (or the architecture's name) in a folder."""
    path = Path(weights)
    if path.is_file():
        return path
    if path.is_dir():
        stems = [spec.timm_name, spec.timm_name.split(".")[0]]
        for stem in stems:
            for suffix in WEIGHT_SUFFIXES:
                candidate = path / f"{stem}{suffix}"
                if candidate.is_file():
                    return candidate
        looked_at = f"no {spec.timm_name}{{{','.join(WEIGHT_SUFFIXES)}}} in the folder {path}"
    else:
        looked_at = f"training.weights {path} does not exist"
    raise WeightsUnavailableError(_ways_out(spec, looked_at))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connect (quick check, instead of timm's minute of retries)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Let huggingface_hub answer from its local cache only (it reads this flag at request time)."""
    try:
        from huggingface_hub import constants  # timm's dependency, loaded with timm
    except ImportError:  # pragma: no cover - timm requires it
        yield
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _pretrained_backbone(spec: ModelSpec, weights: str | os.PathLike | None) -> nn.Module:
    import timm  # heavy (seconds, hundreds of model definitions): only building a model needs it

    if weights:
        path = local_weights_file(spec, weights)
        log.info("loading %s weights from %s", spec.timm_name, path)
        try:
            return timm.create_model(
                spec.timm_name, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(path)},
                **dict(spec.timm_kwargs),
            )
        except Exception as err:  # noqa: BLE001 - any failure here means the file is unusable
            raise WeightsUnavailableError(_ways_out(spec, f"{path} did not load ({type(err).__name__}: {err})")) from err
    reachable = _hub_reachable()
    where = "the Hugging Face hub" if reachable else "the local cache (the Hugging Face hub is not reachable)"
    log.info("loading %s ImageNet weights through timm from %s", spec.timm_name, where)
    try:
        with contextlib.nullcontext() if reachable else _hub_offline():
            return timm.create_model(spec.timm_name, pretrained=True, num_classes=0, **dict(spec.timm_kwargs))
    except Exception as err:  # noqa: BLE001 - network, cache and hub errors all end the same way
        raise WeightsUnavailableError(_ways_out(spec, f"not found in {where} ({type(err).__name__})")) from err
