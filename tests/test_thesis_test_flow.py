"""The thesis's test flow (2.4.2) whole, with config/thesis.yaml's settings, on real video at full
resolution: every frame, IoU > 0.75 between consecutive frames, tracks longer than 50 frames,
about 50 faces per video.

The expected values were checked by hand: frames 0, 26, 52, 78 and 104 of the street clip and
0, 150 and 280 of FF++ 004 were written to PNG with every MTCNN box (size and probability)
drawn on them and looked at, and the people in them counted and followed from frame to frame.
Each expectation below says what was seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import facesleuth.extract.flows as extract_module
from facesleuth.extract.detect import FaceDetector
from facesleuth.extract.flows import extract_video
from facesleuth.extract.tracking import link_tracks

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def thesis():
    """config/thesis.yaml's extraction settings (on the CPU), checked to be the thesis's test flow."""
    extraction = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())["extraction"]
    flow = dict(extraction["test_flow"])
    assert (flow["frame_step"], flow["iou_threshold"], flow["min_track_length"], flow["faces_per_video"]) == (1, 0.75, 50, 50)
    assert flow["max_frames"] is None  # the whole video
    detection = {**extraction["detection"], "device": "cpu"}
    # The train flow's filters apply to the test flow too (config/thesis.yaml says why).
    assert (detection["min_face_size"], detection["min_probability"], detection["detect_max_side"]) == (70, 0.9, 960)
    return FaceDetector.from_config(detection).load(), flow


class LinkSpy:
    """Records the boxes the test flow links (and links them as the flow does)."""

    def __init__(self):
        self.detections = None

    def __call__(self, detections, iou_threshold):
        self.detections = [np.asarray(boxes) for boxes in detections]
        return link_tracks(detections, iou_threshold)


def test_ffpp_004_one_presenter_one_track_of_every_frame_50_faces(samples, thesis):
    """FF++ 004 (1280x720, 309 frames): a news presenter facing the camera, seen by hand in every
    looked-at frame with his face (about 125 x 160 px) at x 727-879, y 129-308. Beside him MTCNN
    also fires on a light of the night skyline (about 45 px, x 973-1019, y 272-328, probability
    0.86-0.96) and, late in the clip, on Chewbacca in the inset picture (top left, probability 0.74):
    neither is a person, and both are smaller than 70 px or below 0.9. Expected: one track of all
    309 frames, 50 faces from it, evenly spread over the video, all on the presenter."""
    detector, flow = thesis
    path = samples / "ffpp/original_sequences/youtube/c23/videos/004.mp4"
    faces, status = extract_video(path, "test", detector, flow, label=0, video_id="004")
    status = status.iloc[0]
    assert status["status"] == "ok", status["message"]
    assert status["frames_total"] == status["frames_read"] == 309  # every frame
    assert "(lengths 309)" in status["message"]  # one sampled track, every frame long
    assert len(faces) == status["faces_kept"] == 50
    assert set(faces["track"]) == {0}
    # Evenly spread: the middle of each of 50 equal segments of the 309 frames.
    assert faces["frame"].tolist() == [int((i + 0.5) * 309 / 50) for i in range(50)]
    # On the presenter (crop box = face box + 30 px margin): centre inside his hand-checked face area.
    centre_x, centre_y = (faces["x0"] + faces["x1"]) / 2, (faces["y0"] + faces["y1"]) / 2
    assert centre_x.between(727, 879).all() and centre_y.between(129, 308).all()
    assert (faces["prob"] >= 0.9).all()


def test_street_walkers_break_the_075_iou_tracks_so_no_track_is_kept(samples, thesis, monkeypatch):
    """multiface/street.mp4 (1920x1080, 105 frames): people walk towards the camera. Seen by hand:
    five faces are visible in most frames (a boy in a blue hoodie in the centre, a red-haired man,
    a white-haired woman on the left, a man in glasses and a man behind him on the right), 35 to
    100 px; only the boy (64 px at frame 26, 73 at 52, 86 at 78, 100 at 104, ending at about
    x 747-847, y 635-766) and the red-haired man (who looks down at the end) pass 70 px for long.
    A walking face's MTCNN box moves and changes size from frame to frame: its overlap with the
    previous frame's box is about 0.8 and falls to 0.75 or less in about one step in five, so at
    the thesis's IoU > 0.75 every track breaks before 50 frames and the video gets ``no_track``.
    The boy is there all along: linking the same boxes at IoU > 0.6 follows him from frame 42
    (when his face reaches 70 px) to the last frame."""
    detector, flow = thesis
    spy = LinkSpy()
    monkeypatch.setattr(extract_module, "link_tracks", spy)
    faces, status = extract_video(samples / "multiface/street.mp4", "test", detector, flow, label=0, video_id="street")
    status = status.iloc[0]
    assert status["frames_total"] == status["frames_read"] == 105  # every frame
    assert status["status"] == "no_track", status["message"]
    assert len(faces) == 0 and "a track needs more than 50" in status["message"]
    at_thesis = link_tracks(spy.detections, 0.75)
    assert max(len(track) for track in at_thesis) < 50

    looser = link_tracks(spy.detections, 0.6)
    boy = max(looser, key=len)
    first, last = boy[0][0], boy[-1]
    assert len(boy) > 50 and 30 <= first <= 52 and last[0] == 104
    x0, y0, x1, y1 = spy.detections[104][last[1]]
    assert 700 <= (x0 + x1) / 2 <= 900 and 600 <= (y0 + y1) / 2 <= 800  # the boy's face in the last frame
    assert all(min(b[2] - b[0], b[3] - b[1]) >= 70 for boxes in spy.detections for b in boxes)
