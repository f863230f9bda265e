"""FaceForensics++ adapter (``ffpp``).

Layout: ``original_sequences/youtube/<c>/videos/<NNN>.mp4`` (real, group ``youtube``) and
``manipulated_sequences/<method>/<c>/videos/<T>_<S>.mp4`` (fake of original ``<T>``, group
``<method>``); DeepFakeDetection pairs ``original_sequences/actors/<c>/videos/<NN>__<scene>.mp4``
with ``manipulated_sequences/DeepFakeDetection/<c>/videos/<T>_<S>__<scene>__<id>.mp4``. FF++ has
no labels file: the folder is the label and the file name names the original, so every video
found is ``ok``. ``labels`` may name an official split file (``splits/test.json``...) to keep
only its videos, so one FF++ folder gives a training set and a test set.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from facesleuth.io import LABEL_FAKE, LABEL_REAL
from facesleuth.manifests.common import (
    DiskListing,
    ManifestError,
    dataset_root,
    default_split,
    examples,
    finalize,
    make_row,
    video_id_of,
)

log = logging.getLogger(__name__)

DEFAULT_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
DFD = "DeepFakeDetection"
YOUTUBE = "youtube"
ACTORS = "actors"

YOUTUBE_FAKE = re.compile(r"^(\d+)_(\d+)$")
DFD_FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__[^_]+$")


def original_folder(source: str, compression: str) -> PurePosixPath:
    return PurePosixPath("original_sequences") / source / compression / "videos"


def method_folder(method: str, compression: str) -> PurePosixPath:
    return PurePosixPath("manipulated_sequences") / method / compression / "videos"


def original_of(method: str, stem: str, compression: str) -> str | None:
    """The original's video id that a fake's file name names, or None when it does not parse."""
    if method == DFD:
        match = DFD_FAKE.match(stem)
        if match:
            target, _source, scene = match.groups()
            return str(original_folder(ACTORS, compression) / f"{target}__{scene}")
        return None
    match = YOUTUBE_FAKE.match(stem)
    return str(original_folder(YOUTUBE, compression) / match.group(1)) if match else None


def official_split(path: Path) -> set[str]:
    """Video ids (file stems) of an official FF++ split file (``splits/train.json``, ``val.json``,
    ``test.json``: a JSON list of ``[target, source]`` pairs): both originals of each pair and its
    two fakes, ``<target>_<source>`` and ``<source>_<target>``."""
    try:
        pairs = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ManifestError(f"{path}: cannot read the FF++ split file ({err}); it should be a JSON list of "
                            '[target, source] pairs, e.g. [["071", "054"], ...]') from None
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair) for pair in pairs
    ):
        raise ManifestError(f"{path}: an FF++ split file is a JSON list of [target, source] pairs of strings")
    keep = {video for pair in pairs for video in pair}
    keep |= {f"{a}_{b}" for a, b in pairs} | {f"{b}_{a}" for a, b in pairs}
    return keep


def ffpp_manifest(name: str, dataset: dict[str, Any]) -> pd.DataFrame:
    """Originals and the fakes of each configured method present on disk, at one compression."""
    root = dataset_root(name, dataset, "original_sequences/ and manipulated_sequences/")
    compression = str(dataset.get("compression") or "c23")
    methods = list(dataset.get("methods") or DEFAULT_METHODS)
    keep = official_split(root / str(dataset["labels"])) if dataset.get("labels") else None
    split = default_split(dataset)
    disk = DiskListing()

    # DeepFakeDetection's originals are the actors' recordings, not the YouTube ones.
    origin_sources = [YOUTUBE] + ([ACTORS] if DFD in methods else [])
    folders = [(original_folder(src, compression), LABEL_REAL, src) for src in origin_sources]
    folders += [(method_folder(m, compression), LABEL_FAKE, m) for m in methods]

    rows: list[dict[str, Any]] = []
    absent, unnamed = [], []
    for folder, label, group in folders:
        videos = disk.videos(root / str(folder))
        if keep is not None:
            # the official splits list YouTube pairs only: DeepFakeDetection's videos are in none
            videos = [v for v in videos if group not in (ACTORS, DFD) and video_id_of(v) in keep]
        if not videos:
            absent.append(str(folder))
            continue
        for video in videos:
            rel = folder / video
            original = None
            if label == LABEL_FAKE:
                original = original_of(group, video_id_of(video), compression)
                if original is None:
                    unnamed.append(str(rel))
            rows.append(make_row(dataset=name, root=root, rel=rel, label=label, split=split, original=original, group=group))
        log.info("%s: %d video(s) in %s", name, len(videos), folder)
    if absent:
        log.info("%s: no videos in %s (skipped)", name, ", ".join(absent))
    if unnamed:
        log.warning(
            "%d FF++ fake name(s) do not follow <target>_<source>[__<scene>__<id>]: original unknown: %s",
            len(unnamed), examples(unnamed),
        )
    if not rows:
        raise ManifestError(
            f"dataset {name!r}: no videos in {root} under {', '.join(str(f) for f, _, _ in folders)}"
            f"{_compressions_hint(root, compression)}; fix datasets.{name}.root, .compression or .methods"
        )
    return finalize(name, rows, str(root))


def _compressions_hint(root: Path, compression: str) -> str:
    """Which compression folders do exist, when the configured one is absent (c23 vs c40 mix-ups)."""
    found = sorted(
        {p.name for p in root.glob("*_sequences/*/*") if p.is_dir() and (p / "videos").is_dir()} - {compression}
    )
    return f" (compressions found: {', '.join(found)})" if found else ""
