"""What ``facesleuth scan``, ``serve`` and ``worker`` share: usage errors, the frames scanned, the
scanning limits, the classifier backend, the detection settings of ``--config`` and ``--threads``.

Imports nothing heavy at module level, so that building the commands' parsers (``--help``) loads
neither torch nor the scanner.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from facesleuth import registry
from facesleuth.config import ConfigError, config_section, extraction_settings, section_defaults


class UsageError(Exception):
    """A bad option: the message says which and what to do (exit 2)."""


#: The limits on one input: flag, config key under scan.limits, type, what it bounds.
LIMIT_FLAGS = (
    ("--max-pixels", "max_pixels", int, "largest frame or image in pixels, checked before decoding (too_large)"),
    ("--max-seconds", "max_seconds", float, "longest video in seconds (too_long)"),
    ("--max-frames", "max_frames", int, "most frames decoded for one video, skipped ones included (too_long)"),
    ("--input-seconds", "input_seconds", float, "wall-clock seconds one input may take (timed_out)"),
)

THREADS_HELP = ("CPU threads for torch, ONNX Runtime and OpenVINO in each scanning process, or auto (default): the cores "
                "the 1-minute load average leaves idle, shared among the scanning processes, at least 1")


def add_frame_arguments(parser: argparse.ArgumentParser) -> None:
    """``--frames``, ``--frame-policy`` and ``--max-frame-offset``: which frames of a video are
    scanned (scan, serve and worker alike; the defaults are ScanOptions')."""
    parser.add_argument("--frames", type=int, default=registry.SCAN_FRAMES, metavar="N",
                        help="evenly spaced frames per video to detect and track faces on (default %(default)s)")
    parser.add_argument("--frame-policy", choices=list(registry.FRAME_POLICIES), default=registry.SCAN_FRAME_POLICY,
                        help="nearest_reference: each sampled frame is the nearest one decoded with non-reference "
                             "frames skipped, within --max-frame-offset (about half the decoding of H.264 with "
                             "B-frames); exact: the sampled frame itself (default %(default)s)")
    parser.add_argument("--max-frame-offset", type=int, default=registry.MAX_FRAME_OFFSET, metavar="N",
                        help="nearest_reference: frames a used frame may lie from the sampled one (default %(default)s)")


def frame_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ScanOptions fields the flags of :func:`add_frame_arguments` set (checked by ScanOptions.check)."""
    return {"frames": args.frames, "frame_policy": args.frame_policy, "max_frame_offset": args.max_frame_offset}


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend``: what runs the face classifier (scan, serve and worker alike)."""
    parser.add_argument("--backend", choices=list(registry.INFERENCE_BACKENDS), default=registry.AUTO_BACKEND,
                        help="what runs the face classifier: torch, onnx (ONNX Runtime) or openvino (OpenVINO, "
                             "which runs MTCNN too); the last two on the CPU, on a model exported once and cached in "
                             "the run folder's onnx/, or the user cache when that cannot be written. auto (default): "
                             "on the CPU openvino when it is installed (pip install 'facesleuth[openvino]'), else onnx "
                             "when onnxruntime is (pip install 'facesleuth[onnx]'), else torch; torch on a GPU")


def backend_setting(backend: str, device: str) -> str:
    """The backend ``--backend`` resolves to on ``--device``; UsageError where it cannot run."""
    from facesleuth.runtime import resolve_device
    from facesleuth.evaluate.inference import BackendError, resolve_backend

    try:
        return resolve_backend(backend, resolve_device(device))
    except RuntimeError as err:
        raise UsageError(f"--device: {err}") from None
    except BackendError as err:
        raise UsageError(str(err)) from None


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of :data:`LIMIT_FLAGS`; each overrides the config's scan.limits and takes ``none``."""
    defaults = section_defaults("scan", "limits")
    for flag, key, _, what in LIMIT_FLAGS:
        parser.add_argument(flag, dest=key, metavar="N", default=None,
                            help=f"{what}; default {defaults[key]} (config scan.limits.{key}), none for no limit")


def limit_settings(args: argparse.Namespace, config: Path | None) -> dict[str, Any]:
    """The limits in force: flags over the config's scan.limits over the schema's defaults."""
    try:
        limits = dict(config_section(config, "scan")["limits"]) if config is not None else section_defaults(
            "scan", "limits")
    except (OSError, ValueError, ConfigError, yaml.YAMLError) as err:
        raise UsageError(f"--config {config}: {err}") from None
    for flag, key, kind, _ in LIMIT_FLAGS:
        value = getattr(args, key, None)
        if value is None:
            continue
        if str(value).lower() == "none":
            limits[key] = None
            continue
        try:
            number = kind(value)
        except ValueError:
            number = 0
        if not number > 0:
            raise UsageError(f"{flag} must be a positive {'whole ' if kind is int else ''}number or none, got {value!r}")
        limits[key] = number
    return limits


def detection_settings(config: Path | None) -> dict[str, Any]:
    """The settings the config's ``extraction.detection`` names, validated; {} without --config.

    Only the keys the config writes are returned, so where it is silent the run's recorded crop
    settings (run.yaml ``face_crops``), else the package's defaults apply, the same with or without
    a config (the scanner's CPU batch size among them).
    """
    if config is None:
        return {}
    if not config.is_file():
        raise UsageError(f"--config {config}: no such file; name a facesleuth config YAML (e.g. config/config.yaml)")
    try:
        validated = extraction_settings(config)["detection"]
        written = ((yaml.safe_load(config.read_text()) or {}).get("extraction") or {}).get("detection") or {}
    except (OSError, ValueError, ConfigError, yaml.YAMLError) as err:
        raise UsageError(f"--config {config}: {err}") from None
    return {key: validated[key] for key in written}


def thread_count(value: str, processes: int = 1) -> int:
    """``--threads``: a number, or ``auto``: the cores the 1-minute load average leaves idle,
    shared among ``processes`` scanning processes, at least 1.

    Why idle cores: MTCNN runs thousands of tiny operations, each a parallel region whose threads
    wait for each other; on busy cores every wait costs a scheduling slice, so more threads than
    idle cores make detection and classification slower, not faster (benchmarks/README.md).
    """
    if value == "auto":
        cores = os.cpu_count() or 1
        try:
            idle = cores - int(os.getloadavg()[0] + 0.5)
        except OSError:  # no load average on this platform
            idle = cores
        return max(1, idle // max(1, processes))
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise UsageError(f"--threads must be a positive number or auto, got {value!r}")
    return threads
