"""The backbones by config name: the thesis's eight (Table 2.1) and newer ones, with their timm names.

Kept apart from :mod:`facesleuth.train.models` (which builds them with torch and timm) so that table and
figure jobs can name models without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str  # config name
    timm_name: str
    display_name: str  # as in the thesis's result tables (Table 3.1)
    thesis_params_millions: float | None = None  # Table 2.1
    # extra timm.create_model arguments, as (name, value) pairs
    timm_kwargs: tuple[tuple[str, object], ...] = ()
    in_thesis: bool = True  # one of the thesis's eight (Table 2.1) or a newer backbone


# Vision transformers learn position embeddings for one image size; dynamic_img_size lets timm
# interpolate them, so the same model trains at the configured input size (224 px as pretrained).
_ANY_SIZE = (("dynamic_img_size", True),)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("efb4_ns", "tf_efficientnet_b4.ns_jft_in1k", "EFB4_NS", 17.6),
        ModelSpec("xception", "legacy_xception", "Xception", 20.8),
        ModelSpec("inception_v4", "inception_v4", "Inception_4", 41.1),
        ModelSpec("inception_resnet_v2", "inception_resnet_v2", "Inception_resnet_v2", 54.3),
        ModelSpec("efb0_ns", "tf_efficientnet_b0.ns_jft_in1k", "EFB0_NS", 4.0),
        ModelSpec("densenet161", "densenet161", "densenet161", 26.5),
        ModelSpec("resnet50", "resnet50", "resnet50", 23.5),
        ModelSpec("mobilenetv3_large", "mobilenetv3_large_100", "MobilenetV3_large", 4.2),
        # Beyond the thesis (its discussion, 3.3: "bigger EfficientNet models and emerging Vision
        # Transformers"): newer backbones with the same head and letterbox.
        ModelSpec("efficientnetv2_s", "tf_efficientnetv2_s.in21k_ft_in1k", "EfficientNetV2-S", in_thesis=False),
        ModelSpec("convnext_tiny", "convnext_tiny.fb_in1k", "ConvNeXt-Tiny", in_thesis=False),
        ModelSpec("vit_b16", "vit_base_patch16_224.augreg2_in21k_ft_in1k", "ViT-B/16", timm_kwargs=_ANY_SIZE,
                  in_thesis=False),
        ModelSpec("deit_s", "deit_small_patch16_224.fb_in1k", "DeiT-S", timm_kwargs=_ANY_SIZE, in_thesis=False),
    )
}
THESIS_MODELS = [name for name, spec in REGISTRY.items() if spec.in_thesis]


def resolve(name: str) -> ModelSpec:
    """Registry entry of ``name``; any other name timm knows is used as a timm name as it is."""
    if name in REGISTRY:
        return REGISTRY[name]
    for spec in REGISTRY.values():  # a run's checkpoint records the timm name
        if spec.timm_name == name:
            return spec
    import timm  # heavy (seconds, hundreds of model definitions): only building a model needs it

    if timm.is_model(name):
        return ModelSpec(name, name, name)
    known = ", ".join(f"{n} ({s.timm_name})" for n, s in REGISTRY.items())
    raise ValueError(f"unknown model {name!r}: not in the registry ({known}) and not a timm model name")


def timm_name(name: str) -> str:
    return resolve(name).timm_name


def display_name(name: str) -> str:
    """Name for tables and figures (the thesis's spelling for its eight models, else the name
    itself). No timm lookup: importing timm costs every table and figure job seconds of CPU,
    and the name was checked when its model was built."""
    spec = REGISTRY.get(name)
    return spec.display_name if spec else name
