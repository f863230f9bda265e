"""The run folder of an imported published detector: its checkpoint file and ``run.yaml``.

``run.yaml`` (:func:`run_spec`) says what the folder holds: ``kind: published``, the format and
variant, the architecture, the weights file (beside it), the ``preprocessing`` dict of the
authors (docs/weights.md), provenance (URL, published and actual sha256, licence, training
data, the publishing repository's file the layout was read from), where its threshold comes
from, and the ``limits`` every scan with it reports. :func:`load_published_run` rebuilds the
network from it for :func:`facesleuth.evaluate.inference.load_run`, wrapped in :class:`PublishedDetector`
so that it answers like a trained run: two logits, (real, fake).
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from facesleuth import __version__
from facesleuth.io import write_text_atomic
from facesleuth.published import APPROXIMATED_RESIZES, Format, check_preprocessing, formats, get_format
from facesleuth.samples import sha256_of

log = logging.getLogger(__name__)

RUN_FILE = "run.yaml"
KIND = "published"
#: the threshold of a detector imported without one: the decision boundary of its probability
DECISION_BOUNDARY = 0.5


class PublishedDetector(nn.Module):
    """A published network whose output becomes the logits (real, fake) of a trained run.

    softmax of the result, class 1, is the network's P(fake) exactly: a fake logit z becomes
    (0, z); a probability p of fake becomes (log(1 - p), log p); of real, (log p, log(1 - p)).
    """

    def __init__(self, network: nn.Module, output: str, fake_index: int | None = None):
        super().__init__()
        self.network, self.output, self.fake_index = network, output, fake_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x).float()
        if self.output == "two_logits_fake_index":
            if y.ndim != 2 or y.shape[1] != 2:
                raise ValueError(f"the network gave shape {tuple(y.shape)}, two_logits_fake_index needs N x 2")
            return y if self.fake_index == 1 else y.flip(1)
        if math.prod(y.shape[1:]) != 1:
            raise ValueError(f"the network gave shape {tuple(y.shape)}, {self.output} needs one value per face")
        y = y.reshape(-1)  # not len(y): an exported (traced) model would keep the batch size it was traced with
        if self.output == "fake_logit":
            return torch.stack([torch.zeros_like(y), y], dim=1)
        p_fake = y if self.output == "fake_probability" else 1 - y
        p_fake = p_fake.clamp(0.0, 1.0)
        return torch.stack([torch.log1p(-p_fake), torch.log(p_fake)], dim=1)


def identify_variant(fmt: Format, checkpoint: Path, digest: str) -> str:
    """The variant a checkpoint is: by its published sha256, else by its published file name."""
    for name, variant in fmt.variants.items():
        if variant.get("sha256") == digest:
            return name
    for name, variant in fmt.variants.items():
        if variant.get("file") == checkpoint.name:
            return name
    raise ValueError(f"{checkpoint} matches no published {fmt.name} checkpoint by sha256 or file name; "
                     f"name its variant with --variant ({', '.join(fmt.variants)})")


def run_spec(fmt: Format, variant: str, weights: str, digest: str, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """The ``run.yaml`` content of an imported detector."""
    published = fmt.variants[variant]
    limits = published.get("limits")
    limits = [limits] if isinstance(limits, str) else list(limits or [])
    approximation = None
    if preprocessing["resize"] in APPROXIMATED_RESIZES:
        applied, why = APPROXIMATED_RESIZES[preprocessing["resize"]]
        approximation = {"resize": preprocessing["resize"], "applied": applied, "why": why}
        limits.append(f"{fmt.name}/{variant}: preprocessing approximated: {why}")
    return {
        "kind": KIND,
        "model": fmt.name,
        "setup": variant,
        "format": fmt.name,
        "variant": variant,
        "architecture": published.get("architecture"),
        "weights": weights,
        "input_size": int(preprocessing["input_size"]),
        "preprocessing": preprocessing,
        # null, or how facesleuth's preprocessing departs from the authors' (APPROXIMATED_RESIZES)
        "preprocessing_approximation": approximation,
        "trained_on": [str(published.get("training_data") or "unknown")],
        "provenance": {
            "url": published.get("url"),
            "published_sha256": published.get("sha256"),
            "sha256": digest,
            "licence": published.get("licence"),
            "training_data": published.get("training_data"),
            "layout_source": published.get("layout_source"),
        },
        "threshold": {
            "value": DECISION_BOUNDARY,
            "source": "decision_boundary",
            "chosen_on": None,
            "note": "the network's own decision boundary (P(fake) = 0.5), chosen on no data; "
                    "validate the run on your data for an EER threshold",
        },
        "limits": limits,
        "facesleuth_version": __version__,
    }


def import_detector(format_name: str, source: str | Path, out: str | Path, variant: str | None = None) -> Path:
    """Make the run folder ``out`` from the checkpoint ``source``: a copy of the file and ``run.yaml``.

    The checkpoint is loaded first, so a file that does not match the format's layout fails here
    (ValueError naming the layout) and leaves no folder behind.
    """
    fmt, source, out = get_format(format_name), Path(source), Path(out)
    if not source.is_file():
        raise ValueError(f"{source}: no such checkpoint file")
    digest = sha256_of(source)
    variant = variant or identify_variant(fmt, source, digest)
    if variant not in fmt.variants:
        raise ValueError(f"unknown {fmt.name} variant {variant!r}; known: {', '.join(fmt.variants)}")
    expected = fmt.variants[variant].get("sha256")
    if expected and expected != digest:
        log.warning("%s: sha256 %s differs from the published %s checkpoint's %s", source, digest, variant, expected)
    _, preprocessing = fmt.load(variant, source)
    check_preprocessing(preprocessing, f"{fmt.name} {variant}")
    out.mkdir(parents=True, exist_ok=True)
    if (out / RUN_FILE).exists() and not is_published_run(out):
        raise ValueError(f"{out} holds a run.yaml of a trained run; import into another folder")
    target = out / source.name
    if target.resolve() != source.resolve():
        shutil.copyfile(source, target)
    for name in ("LICENSE", "NOTICE"):  # the authors' licence files travel with their weights
        if (source.parent / name).is_file() and (source.parent / name).resolve() != (out / name).resolve():
            shutil.copyfile(source.parent / name, out / name)
    spec = run_spec(fmt, variant, target.name, digest, preprocessing)
    write_text_atomic(yaml.safe_dump(spec, sort_keys=False), out / RUN_FILE)
    return out


def read_run_yaml(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}


def is_published_run(folder: str | Path) -> bool:
    path = Path(folder)
    if not path.is_dir():
        return False
    spec = read_run_yaml(path)
    return bool(spec) and spec.get("kind") == KIND


def load_published_run(folder: str | Path, device: "str | torch.device" = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The detector of an imported run folder (wrapped, eval mode, on ``device``) and its run.yaml settings."""
    info = published_run_info(folder)
    network, _ = formats()[info["format"]].load(info["variant"], Path(info["checkpoint"]))
    preprocessing = info["preprocessing"]
    model = PublishedDetector(network, preprocessing["output"], preprocessing.get("fake_index"))
    model = model.to(torch.device(device)).eval()
    return model, info


def published_run_info(folder: str | Path) -> dict[str, Any]:
    """An imported run folder's run.yaml settings, checked, as :func:`load_published_run` returns them."""
    folder = Path(folder)
    spec = read_run_yaml(folder) or {}
    for key in ("format", "variant", "weights", "preprocessing"):
        if key not in spec:
            raise ValueError(f"{folder / RUN_FILE} does not say its {key}: not an imported detector's run.yaml")
    if spec["format"] not in formats():
        raise ValueError(f"{folder / RUN_FILE}: format {spec['format']!r} is not known to this facesleuth "
                         f"(known: {', '.join(sorted(formats()))})")
    checkpoint = folder / spec["weights"]
    if not checkpoint.is_file():
        raise ValueError(f"{folder / RUN_FILE} names the weights {spec['weights']}, which are not in the folder")
    preprocessing = check_preprocessing(dict(spec["preprocessing"]), str(folder / RUN_FILE))
    return {**spec, "preprocessing": preprocessing, "checkpoint": str(checkpoint), "best_epoch": None}
