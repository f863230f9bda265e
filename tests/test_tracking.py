"""Tracker and sampler on hand-made boxes (thesis 2.4.2), no images needed."""

from __future__ import annotations

import itertools
import math

import pytest

from facesleuth.extract.tracking import (
    evenly_spaced,
    iou,
    link_tracks,
    proportional_counts,
    sample_track_faces,
)


def box(x: float, y: float, size: float = 100.0) -> list[float]:
    return [x, y, x + size, y + size]


def test_iou_identical_disjoint_and_partial():
    assert iou(box(0, 0), box(0, 0)) == pytest.approx(1.0)
    assert iou(box(0, 0), box(200, 200)) == 0.0
    # 100x100 boxes shifted by 50 px: intersection 50x100, union 15000
    assert iou(box(0, 0), box(50, 0)) == pytest.approx(5000 / 15000)
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # degenerate, no division by zero


def test_two_steady_faces_make_two_tracks():
    frames = [[box(10 + t, 10), box(500 + t, 10)] for t in range(5)]
    tracks = link_tracks(frames, iou_threshold=0.75)
    assert tracks == [[(t, 0) for t in range(5)], [(t, 1) for t in range(5)]]


def test_tracks_follow_overlap_not_list_order():
    # The detector lists faces in any order; the right face is face 0 in odd frames.
    frames = []
    for t in range(6):
        left, right = box(10 + 2 * t, 10), box(500 - 2 * t, 10)
        frames.append([left, right] if t % 2 == 0 else [right, left])
    tracks = link_tracks(frames, iou_threshold=0.75)
    assert len(tracks) == 2
    left_track = tracks[0]
    assert [face for _, face in left_track] == [0, 1, 0, 1, 0, 1]
    assert [face for _, face in tracks[1]] == [1, 0, 1, 0, 1, 0]


def test_crossing_faces_swap_over_at_best_iou():
    # Two faces move towards each other and cross; at each frame every face goes to the
    # track whose previous box overlaps it most (greedy by best IoU, one face per track).
    frames = [[box(100 + 20 * t, 0), box(300 - 20 * t, 0)] for t in range(11)]
    tracks = link_tracks(frames, iou_threshold=0.5)
    assert len(tracks) == 2
    for track in tracks:
        assert [p for p, _ in track] == list(range(11))
    # The first track keeps moving right: its last box is the one that started left.
    last_position, last_face = tracks[0][-1]
    assert frames[last_position][last_face][0] == pytest.approx(300)


def test_greedy_assignment_gives_contested_face_to_best_iou():
    # Two tracks end near the same new face; it continues the better overlapping one, the
    # other track ends, and the leftover face starts a new track.
    frames = [
        [box(0, 0), box(30, 0)],
        [box(28, 0), box(600, 600)],
    ]
    tracks = link_tracks(frames, iou_threshold=0.3)
    assert tracks == [[(0, 0)], [(0, 1), (1, 0)], [(1, 1)]]


def test_threshold_is_strict_and_a_gap_ends_a_track():
    shifted = box(100 / 3, 0)  # IoU with box(0, 0) is exactly 0.5
    assert iou(box(0, 0), shifted) == pytest.approx(0.5)
    assert len(link_tracks([[box(0, 0)], [shifted]], iou_threshold=0.5)) == 2
    assert len(link_tracks([[box(0, 0)], [shifted]], iou_threshold=0.49)) == 1
    # A frame without the face ends the track; the face coming back starts a new one.
    frames = [[box(0, 0)], [box(0, 0)], [], [box(0, 0)], [box(0, 0)]]
    assert link_tracks(frames, 0.75) == [[(0, 0), (1, 0)], [(3, 0), (4, 0)]]


def test_ending_and_starting_tracks():
    frames = [[box(0, 0)]] * 3 + [[box(0, 0), box(400, 0)]] * 2 + [[box(400, 0)]] * 4
    tracks = link_tracks(frames, 0.75)
    assert [len(t) for t in tracks] == [5, 6]
    assert tracks[0][-1] == (4, 0)
    assert tracks[1][0] == (3, 1) and tracks[1][-1] == (8, 0)


def test_thesis_example_100_and_200_frames_give_17_and_33_where_the_thesis_prints_17_and_32():
    """Thesis 2.4.2: tracks of 100 and 200 frames, about 50 faces "proportional to the number of
    frames tracked" -> "17 faces of person-A and 32 faces of person-B". The exact shares are
    50 * 100/300 = 16.67 and 50 * 200/300 = 33.33: every rounding of 33.33 (nearest, down, up)
    gives 33 or 34, never 32, and 17 + 32 = 49 is not the 50 asked for. The thesis's 32 cannot
    come from proportional sampling, so the project keeps proportional shares rounded to the
    nearest whole face (largest remainder, so they add up to 50): 17 and 33.
    """
    quotas = [50 * n / 300 for n in (100, 200)]
    assert [round(q) for q in quotas] == [17, 33]  # nearest rounding, computed here
    assert 32 not in {math.floor(quotas[1]), round(quotas[1]), math.ceil(quotas[1])}
    assert proportional_counts([100, 200], 50) == [17, 33]
    tracks = [[(p, 0) for p in range(100)], [(p, 1) for p in range(200)]]
    sampled = sample_track_faces(tracks, min_track_length=50, faces_per_video=50)
    assert {i: len(members) for i, members in sampled.items()} == {0: 17, 1: 33}


@pytest.mark.parametrize(
    "lengths,total",
    [([100, 200], 50), ([51, 52, 53], 50), ([7, 7, 7], 10), ([300], 50), ([60, 1000, 75], 49), ([5, 3], 100)],
)
def test_counts_sum_to_total_and_never_exceed_track(lengths, total):
    counts = proportional_counts(lengths, total)
    assert sum(counts) == min(total, sum(lengths))
    assert all(0 <= c <= n for c, n in zip(counts, lengths))
    # proportional: each within one of its exact quota
    if total < sum(lengths):
        for c, n in zip(counts, lengths):
            assert abs(c - total * n / sum(lengths)) < 1


def test_min_track_length_keeps_only_longer_tracks():
    tracks = [list(range(50)), list(range(51)), list(range(10)), list(range(120))]
    sampled = sample_track_faces(tracks, min_track_length=50, faces_per_video=50)
    assert list(sampled) == [1, 3]  # 50 is not longer than 50
    assert sum(len(v) for v in sampled.values()) == 50
    assert sample_track_faces(tracks, min_track_length=200, faces_per_video=50) == {}


def test_short_video_gives_every_face_of_its_tracks():
    tracks = [list(range(5)), list(range(8))]
    sampled = sample_track_faces(tracks, min_track_length=1, faces_per_video=50)
    assert sampled == {0: list(range(5)), 1: list(range(8))}


def test_samples_are_evenly_spaced_and_distinct():
    members = list(range(200))
    picked = evenly_spaced(members, 33)
    assert len(picked) == len(set(picked)) == 33
    gaps = {b - a for a, b in itertools.pairwise(picked)}
    assert gaps <= {6, 7}  # 200 / 33 = 6.06
    assert evenly_spaced(members, 1) == [100]  # the middle, not the first frame
    assert evenly_spaced([1, 2, 3], 5) == [1, 2, 3]
    assert evenly_spaced([1, 2, 3], 0) == []
