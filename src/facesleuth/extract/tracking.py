"""Face tracks by box overlap, and proportional sampling of faces from them (thesis 2.4.2).

Pure functions on boxes (x0, y0, x1, y1), so they are testable without any image: the test
flow links the faces of consecutive processed frames into tracks when their IoU exceeds a
threshold (0.75 in the thesis), keeps tracks longer than ``min_track_length`` frames (50) and
shares about ``faces_per_video`` samples (50) among them in proportion to their length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# A track member: (position of the processed frame in the detection sequence, face index there).
Member = tuple[int, int]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1); 0 for degenerate boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - intersection
    return float(intersection / union) if union > 0 else 0.0


def link_tracks(detections_per_frame: Sequence[Sequence[Sequence[float]]], iou_threshold: float) -> list[list[Member]]:
    """Group faces into tracks.

    ``detections_per_frame[p]`` holds the boxes found in the p-th processed frame. A face
    continues the track whose box in the previous processed frame overlaps it with IoU above
    ``iou_threshold``; pairs are matched greedily, best IoU first, one face per track. A face
    left unmatched starts a new track; a track with no match in a frame ends (no gap bridging,
    as the thesis compares two consecutive frames only).

    Returns the tracks in order of their first frame, each a list of (position, face index).
    """
    tracks: list[list[Member]] = []
    active: dict[int, Sequence[float]] = {}  # track id -> its box in the previous processed frame
    for position, boxes in enumerate(detections_per_frame):
        pairs = []
        for track_id, last_box in active.items():
            for face, box in enumerate(boxes):
                overlap = iou(last_box, box)
                if overlap > iou_threshold:
                    pairs.append((overlap, track_id, face))
        # Best IoU first; ties broken by older track, then lower face index, so runs repeat.
        pairs.sort(key=lambda item: (-item[0], item[1], item[2]))
        matched_tracks: set[int] = set()
        matched_faces: set[int] = set()
        next_active: dict[int, Sequence[float]] = {}
        for _, track_id, face in pairs:
            if track_id in matched_tracks or face in matched_faces:
                continue
            matched_tracks.add(track_id)
            matched_faces.add(face)
            tracks[track_id].append((position, face))
            next_active[track_id] = boxes[face]
        for face, box in enumerate(boxes):
            if face not in matched_faces:
                tracks.append([(position, face)])
                next_active[len(tracks) - 1] = box
        active = next_active
    return tracks


def proportional_counts(lengths: Sequence[int], total: int) -> list[int]:
    """Share ``total`` among items in proportion to ``lengths`` (largest-remainder rounding),
    never giving an item more than its length. 100 and 200 sharing 50 -> 17 and 33 (thesis 2.4.2
    prints 17 and 32, which no rounding of the exact share 33.33 gives; see docs/thesis.md)."""
    lengths = [int(n) for n in lengths]
    if not lengths or total <= 0:
        return [0] * len(lengths)
    available = sum(lengths)
    if total >= available:
        return list(lengths)
    quotas = [total * n / available for n in lengths]
    counts = [math.floor(q) for q in quotas]
    left = total - sum(counts)
    # Largest remainder first; ties to the longer item, then the earlier one.
    order = sorted(range(len(lengths)), key=lambda i: (-(quotas[i] - counts[i]), -lengths[i], i))
    for i in order:
        if left == 0:
            break
        if counts[i] < lengths[i]:
            counts[i] += 1
            left -= 1
    return counts


def evenly_spaced(items: Sequence[T], n: int) -> list[T]:
    """``n`` items spread evenly (middle of each of n equal segments); all when n >= len."""
    if n >= len(items):
        return list(items)
    if n <= 0:
        return []
    positions = np.floor((np.arange(n) + 0.5) * len(items) / n).astype(int)
    return [items[i] for i in positions]


def sample_track_faces(
    tracks: Sequence[Sequence[T]], min_track_length: int, faces_per_video: int
) -> dict[int, list[T]]:
    """Faces to keep per track: tracks longer than ``min_track_length`` share
    ``faces_per_video`` in proportion to their length, evenly spaced within each track.

    Returns ``{index of the track in tracks: its sampled members}`` for the kept tracks, in
    track order.
    """
    kept = [i for i, track in enumerate(tracks) if len(track) > min_track_length]
    counts = proportional_counts([len(tracks[i]) for i in kept], faces_per_video)
    return {i: evenly_spaced(list(tracks[i]), n) for i, n in zip(kept, counts)}
