"""The demo's three dataset folders, each in its real dataset's layout (see docs: formats).

- ``dfdc_train/dfdc_train_part_<N>/``: videos with random 10-letter names and ``metadata.json``
  (``label`` REAL/FAKE, ``split`` train, ``original`` for fakes), every original in its part;
- ``dfdc_test/``: videos and ``labels.csv`` (``filename,label,augmenters,distractors``; label 1
  fake, 0 real; ``;``-separated tags), about half fake, about 79 % of videos tagged;
- ``Celeb-DF-v2/``: ``Celeb-real/id<T>_<NNNN>.mp4``, ``YouTube-real/<NNNNN>.mp4``,
  ``Celeb-synthesis/id<T>_id<S>_<NNNN>.mp4`` (a swap of ``Celeb-real/id<T>_<NNNN>`` with identity
  S's face) and ``List_of_testing_videos.txt`` (``1`` real, ``0`` fake), unbalanced like Celeb-DF
  (about one real in three); one real and one fake are left off the list, as Celeb-DF's own
  training videos are.

Each builder returns one record per video (what ``demo.json`` lists).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facesleuth.demo import augmenters, fakes, production
from facesleuth.demo.production import CELEBDF, DFDC_TEST, TRAIN, rng_for
from facesleuth.demo.rendering import write_video
from facesleuth.demo.sources import FacePhoto, load_lfw_faces
from facesleuth.io import write_json, write_text_atomic

log = logging.getLogger(__name__)

DFDC_TRAIN_DIR = "dfdc_train"
DFDC_TEST_DIR = "dfdc_test"
CELEBDF_DIR = "Celeb-DF-v2"
LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def dfdc_names(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct DFDC-style file names (10 random lowercase letters + .mp4)."""
    names: list[str] = []
    while len(names) < count:
        name = "".join(rng.choice(LETTERS, size=10)) + ".mp4"
        if name not in names:
            names.append(name)
    return names


def _progress(total: int, what: str) -> tqdm:
    return tqdm(total=total, desc=f"demo {what}", unit="video", disable=None, leave=False)


def _save(frames: list[np.ndarray], fps: float, path: Path, out: Path, record: dict) -> dict:
    write_video(frames, path, fps)
    height, width = frames[0].shape[:2]
    return {
        "path": path.relative_to(out).as_posix(),
        **record,
        "frames": len(frames),
        "width": width,
        "height": height,
        "fps": round(float(fps), 4),
    }


def _record(dataset: str, label: int, identity: str, *, original: str | None = None, method: str | None = None,
            donor: str | None = None, tags: tuple[list[str], list[str]] = ([], [])) -> dict:
    return {
        "dataset": dataset,
        "label": label,
        "original": original,
        "method": method,
        "identity": identity,
        "donor": donor,
        "augmenters": list(tags[0]),
        "distractors": list(tags[1]),
    }


def _donor_for(method: str, target: FacePhoto, family: production.Family, rng: np.random.Generator) -> FacePhoto | None:
    return production.pick_donor(target, family, rng) if method == fakes.SWAP else None


def _donor_name(donor: FacePhoto | None) -> str | None:
    return None if donor is None else donor.name.removesuffix("+look")


# ------------------------------------------------------------------ DFDC train parts


def write_dfdc_train_part(out: Path, settings: dict, seed: int, part: int) -> list[dict]:
    """DFDC train part ``part``: ``originals_per_part`` reals, each with ``fakes_per_original``
    fakes. A function of the seed and the part's index alone, so parts can be written in any
    order or side by side."""
    strength = float(settings["artefact_strength"])
    photos = production.photos()
    n_originals, n_fakes = int(settings["originals_per_part"]), int(settings["fakes_per_original"])
    records = []
    part_dir = out / DFDC_TRAIN_DIR / f"dfdc_train_part_{part}"
    names = iter(dfdc_names(rng_for(seed, "dfdc_train", part, "names"), n_originals * (1 + n_fakes)))
    metadata: dict[str, dict] = {}
    with _progress(n_originals * (1 + n_fakes), f"dfdc_train part {part}") as bar:
        for index in range(n_originals):
            rng = rng_for(seed, "dfdc_train", part, index)
            photo = photos[(part * n_originals + index) % len(photos)]
            video = production.film(photo, TRAIN, settings, rng)
            real_name = next(names)
            metadata[real_name] = {"label": "REAL", "split": "train", "original": None}
            real = _save(video.frames, video.fps, part_dir / real_name, out, _record("dfdc_train", 0, photo.name))
            records.append(real)
            bar.update()
            first = int(rng.integers(len(fakes.METHODS)))
            for k in range(n_fakes):
                method = production.pick_method(photo, rng, fakes.METHODS[(first + k) % len(fakes.METHODS)])
                donor = _donor_for(method, photo, TRAIN, rng)
                frames = production.manipulate(video, method, donor, TRAIN, rng, strength)
                fake_name = next(names)
                metadata[fake_name] = {"label": "FAKE", "split": "train", "original": real_name}
                record = _record(
                    "dfdc_train", 1, photo.name, original=real["path"], method=method, donor=_donor_name(donor)
                )
                records.append(_save(frames, video.fps, part_dir / fake_name, out, record))
                bar.update()
    write_json(metadata, part_dir / "metadata.json")
    return records


# ------------------------------------------------------------------ DFDC-style test set


