"""MesoNet (Afchar, Nozick, Yamagishi, Echizen, WIFS 2018): Meso-4 and MesoInception-4 from the
authors' Keras HDF5 weight files.

The networks are written from the paper and the authors' ``classifiers.py`` (github.com/DariusAf/
MesoNet), keeping Keras's semantics exactly: convolution kernels stored height x width x in x out,
``padding='same'`` (symmetric for these odd kernels at stride 1, dilation included), ReLU *before*
batch normalisation (``Conv2D(activation='relu')`` then ``BatchNormalization``, epsilon 1e-3),
max pooling, a flatten of the NHWC tensor (Keras is channels-last: the 1024 features are ordered
row, column, channel), dropout (off in eval) and one sigmoid output.

The hidden 16-unit dense layer: ``classifiers.py`` puts a LeakyReLU (slope 0.1) after it, and the
MesoInception-4 files list that layer (``leaky_re_lu_1``); the Meso-4 files do not, so the Meso-4
weights were saved from a model without it, whose hidden layer is linear (a weightless layer is
still listed in ``layer_names``, as the files' dropout and flatten layers are). Both readings
score the authors' test images the same way round; docs/weights.md gives the figures.

Inputs (the authors' ``example.py``): 256 x 256 RGB faces scaled to [0, 1]. Output: the
probability that the face is *real* (their ``flow_from_directory`` labels ``df`` 0, ``real`` 1).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facesleuth.published import register_format

INPUT_SIZE = 256
BATCHNORM_EPSILON = 1e-3  # Keras's default (torch's is 1e-5)
LEAKY_SLOPE = 0.1  # classifiers.py: LeakyReLU(alpha=0.1)

PREPROCESSING = {
    "input_size": INPUT_SIZE,
    "resize": "stretch",  # the authors' crops are square; flow_from_directory resizes to 256 x 256
    "face_scale": None,  # their crops come from face_recognition landmarks, not a box: the scanner's crop
    "value_scale": 1 / 255,
    "mean": None,
    "std": None,
    "colour_order": "RGB",
    "output": "real_probability",
}

_REPOSITORY = "https://github.com/DariusAf/MesoNet"
_RAW = "https://raw.githubusercontent.com/DariusAf/MesoNet/2144d56a30e48cdcac1976ff13a1c5cdc86376c6/weights"
LIMITS = ("MesoNet is a 2018 model: reliable only on FaceForensics++-like face swaps and reenactments "
          "(it generalises poorly to DFDC, Celeb-DF and newer fakes); pass --model for a stronger detector")


def _variant(architecture: str, file: str, sha256: str, trained_on: str) -> dict[str, Any]:
    return {
        "architecture": architecture,
        "file": file,
        "url": f"{_RAW}/{file}",
        "sha256": sha256,
        "licence": "Apache-2.0 (with the authors' NOTICE)",
        "training_data": trained_on,
        "layout_source": f"{_REPOSITORY}/blob/2144d56a30e48cdcac1976ff13a1c5cdc86376c6/classifiers.py",
        "limits": LIMITS,
    }


VARIANTS: dict[str, dict[str, Any]] = {
    "Meso4_DF": _variant("meso4", "Meso4_DF.h5",
                         "036ed30d04ffd9c7506f825b97c86aa64915f5818931da96817b169aad790af5",
                         "the authors' Deepfakes (face swap) dataset"),
    "Meso4_F2F": _variant("meso4", "Meso4_F2F.h5",
                          "bcfda015d217b9f8d6557693edbdf9f4e79cfd22672541968dd0e2954462b5d7",
                          "FaceForensics Face2Face (reenactment)"),
    "MesoInception_DF": _variant("mesoinception4", "MesoInception_DF.h5",
                                 "234586d40058e76ef8b6f27ca4b63c06e31c2a5a69c0d8ba6f30b1468ab7bafa",
                                 "the authors' Deepfakes (face swap) dataset"),
    "MesoInception_F2F": _variant("mesoinception4", "MesoInception_F2F.h5",
                                  "d4533ac8a3197dc35c47405d23d99e888c1d0135e267e03540c7451feaccff3f",
                                  "FaceForensics Face2Face (reenactment)"),
}


def _same_conv(c_in: int, c_out: int, kernel: int, dilation: int = 1) -> nn.Conv2d:
    """Keras ``Conv2D(padding='same')`` at stride 1 with an odd kernel: symmetric padding."""
    return nn.Conv2d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)


class _Inception(nn.Module):
    """MesoInception's block: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 dilated 2 | 1x1 -> 3x3 dilated 3, concatenated."""

    def __init__(self, c_in: int, a: int, b: int, c: int, d: int):
        super().__init__()
        self.branch1 = _same_conv(c_in, a, 1)
        self.branch2 = nn.ModuleList([_same_conv(c_in, b, 1), _same_conv(b, b, 3)])
        self.branch3 = nn.ModuleList([_same_conv(c_in, c, 1), _same_conv(c, c, 3, dilation=2)])
        self.branch4 = nn.ModuleList([_same_conv(c_in, d, 1), _same_conv(d, d, 3, dilation=3)])

    def convolutions(self) -> list[nn.Conv2d]:
        """In the order Keras created (and numbered) them in ``classifiers.py``."""
        return [self.branch1, *self.branch2, *self.branch3, *self.branch4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        outs = [relu(self.branch1(x))]
        for first, second in (self.branch2, self.branch3, self.branch4):
            outs.append(relu(second(relu(first(x)))))
        return torch.cat(outs, dim=1)


class MesoNet(nn.Module):
    """Meso-4 (``inception=False``) or MesoInception-4: 256 x 256 RGB in [0, 1] -> P(real), shape N."""

    def __init__(self, inception: bool, hidden_activation: str = "leaky_relu"):
        super().__init__()
        if hidden_activation not in ("leaky_relu", "linear"):
            raise ValueError(f"hidden_activation must be leaky_relu or linear, got {hidden_activation!r}")
        self.inception = inception
        self.hidden_activation = hidden_activation
        if inception:
            self.block1, self.block2 = _Inception(3, 1, 4, 4, 2), _Inception(11, 2, 4, 4, 2)
            widths = [11, 12]
        else:
            self.block1, self.block2 = _same_conv(3, 8, 3), _same_conv(8, 8, 5)
            widths = [8, 8]
        self.conv3, self.conv4 = _same_conv(widths[1], 16, 5), _same_conv(16, 16, 5)
        self.norms = nn.ModuleList(nn.BatchNorm2d(n, eps=BATCHNORM_EPSILON) for n in [*widths, 16, 16])
        self.hidden = nn.Linear(1024, 16)
        self.out = nn.Linear(16, 1)
        self.dropout = nn.Dropout(0.5)

    def convolutions(self) -> list[nn.Conv2d]:
        """Every convolution in Keras's creation order (the numbering of the HDF5 layers)."""
        if self.inception:
            return [*self.block1.convolutions(), *self.block2.convolutions(), self.conv3, self.conv4]
        return [self.block1, self.block2, self.conv3, self.conv4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pools = (2, 2, 2, 4)
        for i, layer in enumerate((self.block1, self.block2, self.conv3, self.conv4)):
            x = layer(x)
            if not (self.inception and i < 2):  # the inception blocks apply their own ReLUs
                x = torch.relu(x)
            x = nn.functional.max_pool2d(self.norms[i](x), pools[i])
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens channels-last
        x = self.hidden(self.dropout(x))
        if self.hidden_activation == "leaky_relu":
            x = nn.functional.leaky_relu(x, LEAKY_SLOPE)
        return torch.sigmoid(self.out(self.dropout(x)))[:, 0]


def _number(name: str) -> int:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def read_keras_layers(path: str | Path) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    """(layer names in the file's order, {layer: {weight name without ':0': array}}) of a Keras HDF5 file."""
    import h5py  # only format readers need it

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not an HDF5 file ({err}); MesoNet weights are Keras .h5 files") from None
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle  # model.save() or save_weights()
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path}: no 'layer_names' attribute, so not a Keras weight file")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs["layer_names"]]
        weights: dict[str, dict[str, np.ndarray]] = {}
        for name in names:
            arrays: dict[str, np.ndarray] = {}
            root[name].visititems(lambda key, obj: arrays.__setitem__(key.rsplit("/", 1)[-1].split(":")[0], obj[()])
                                  if hasattr(obj, "shape") else None)
            weights[name] = arrays
    return names, weights


def _copy(target: torch.Tensor, source: np.ndarray, what: str, path: Path) -> None:
    if tuple(target.shape) != tuple(source.shape):
        raise ValueError(f"{path}: {what} has shape {tuple(source.shape)}, the network expects "
                         f"{tuple(target.shape)}")
    target.copy_(torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32)))


