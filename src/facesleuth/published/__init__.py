"""Published detectors (weights their authors released) as run folders the scanner and the pipeline take.

Each format module of this package (one per publishing project: :mod:`.mesonet`, ...) reads its
authors' checkpoint files and registers itself with :func:`register_format` where it is defined,
as timm's ``@register_model`` does; every module of the package is imported on first use of the
registry, so a new format is one new file (a module with ``VARIANTS`` and ``load`` but no
decorator is registered under its module name). A format exposes ``VARIANTS`` (one entry per published
checkpoint: architecture, file name, URL, sha256, licence, training data, the publishing
repository's file that established its layout) and ``load(variant, checkpoint) -> (network,
preprocessing)``: the network in eval mode on the CPU, and how its inputs are prepared
(docs/weights.md, "Preprocessing"). The network's output means what ``preprocessing["output"]``
says; :class:`PublishedDetector` turns it into the two logits (real, fake) every trained run of
the pipeline gives, so prediction, validation, calibration, ensembles and the scanner need no
branch for it, only for the preprocessing (:func:`facesleuth.train.preprocess.prepare_faces`).

An imported detector's run folder (``facesleuth weights import``) holds the checkpoint file and
``run.yaml`` (:func:`run_spec`); :mod:`.runfolder` writes and reads it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the values ``preprocessing["output"]`` may take (docs/weights.md)
OUTPUTS = ("fake_logit", "fake_probability", "real_probability", "two_logits_fake_index")
#: the values ``preprocessing["resize"]`` may take
RESIZES = ("stretch", "isotropic_pad", "similarity_align")
#: resizes the pipeline's face crops cannot reproduce, with the one applied instead and why; an
#: imported run records the substitution in run.yaml and states it in its ``limits``
APPROXIMATED_RESIZES: dict[str, tuple[str, str]] = {
    "similarity_align": (
        "stretch",
        "its authors aligned each face to the ArcFace template by a similarity transform of five "
        "landmarks; facesleuth's face crops carry no landmarks, so it takes the face_scale square "
        "around the detector's box, stretched to the input size, instead: faces are not rotated "
        "upright nor scaled by their eye distance, and its scores may differ from the authors'"),
}


def applied_resize(resize: str) -> str:
    """The resize facesleuth applies for a preprocessing's ``resize`` (itself, or its approximation)."""
    return APPROXIMATED_RESIZES[resize][0] if resize in APPROXIMATED_RESIZES else resize
COLOUR_ORDERS = ("RGB", "BGR")
PREPROCESSING_KEYS = ("input_size", "resize", "face_scale", "value_scale", "mean", "std", "colour_order", "output")


@dataclass(frozen=True)
class Format:
    """One checkpoint format: its published variants and the loader of their files."""

    name: str
    module: str
    variants: dict[str, dict[str, Any]]
    load: Callable[..., Any]


_FORMATS: dict[str, Format] = {}
_discovered = False


def register_format(name: str, variants: dict[str, dict[str, Any]]) -> Callable:
    """Decorator for a format module's ``load``: makes the format known under ``name``."""

    def decorate(load: Callable) -> Callable:
        if name in _FORMATS and _FORMATS[name].module != load.__module__:
            raise ValueError(f"checkpoint format {name!r} is registered twice ({_FORMATS[name].module}, "
                             f"{load.__module__})")
        _FORMATS[name] = Format(name, load.__module__, variants, load)
        return load

    return decorate


def _discover() -> None:
    """Import every module of this package once, so each format registers itself."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        imported = importlib.import_module(f"{__name__}.{module.name}")
        # a module that follows the format contract (VARIANTS and load) without the decorator
        # is registered under its own name
        load, variants = getattr(imported, "load", None), getattr(imported, "VARIANTS", None)
        if callable(load) and isinstance(variants, dict) and not any(
                f.module == imported.__name__ for f in _FORMATS.values()):
            register_format(module.name, variants)(load)


def formats() -> dict[str, Format]:
    """Every registered format, by name."""
    _discover()
    return dict(_FORMATS)


def get_format(name: str) -> Format:
    known = formats()
    if name not in known:
        raise ValueError(f"unknown checkpoint format {name!r}; known: {', '.join(sorted(known)) or 'none'}")
    return known[name]


def check_preprocessing(preprocessing: dict[str, Any], where: str = "preprocessing") -> dict[str, Any]:
    """``preprocessing`` itself when it follows the contract (docs/weights.md); ValueError naming the fault."""
    missing = [key for key in PREPROCESSING_KEYS if key not in preprocessing]
    problems = [f"keys {missing} are missing"] if missing else []
    if not missing:
        if int(preprocessing["input_size"]) < 1:
            problems.append(f"input_size {preprocessing['input_size']} is not positive")
        if preprocessing["resize"] not in RESIZES:
            problems.append(f"resize {preprocessing['resize']!r} is none of {', '.join(RESIZES)}")
        if preprocessing["colour_order"] not in COLOUR_ORDERS:
            problems.append(f"colour_order {preprocessing['colour_order']!r} is none of {', '.join(COLOUR_ORDERS)}")
        if preprocessing["output"] not in OUTPUTS:
            problems.append(f"output {preprocessing['output']!r} is none of {', '.join(OUTPUTS)}")
        if preprocessing["output"] == "two_logits_fake_index" and preprocessing.get("fake_index") not in (0, 1):
            problems.append("output two_logits_fake_index needs fake_index 0 or 1")
        for key in ("mean", "std"):
            value = preprocessing[key]
            if value is not None and len(value) != 3:
                problems.append(f"{key} must be 3 numbers or null, got {value!r}")
        scale = preprocessing["face_scale"]
        if scale is not None and float(scale) < 1.0:
            problems.append(f"face_scale {scale} is below 1 (the crop would cut the face)")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return preprocessing
