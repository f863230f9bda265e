"""Checkpoints of polimi-ispl/icpr2020dfdc ("Video Face Manipulation Detection Through Ensemble of CNNs",
ICPR 2020): EfficientNetB4, EfficientNetB4ST, EfficientNetAutoAttB4, EfficientNetAutoAttB4ST and Xception,
each trained on DFDC and on FF++.

The networks are rebuilt on timm and the publisher's key names are mapped onto timm's, so neither
efficientnet_pytorch nor pretrainedmodels is needed at run time. The layouts, the preprocessing and
where each fact comes from are described in docs/weights.md.

This module also holds the pieces the other published formats share (reading a checkpoint, loading a
renamed state dict with a clear error, efficientnet_pytorch's B4 on timm, Cadene's Xception on timm).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPOSITORY = "https://github.com/polimi-ispl/icpr2020dfdc"
# the commit whose files established the layouts and preprocessing below
COMMIT = "bbd64115e612e50416fb64fa8f60393fe4642dc0"
LICENCE = "GPL-3.0 (the repository's licence; the weights are published with it)"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# ---------------------------------------------------------------------------------------------------
# Shared by the published formats
# ---------------------------------------------------------------------------------------------------


def _numpy_scalar_globals() -> list:
    """What unpickling a NumPy scalar needs: training scripts save losses computed with NumPy or
    scikit-learn (selimsef's 'bce_best' is a numpy.float64), under numpy 1's or 2's module name."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1
        from numpy.core.multiarray import scalar
    allowed = [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    if dtypes is not None:
        allowed += [getattr(dtypes, f"{kind}DType") for kind in ("Float64", "Float32", "Int64", "Int32", "Bool")]
    return allowed


def read_checkpoint(path: str | Path) -> object:
    """The object ``torch.save`` wrote to ``path``, read without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        raise ValueError(f"{path}: not a PyTorch checkpoint that can be read safely ({error})") from error


def _examples(keys: set[str], count: int = 4) -> str:
    shown = sorted(keys)[:count]
    more = f" and {len(keys) - count} more" if len(keys) > count else ""
    return ", ".join(repr(key) for key in shown) + more


def load_renamed(model: nn.Module, state: object, names: Mapping[str, str], layout: str, source: str | Path,
                 ignored: Callable[[str], bool] = lambda key: False) -> nn.Module:
    """Loads ``state`` (the publisher's state dict) into ``model``, whose key ``k`` the publisher calls
    ``names[k]``. Publisher keys for which ``ignored`` is true are known and unused (heads the
    published forward never runs). Any other difference raises a ValueError naming ``layout``."""
    if not isinstance(state, Mapping) or not all(isinstance(key, str) for key in state):
        raise ValueError(f"{source}: expected {layout}; found a {type(state).__name__}, not a state dict")
    present = {key for key in state if not ignored(key)}
    expected = set(names.values())
    missing, unexpected = expected - present, present - expected
    if missing or unexpected:
        found = []
        if missing:
            found.append(f"missing keys {_examples(missing)}")
        if unexpected:
            found.append(f"unexpected keys {_examples(unexpected)}")
        raise ValueError(f"{source}: expected {layout}; {'; '.join(found)}")
    renamed = {own: state[theirs] for own, theirs in names.items()}
    try:
        model.load_state_dict(renamed, strict=True)
    except RuntimeError as error:  # same names, other shapes: another architecture size
        raise ValueError(f"{source}: expected {layout}; the tensors do not fit: {error}") from error
    return model.eval()


def unwrap(checkpoint: object, wrapper_key: str) -> object:
    """``checkpoint[wrapper_key]`` when the checkpoint is a training dict holding the state dict there,
    else the checkpoint itself (a bare state dict)."""
    if isinstance(checkpoint, Mapping) and wrapper_key in checkpoint and isinstance(checkpoint[wrapper_key], Mapping):
        return checkpoint[wrapper_key]
    return checkpoint


class StaticSamePadConv2d(nn.Conv2d):
    """A convolution with TensorFlow's 'same' padding computed once for one input size and then applied
    to every input, whatever its size: efficientnet_pytorch builds its convolutions this way (for
    B4, from 380 px), where timm's ``tf_`` models pad each input dynamically. Both agree at 380 px
    only, so a faithful copy has to keep the fixed padding."""

    def __init__(self, conv: nn.Conv2d, input_size: int):
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                         conv.groups, conv.bias is not None)
        total = []
        for size, kernel, stride, dilation in zip((input_size, input_size), self.kernel_size, self.stride,
                                                  self.dilation):
            output = math.ceil(size / stride)
            total.append(max((output - 1) * stride + (kernel - 1) * dilation + 1 - size, 0))
        pad_h, pad_w = total
        self.static_padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.static_padding))


# efficientnet_pytorch's B4 is built for 380 px inputs (its efficientnet_params table)
B4_BUILD_SIZE = 380
B4_FEATURES = 1792


def _flat_blocks(body: nn.Module) -> list[tuple[str, nn.Module]]:
    """timm's blocks as (state-dict prefix, block), in the order of efficientnet_pytorch's flat ``_blocks``."""
    return [(f"blocks.{s}.{b}", block) for s, stage in enumerate(body.blocks) for b, block in enumerate(stage)]


class EfficientNetB4Trunk(nn.Module):
    """efficientnet_pytorch's ``efficientnet-b4`` (up to the pooled 1792 features) on timm's
    ``tf_efficientnet_b4``, with efficientnet_pytorch's fixed padding; optionally polimi's attention
    (a 1x1 convolution and a sigmoid gating the features after block ``ATTENTION_BLOCK``), and
    optionally DeepfakeBench's unpadded stem."""

    ATTENTION_BLOCK = 9  # fornet.EfficientNetAutoAtt.init_att: att_block_idx for efficientnet-b4

    def __init__(self, attention: bool = False, padded_stem: bool = True):
        super().__init__()
        import timm  # on use: it imports torchvision, which a scan from an exported model never needs

        self.body = timm.create_model("tf_efficientnet_b4", pretrained=False, num_classes=0)
        size = B4_BUILD_SIZE
        stem = self.body.conv_stem
        if padded_stem:
            self.body.conv_stem = StaticSamePadConv2d(stem, size)
        else:
            self.body.conv_stem = nn.Conv2d(stem.in_channels, stem.out_channels, 3, 2, padding=0, bias=False)
        size = math.ceil(size / 2)
        for _, block in _flat_blocks(self.body):
            # only the depthwise convolution has a kernel over 1 px; its stride moves the build size on
            block.conv_dw = StaticSamePadConv2d(block.conv_dw, size)
            size = math.ceil(size / block.conv_dw.stride[0])
        self.attention = nn.Conv2d(56, 1, kernel_size=1) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.body
        x = body.bn1(body.conv_stem(x))  # timm's BatchNormAct2d applies the swish
        for index, (_, block) in enumerate(_flat_blocks(body)):
            x = block(x)
            if self.attention is not None and index == self.ATTENTION_BLOCK:
                x = x * torch.sigmoid(self.attention(x))
        x = body.bn2(body.conv_head(x))
        return x.mean(dim=(2, 3))

    def efficientnet_pytorch_names(self, prefix: str, attention_name: str = "attconv") -> dict[str, str]:
        """Own state-dict key -> efficientnet_pytorch's key under ``prefix`` (e.g. 'efficientnet.')."""
        top = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1"}
        # timm's InvertedResidual / DepthwiseSeparableConv names -> MBConvBlock's
        expanded = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                    "se.conv_reduce": "_se_reduce", "se.conv_expand": "_se_expand", "conv_pwl": "_project_conv",
                    "bn3": "_bn2"}
        unexpanded = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "se.conv_reduce": "_se_reduce",
                      "se.conv_expand": "_se_expand", "conv_pw": "_project_conv", "bn2": "_bn2"}
        block_of = {own: index for index, (own, _) in enumerate(_flat_blocks(self.body))}
        names = {}
        for key in self.state_dict():
            if key.startswith("attention."):
                names[key] = prefix + attention_name + key[len("attention"):]
                continue
            inner = key[len("body."):]
            module, _, leaf = inner.rpartition(".")
            if module in top:
                names[key] = f"{prefix}{top[module]}.{leaf}"
                continue
            _, stage, block, part = module.split(".", 3)  # blocks.<stage>.<block>.<part>
            block_prefix = f"blocks.{stage}.{block}"
            parts = expanded if hasattr(self.body.blocks[int(stage)][int(block)], "conv_pwl") else unexpanded
            names[key] = f"{prefix}_blocks.{block_of[block_prefix]}.{parts[part]}.{leaf}"
        return names


class CadeneXception(nn.Module):
    """Cadene's Xception (pretrainedmodels; copied into polimi's ``externals`` and, as the FaceForensics++
    network, into DeepfakeBench) on timm's ``legacy_xception``, which ports the same network with the
    same key names but ``fc`` for Cadene's ``last_linear``. Returns ``outputs`` logits."""

    def __init__(self, outputs: int):
        super().__init__()
        import timm  # on use: it imports torchvision, which a scan from an exported model never needs

        self.body = timm.create_model("legacy_xception", pretrained=False, num_classes=outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def cadene_names(self, prefix: str) -> dict[str, str]:
        names = {}
        for key in self.state_dict():
            inner = key[len("body."):]
            if inner.startswith("fc."):
                inner = "last_linear." + inner[len("fc."):]
            names[key] = prefix + inner
        return names


# ---------------------------------------------------------------------------------------------------
# polimi's networks (architectures/fornet.py)
# ---------------------------------------------------------------------------------------------------


class PolimiEfficientNet(nn.Module):
    """fornet.EfficientNetB4 / EfficientNetAutoAttB4: the pooled B4 features, then one linear logit."""

    def __init__(self, attention: bool):
        super().__init__()
        self.trunk = EfficientNetB4Trunk(attention=attention)
        self.classifier = nn.Linear(B4_FEATURES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.trunk(x))

    def publisher_names(self, prefix: str = "") -> dict[str, str]:
        names = {f"trunk.{own}": theirs
                 for own, theirs in self.trunk.efficientnet_pytorch_names(prefix + "efficientnet.").items()}
        names.update({f"classifier.{leaf}": f"{prefix}classifier.{leaf}" for leaf in ("weight", "bias")})
        return names


class PolimiSiameseTuned(nn.Module):
    """fornet.EfficientNetB4ST / EfficientNetAutoAttB4ST: the B4 features of a triplet-trained
    ``feat_ext``, then BatchNorm1d and a linear logit (``classifier.0``, ``classifier.1``)."""

    def __init__(self, attention: bool):
        super().__init__()
        self.trunk = EfficientNetB4Trunk(attention=attention)
        self.norm = nn.BatchNorm1d(B4_FEATURES)
        self.classifier = nn.Linear(B4_FEATURES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.norm(self.trunk(x)))

    def publisher_names(self) -> dict[str, str]:
        names = {f"trunk.{own}": theirs
                 for own, theirs in self.trunk.efficientnet_pytorch_names("feat_ext.efficientnet.").items()}
        names.update({f"norm.{leaf}": f"classifier.0.{leaf}" for leaf in self.norm.state_dict()})
        names.update({f"classifier.{leaf}": f"classifier.1.{leaf}" for leaf in ("weight", "bias")})
        return names

    @staticmethod
    def ignored(key: str) -> bool:
        # the feature extractor's own linear head is saved but SiameseTuning.forward never runs it
        return key.startswith("feat_ext.classifier.")


class PolimiXception(nn.Module):
    """fornet.Xception: Cadene's Xception with a one-logit ``last_linear``."""

    def __init__(self):
        super().__init__()
        self.xception = CadeneXception(outputs=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.xception(x)

    def publisher_names(self) -> dict[str, str]:
        return {f"xception.{own}": theirs for own, theirs in self.xception.cadene_names("xception.").items()}


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "EfficientNetB4": lambda: PolimiEfficientNet(attention=False),
    "EfficientNetAutoAttB4": lambda: PolimiEfficientNet(attention=True),
    "EfficientNetB4ST": lambda: PolimiSiameseTuned(attention=False),
    "EfficientNetAutoAttB4ST": lambda: PolimiSiameseTuned(attention=True),
    "Xception": PolimiXception,
}

# architectures/weights.py: the hosted files; each name carries the file's full sha256, which
# torch.hub's check_hash verifies
_HOST = "https://f002.backblazeb2.com/file/icpr2020/"
_SHA256 = {
    "EfficientNetAutoAttB4ST_DFDC": "4df0ef7d2f380a5955affa78c35d0942ac1cd65229510353b252737775515a33",
    "EfficientNetAutoAttB4ST_FFPP": "ddb357503b9b902e1b925c2550415604c4252b9b9ecafeb7369dc58cc16e9edd",
    "EfficientNetAutoAttB4_DFDC": "72ed969b2a395fffe11a0d5bf0a635e7260ba2588c28683630d97ff7153389fc",
    "EfficientNetAutoAttB4_FFPP": "b0c9e9522a7143cf119843e910234be5e30f77dc527b1b427cdffa5ce3bdbc25",
    "EfficientNetB4ST_DFDC": "86f0a0701b18694dfb5e7837bd09fa8e48a5146c193227edccf59f1b038181c6",
    "EfficientNetB4ST_FFPP": "ccd016668071be5bf5fff68e446d055441739ec7113fb1a6eee998f08396ae92",
    "EfficientNetB4_DFDC": "c9f3663e2116d3356d056a0ce6453e0fc412a8df68ebd0902f07104d9129a09a",
    "EfficientNetB4_FFPP": "93aaad84946829e793d1a67ed7e0309b535e2f2395acb4f8d16b92c0616ba8d7",
    "Xception_DFDC": "e826cdb64d73ef491e6b8ff8fce0e1e1b7fc1d8e2715bc51a56280fff17596f9",
    "Xception_FFPP": "bb119e4913cb8f816cd28a03f81f4c603d6351bf8e3f8e3eb99eebc923aecd22",
}
_TRAINING_DATA = {
    # isplutils/split.py: 'dfdc-35-5-10' and 'ff-c23-720-140-140' (scripts/train_all.sh)
    "DFDC": "DFDC training set, folders 0-34 (folders 35-39 validation), dfdc-35-5-10 split",
    "FFPP": "FaceForensics++ c23, 720 of the 1000 YouTube originals and the fakes made from them (every "
            "manipulation indexed by index_ffpp.py; 140 validation, 140 test), ff-c23-720-140-140 split",
}


LIMITS = ("polimi's crop is approximated: facesleuth's MTCNN box squared by face_scale 1.6, where the authors "
          "squared BlazeFace's box widened by 0.2 (0.4 above) of its height; its threshold is the sigmoid's 0.5, "
          "chosen on no data")


def _variant(name: str) -> dict:
    architecture, dataset = name.rsplit("_", 1)
    file_name = f"{name}_bestval-{_SHA256[name]}.pth"
    return {
        "architecture": architecture,
        "file": file_name,
        "url": _HOST + file_name,
        "sha256": _SHA256[name],
        "licence": LICENCE,
        "training_data": _TRAINING_DATA[dataset],
        "limits": LIMITS,
        "layout_source": f"{REPOSITORY}/blob/{COMMIT}/architectures/fornet.py, architectures/weights.py, "
                          "train_binclass.py (save_model), test_model.py, isplutils/utils.py (get_transformer)",
    }


VARIANTS: dict[str, dict] = {name: _variant(name) for name in _SHA256}

# notebook/Video prediction.ipynb and scripts/train_all.sh: --face scale --size 224 for every network;
# FeatureExtractor.get_normalizer (ImageNet statistics, Xception included); BlazeFace's margin of 0.2
# of the box height each side (0.4 above), cropped to a square of the longer side, resized to 224
PREPROCESSING = {
    "input_size": 224,
    "resize": "stretch",
    "face_scale": 1.6,
    "value_scale": 1 / 255,
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "colour_order": "RGB",
    "output": "fake_logit",
}

LAYOUT = ("polimi icpr2020dfdc checkpoint: the state dict of fornet.{architecture} (keys such as {example}), "
          "bare as the hosted files hold it, or under 'net' as train_binclass.py's save_model writes it")
_EXAMPLE_KEYS = {
    "EfficientNetB4": "'efficientnet._conv_stem.weight', 'classifier.weight'",
    "EfficientNetAutoAttB4": "'efficientnet.attconv.weight', 'classifier.weight'",
    "EfficientNetB4ST": "'feat_ext.efficientnet._conv_stem.weight', 'classifier.0.running_mean'",
    "EfficientNetAutoAttB4ST": "'feat_ext.efficientnet.attconv.weight', 'classifier.1.weight'",
    "Xception": "'xception.block1.rep.0.conv1.weight', 'xception.last_linear.weight'",
}


def load(variant: str, checkpoint: str | Path) -> tuple[nn.Module, dict]:
    """The network of ``variant`` (a key of VARIANTS) with the weights in ``checkpoint``, in eval mode on
    the CPU, and its preprocessing; its forward returns N x 1 fake logits."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown polimi variant {variant!r}; known: {', '.join(VARIANTS)}")
    architecture = VARIANTS[variant]["architecture"]
    model = ARCHITECTURES[architecture]()
    layout = LAYOUT.format(architecture=architecture, example=_EXAMPLE_KEYS[architecture])
    ignored = getattr(model, "ignored", lambda key: False)
    state = unwrap(read_checkpoint(checkpoint), "net")
    load_renamed(model, state, model.publisher_names(), layout, checkpoint, ignored)
    return model, dict(PREPROCESSING)