def write_dfdc_test(out: Path, settings: dict, seed: int) -> list[dict]:
    """``test_videos`` videos, half of them fakes of the others, most with augmenters/distractors."""
    strength = float(settings["artefact_strength"])
    photos = production.photos()
    total = int(settings["test_videos"])
    n_fakes = total // 2
    n_reals = total - n_fakes
    root = out / DFDC_TEST_DIR
    names = iter(dfdc_names(rng_for(seed, "dfdc_test", "names"), total))
    records = []
    with _progress(total, "dfdc_test") as bar:
        for index in range(n_reals):
            rng = rng_for(seed, "dfdc_test", index)
            photo = photos[(index + 1) % len(photos)]  # another cycle than training's
            video = production.film(photo, DFDC_TEST, settings, rng)
            tags = augmenters.draw_tags(rng)
            frames, fps = production.perturb(video.frames, video.fps, video.boxes, *tags, rng)
            real = _save(frames, fps, root / next(names), out, _record("dfdc_test", 0, photo.name, tags=tags))
            records.append(real)
            bar.update()
            if index >= n_fakes:
                continue
            method = production.pick_method(photo, rng, fakes.METHODS[index % len(fakes.METHODS)])
            donor = _donor_for(method, photo, DFDC_TEST, rng)
            fake_frames = production.manipulate(video, method, donor, DFDC_TEST, rng, strength)
            tags = augmenters.draw_tags(rng)
            frames, fps = production.perturb(fake_frames, video.fps, video.boxes, *tags, rng)
            record = _record(
                "dfdc_test", 1, photo.name, original=real["path"], method=method, donor=_donor_name(donor), tags=tags
            )
            records.append(_save(frames, fps, root / next(names), out, record))
            bar.update()
    rows = sorted(records, key=lambda r: r["path"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", "label", "augmenters", "distractors"])
    for r in rows:
        writer.writerow([Path(r["path"]).name, r["label"], ";".join(r["augmenters"]), ";".join(r["distractors"])])
    write_text_atomic(buffer.getvalue(), root / "labels.csv")
    return records


# ------------------------------------------------------------------ Celeb-DF-v2 layout


def celebdf_counts(total: int) -> dict[str, int]:
    """Listed videos per folder: about one real in three (a quarter of them YouTube-real)."""
    reals = max(2, round(total / 3))
    youtube = max(1, reals // 4)
    return {"celeb_real": reals - youtube, "youtube_real": youtube, "synthesis": total - reals}


def write_celebdf(out: Path, settings: dict, seed: int) -> list[dict]:
    """``celebdf_videos`` listed videos (swaps only, cleaner than DFDC's) plus two unlisted."""
    strength = float(settings["artefact_strength"])
    frontal = production.frontal_photos()
    photos = production.photos()
    lfw = load_lfw_faces()
    counts = celebdf_counts(int(settings["celebdf_videos"]))
    root = out / CELEBDF_DIR
    # Identities: id<i> is the i-th frontal photo, then the LFW donor pool (donors only).
    donor_ids = {p.name: i for i, p in enumerate(frontal)}
    donor_ids.update({lfw[j].name: len(frontal) + k for k, j in enumerate(CELEBDF.lfw_donors)})
    n_targets = counts["celeb_real"] + 1  # the last one, with one fake, stays off the list
    fakes_of = [0] * n_targets
    for j in range(counts["synthesis"]):
        fakes_of[j % counts["celeb_real"]] += 1
    fakes_of[-1] = 1
    records = []
    with _progress(sum(counts.values()) + 2, "Celeb-DF-v2") as bar:
        for index in range(n_targets):
            rng = rng_for(seed, "celebdf", "celeb", index)
            photo = frontal[index % len(frontal)]
            target_id, number = index % len(frontal), index // len(frontal)
            listed = index < counts["celeb_real"]
            video = production.film(photo, CELEBDF, settings, rng)
            path = root / "Celeb-real" / f"id{target_id}_{number:04d}.mp4"
            real = _save(video.frames, video.fps, path, out, _record("celebdf", 0, photo.name) | {"listed": listed})
            records.append(real)
            bar.update()
            used: set[int] = set()
            for _ in range(fakes_of[index]):
                while True:  # a donor identity not yet used on this target (file names must differ)
                    donor = production.pick_donor(photo, CELEBDF, rng)
                    donor_id = donor_ids[_donor_name(donor)]
                    if donor_id not in used:
                        break
                used.add(donor_id)
                frames = production.manipulate(video, fakes.SWAP, donor, CELEBDF, rng, strength)
                path = root / "Celeb-synthesis" / f"id{target_id}_id{donor_id}_{number:04d}.mp4"
                record = _record("celebdf", 1, photo.name, original=real["path"], method=fakes.SWAP, donor=_donor_name(donor))
                records.append(_save(frames, video.fps, path, out, record | {"listed": listed}))
                bar.update()
        for index in range(counts["youtube_real"]):
            rng = rng_for(seed, "celebdf", "youtube", index)
            photo = photos[(index + 2) % len(photos)]
            video = production.film(photo, CELEBDF, settings, rng)
            path = root / "YouTube-real" / f"{index:05d}.mp4"
            records.append(_save(video.frames, video.fps, path, out, _record("celebdf", 0, photo.name) | {"listed": True}))
            bar.update()
    lines = [
        f"{1 - r['label']} {Path(r['path']).relative_to(CELEBDF_DIR).as_posix()}"
        for r in sorted(records, key=lambda r: r["path"])
        if r["listed"]
    ]
    write_text_atomic("\n".join(lines) + "\n", root / "List_of_testing_videos.txt")
    return records