def load_keras_weights(network: MesoNet, path: str | Path) -> MesoNet:
    """Copy the Keras layers of ``path`` into ``network`` (layers matched by type, in Keras's numbering)."""
    path = Path(path)
    names, weights = read_keras_layers(path)
    by_type: dict[str, list[str]] = {}
    for name in names:
        if weights[name]:
            by_type.setdefault(re.sub(r"_\d+$", "", name), []).append(name)
    layers = {kind: sorted(found, key=_number) for kind, found in by_type.items()}
    convolutions, norms = network.convolutions(), list(network.norms)
    expected = {"conv2d": len(convolutions), "batch_normalization": len(norms), "dense": 2}
    found = {kind: len(layers.get(kind, [])) for kind in expected}
    if found != expected or set(layers) != set(expected):
        kind = "MesoInception-4" if network.inception else "Meso-4"
        raise ValueError(f"{path}: expected the layout of {kind} ({expected['conv2d']} conv2d, 4 batch_normalization "
                         f"and 2 dense layers with weights), found {found} (and {sorted(set(layers) - set(expected))}); "
                         "is it the other MesoNet architecture?")
    with torch.no_grad():
        for conv, name in zip(convolutions, layers["conv2d"]):
            _copy(conv.weight, weights[name]["kernel"].transpose(3, 2, 0, 1), f"{name} kernel", path)
            _copy(conv.bias, weights[name]["bias"], f"{name} bias", path)
        for norm, name in zip(norms, layers["batch_normalization"]):
            w = weights[name]
            for target, key in ((norm.weight, "gamma"), (norm.bias, "beta"), (norm.running_mean, "moving_mean"),
                                (norm.running_var, "moving_variance")):
                _copy(target, w[key], f"{name} {key}", path)
        for dense, name in zip((network.hidden, network.out), layers["dense"]):
            _copy(dense.weight, weights[name]["kernel"].T, f"{name} kernel", path)
            _copy(dense.bias, weights[name]["bias"], f"{name} bias", path)
    return network


def hidden_activation_of(layer_names: list[str]) -> str:
    """The saved model's activation after the 16-unit dense layer: a LeakyReLU layer when the file lists one."""
    return "leaky_relu" if any(name.startswith("leaky_re_lu") for name in layer_names) else "linear"


@register_format("mesonet", VARIANTS)
def load(variant: str, checkpoint: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The MesoNet ``variant`` (a key of :data:`VARIANTS`) with the weights of ``checkpoint``, eval mode, CPU."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown MesoNet variant {variant!r}; known: {', '.join(VARIANTS)}")
    names, _ = read_keras_layers(checkpoint)
    network = MesoNet(VARIANTS[variant]["architecture"] == "mesoinception4", hidden_activation_of(names))
    return load_keras_weights(network, checkpoint).eval(), dict(PREPROCESSING)
