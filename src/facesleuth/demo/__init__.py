"""The embedded demo dataset: DFDC-, DFDC-test- and Celeb-DF-v2-style folders generated from
photos that ship inside the dependencies (public-domain and CC0 portraits; tiny LFW crops only as
face-swap donors), so the whole study runs on a fresh machine with no dataset, on a CPU, in
minutes.

:func:`generate_demo` writes ``<out>/dfdc_train``, ``<out>/dfdc_test`` and ``<out>/Celeb-DF-v2``
(layouts in :mod:`facesleuth.demo.layouts`) and, last, ``<out>/demo.json``, the rule's output: a
summary with one record per video (label, original, manipulation, donor, tags, size). Everything
is a function of the settings and the seed: the same settings give byte-identical files.

Modules: :mod:`.sources` (photos, landmarks, textures), :mod:`.rendering` (real videos and the
encoder), :mod:`.fakes` (face swap, self-blending), :mod:`.augmenters` (the test set's augmenters
and distractors), :mod:`.production` (casting per dataset), :mod:`.layouts` (the folders).
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from facesleuth import __version__
from facesleuth.config import section_defaults
from facesleuth.demo import layouts
from facesleuth.io import write_json

log = logging.getLogger(__name__)

DEMO_JSON = "demo.json"
DATASET_ORDER = ("dfdc_train", "dfdc_test", "celebdf")  # of demo.json's records
SOURCES = {
    "grace_hopper": "matplotlib: mpl-data/sample_data/grace_hopper.jpg (US Navy photo, public domain)",
    "astronaut": "scikit-image: data/astronaut.png (NASA photo, public domain)",
    "camera": "scikit-image: data/camera.png (CC0, photographer Lav Varshney)",
    "lfw": "scikit-image: data/lfw_subset.npy (Labeled Faces in the Wild crops, 25x25, as scikit-image ships them; "
    "face-swap donors and overlaid faces only)",
}


def demo_defaults() -> dict[str, Any]:
    """The ``demo`` section's defaults, read from the config schema (the one source of truth)."""
    return section_defaults("demo")


def resolve_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check what the schema cannot (even frame sides), naming the key."""
    resolved = {**demo_defaults(), **dict(settings)}
    width, height = (int(v) for v in resolved["size"])
    if width % 2 or height % 2:
        raise ValueError(f"demo.size: {[width, height]} has an odd side; the MPEG-4 encoder needs even sides")
    for key in ("train_parts", "originals_per_part", "fakes_per_original"):
        if int(resolved[key]) < 1:
            raise ValueError(f"demo.{key}: must be at least 1, got {resolved[key]}")
    for key in ("test_videos", "celebdf_videos"):
        if int(resolved[key]) < 4:
            raise ValueError(f"demo.{key}: must be at least 4, got {resolved[key]}")
    if int(resolved["frames"]) < 8:
        raise ValueError(f"demo.frames: must be at least 8, got {resolved['frames']}")
    if min(width, height) < 160:
        log.warning(
            "demo.size %s: faces will be about %d px, under the pipeline's usual min_face_size; use 240 or more",
            [width, height], int(0.36 * min(width, height)),
        )
    resolved["size"] = [width, height]
    return resolved


def generate_demo(out: str | Path, settings: dict[str, Any], workers: int = 1) -> dict[str, Any]:
    """Generate the demo datasets into ``out`` and return the summary written to ``out/demo.json``.

    ``settings`` is the validated ``demo`` config section (missing keys take the schema's
    defaults). The three dataset folders are built in ``out/.staging`` and moved into place, so
    an interrupted run never leaves a half-built dataset behind a stale ``demo.json``.
    ``workers`` > 1 builds the DFDC train parts and the two test sets in that many processes;
    every video depends on the seed and its own key only, so the files are the same.
    """
    settings = resolve_settings(settings)
    seed = int(settings["seed"])
    out = Path(out)
    staging = out / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    # The largest tasks first, so two workers finish together; records keep the canonical order.
    tasks = [("dfdc_test",), *(("dfdc_train", part) for part in range(int(settings["train_parts"]))), ("celebdf",)]
    if workers > 1 and len(tasks) > 1:
        # fork, not spawn: spawn re-runs the calling script, and a Snakemake script has no
        # __main__ guard
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_build, task, staging, settings, seed) for task in tasks]
            built = dict(zip(tasks, (future.result() for future in futures)))
    else:
        built = {task: _build(task, staging, settings, seed) for task in tasks}
    records = []
    for task in sorted(tasks, key=lambda t: (DATASET_ORDER.index(t[0]), t[1:])):
        task_records, seconds = built[task]
        records += task_records
        log.info("demo %s: %d videos in %.1f s", " part ".join(map(str, task)), len(task_records), seconds)
    for folder in (layouts.DFDC_TRAIN_DIR, layouts.DFDC_TEST_DIR, layouts.CELEBDF_DIR):
        target = out / folder
        if target.exists():
            shutil.rmtree(target)
        (staging / folder).rename(target)
    staging.rmdir()
    summary = {
        "generator": "facesleuth.demo",
        "facesleuth_version": __version__,
        "seed": seed,
        "settings": settings,
        "sources": SOURCES,
        "datasets": _dataset_summaries(records),
        "videos": records,
    }
    write_json(summary, out / DEMO_JSON)
    log.info("demo dataset: %d videos in %s in %.1f s", len(records), out, time.perf_counter() - started)
    return summary


def _build(task: tuple, staging: Path, settings: dict[str, Any], seed: int) -> tuple[list[dict], float]:
    """One generation task (a dataset, or one DFDC train part): its records and seconds."""
    step = time.perf_counter()
    name, *part = task
    if name == "dfdc_train":
        records = layouts.write_dfdc_train_part(staging, settings, seed, *part)
    elif name == "dfdc_test":
        records = layouts.write_dfdc_test(staging, settings, seed)
    else:
        records = layouts.write_celebdf(staging, settings, seed)
    return records, time.perf_counter() - step


def _dataset_summaries(records: list[dict]) -> dict[str, dict]:
    folders = {
        "dfdc_train": (layouts.DFDC_TRAIN_DIR, "dfdc_train", None),
        "dfdc_test": (layouts.DFDC_TEST_DIR, "dfdc_test", "labels.csv"),
        "celebdf": (layouts.CELEBDF_DIR, "celebdf", "List_of_testing_videos.txt"),
    }
    summaries = {}
    for dataset, (root, fmt, labels) in folders.items():
        rows = [r for r in records if r["dataset"] == dataset]
        summary = {
            "root": root,
            "format": fmt,
            "labels": labels,
            "videos": len(rows),
            "real": sum(r["label"] == 0 for r in rows),
            "fake": sum(r["label"] == 1 for r in rows),
            "methods": {m: sum(r["method"] == m for r in rows) for m in sorted({r["method"] for r in rows if r["method"]})},
        }
        if dataset == "dfdc_test":
            summary["tagged"] = sum(bool(r["augmenters"] or r["distractors"]) for r in rows)
        if dataset == "celebdf":
            summary["listed"] = sum(bool(r.get("listed")) for r in rows)
        summaries[dataset] = summary
    return summaries
