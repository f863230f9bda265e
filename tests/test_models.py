"""Backbone registry, the Dropout + Linear(2) head, weights loading and Table 2.1's counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facesleuth.train import models
from facesleuth.train.backbones import REGISTRY, THESIS_MODELS, display_name, resolve
from facesleuth.train.models import WeightsUnavailableError, build_model, count_parameters

# Table 2.1 (millions of trainable parameters), with the 2-class head.
TABLE_2_1 = {
    "resnet50": 23.5,
    "mobilenetv3_large": 4.2,
    "xception": 20.8,
    "inception_v4": 41.1,
    "inception_resnet_v2": 54.3,
    "densenet161": 26.5,
    "efb0_ns": 4.0,
    "efb4_ns": 17.6,
}


def test_registry_holds_the_eight_thesis_models():
    assert set(THESIS_MODELS) == set(TABLE_2_1)
    assert resolve("efb4_ns").timm_name == "tf_efficientnet_b4.ns_jft_in1k"
    assert resolve("xception").timm_name == "legacy_xception"
    assert resolve("mobilenetv3_large").timm_name == "mobilenetv3_large_100"
    assert display_name("efb4_ns") == "EFB4_NS"
    assert display_name("resnet10t") == "resnet10t"  # any timm name passes through


def test_unknown_model_lists_the_registry():
    with pytest.raises(ValueError, match="efb4_ns.*not a timm model"):
        resolve("resnet5000")


@pytest.mark.parametrize("name,width", [("mobilenetv3_small_050", 1024), ("resnet10t", 512)])
def test_head_is_dropout_then_linear_2(name, width):
    model = build_model(name, pretrained=False, dropout=0.3)
    head = model.get_classifier()
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear]
    assert head[0].p == 0.3
    assert (head[1].in_features, head[1].out_features) == (width, 2)
    model.eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 2)


def test_unreachable_pretrained_weights_say_both_ways_out(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("resnet10t", pretrained=True)
    message = str(info.value)
    assert "training.weights" in message and "resnet10t.safetensors" in message
    assert "training.pretrained: false" in message


def test_missing_local_weights_file_says_both_ways_out(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="training.pretrained: false") as info:
        build_model("resnet10t", pretrained=True, weights=tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("as_folder", [True, False])
def test_local_weights_file_loads(tmp_path, as_folder):
    torch.manual_seed(3)
    source = build_model("resnet10t", pretrained=False)
    # An ImageNet-style checkpoint: backbone weights plus a 1000-class classifier (timm drops it).
    state = {k: v for k, v in source.backbone.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    path = tmp_path / "resnet10t.c3_in1k.pth"
    torch.save(state, path)
    torch.manual_seed(4)
    loaded = build_model("resnet10t.c3_in1k", pretrained=True, weights=tmp_path if as_folder else path)
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[key], value), key


def test_count_parameters_counts_trainable_only():
    model = build_model("resnet10t", pretrained=False)
    total = count_parameters(model)
    for p in model.head.parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == total - (512 * 2 + 2)


def test_parameter_counts_match_table_2_1():
    """About 3 s on 2 cores: the eight backbones built without weights."""
    counts = {}
    for name in TABLE_2_1:
        counts[name] = round(count_parameters(build_model(name, pretrained=False)) / 1e6, 1)
    assert counts == TABLE_2_1


# Newer backbones: ImageNet-1k parameter counts from timm's model cards (millions, 1000 classes)
# and the width of their pooled features, to rebuild the 2-class count independently.
NEWER = {
    "efficientnetv2_s": (21.5, 1280),
    "convnext_tiny": (28.6, 768),
    "vit_b16": (86.6, 768),
    "deit_s": (22.1, 384),
}


@pytest.mark.parametrize("name", sorted(NEWER))
def test_newer_backbones_count_as_timm_does(name):
    import timm

    spec = resolve(name)
    assert not spec.in_thesis and name in REGISTRY and name not in THESIS_MODELS
    count = count_parameters(build_model(name, pretrained=False))
    reference = timm.create_model(spec.timm_name, pretrained=False, num_classes=2, **dict(spec.timm_kwargs))
    assert count == sum(p.numel() for p in reference.parameters())
    card_millions, width = NEWER[name]
    two_class = card_millions * 1e6 - (width * 1000 + 1000) + (width * 2 + 2)
    assert count == pytest.approx(two_class, abs=0.06e6)  # the card rounds to 0.1 M


def test_vision_transformer_takes_the_configured_input_size():
    # the demo trains at 96 px; position embeddings are interpolated from the 224 px grid
    model = build_model("deit_s", pretrained=False).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 2)
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 2)
    assert resolve("deit_small_patch16_224.fb_in1k") is REGISTRY["deit_s"]  # a checkpoint's timm name


def test_face_classifier_is_a_module_level_class_that_pickles(tmp_path):
    """A module-level class pickles whole (a class made inside a function cannot), and the
    state_dict keys are those of the checkpoints written so far: backbone.*, head.0/1."""
    import pickle

    torch.manual_seed(0)
    model = build_model("resnet10t", pretrained=False, dropout=0.2).eval()
    assert type(model) is models.FaceClassifier
    assert type(model).__qualname__ == "FaceClassifier"
    keys = list(model.state_dict())
    assert all(k.startswith(("backbone.", "head.")) for k in keys)
    assert [k for k in keys if k.startswith("head.")] == ["head.1.weight", "head.1.bias"]
    copy = pickle.loads(pickle.dumps(model))
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(copy(x), model(x))
