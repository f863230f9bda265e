"""Frame access on the sample videos and on broken files made in tmp_path."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest

from facesleuth.extract.video import (
    EMPTY,
    EXACT_FRAMES,
    UNREADABLE,
    DecodeReport,
    VideoError,
    evenly_spaced_indices,
    every_kth_indices,
    iter_frame_batches,
    iter_sampled_batches,
    prefetch,
    probe,
    read_frames,
    read_image,
    sniff_media,
)

FFPP_519_FAKE = "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"
FFPP_519 = "ffpp/original_sequences/youtube/c23/videos/519.mp4"
FFPP_004 = "ffpp/original_sequences/youtube/c23/videos/004.mp4"
DFDC_PORTRAIT = "dfdc/dfdc_train_part_0/brtujopkby.mp4"
MEGAMIND = "nonhuman/Megamind.avi"


def decord_sequential(path, upto: int) -> list[np.ndarray]:
    """Frames 0..upto decoded one after the other by decord (an independent decoder, no seeking)."""
    from decord import VideoReader, cpu

    reader = VideoReader(str(path), ctx=cpu(0))
    return [reader.next().asnumpy() for _ in range(upto + 1)]


# ---------------------------------------------------------------- index helpers


@pytest.mark.parametrize("total,n", [(300, 10), (751, 10), (10, 10), (7, 10), (1, 10), (301, 3), (11, 1)])
def test_evenly_spaced_indices(total, n):
    indices = evenly_spaced_indices(total, n)
    assert len(indices) == min(total, n)
    assert indices == sorted(set(indices))
    assert all(0 <= i < total for i in indices)
    if n < total:
        gaps = {b - a for a, b in itertools.pairwise(indices)} or {0}
        assert max(gaps) - min(gaps) <= 1  # evenly spaced
        assert indices[0] > 0 and indices[-1] < total - 1  # segment middles, not the black first frame


def test_evenly_spaced_indices_examples():
    assert evenly_spaced_indices(300, 10) == [15, 45, 75, 105, 135, 165, 195, 225, 255, 285]
    assert evenly_spaced_indices(11, 1) == [5]
    assert evenly_spaced_indices(0, 10) == []


def test_every_kth_indices():
    assert every_kth_indices(10, 3) == [0, 3, 6, 9]
    assert every_kth_indices(10, 1, max_frames=4) == [0, 1, 2, 3]
    assert every_kth_indices(100, 2, max_frames=5) == [0, 2, 4, 6, 8]
    assert every_kth_indices(0, 2) == []
    with pytest.raises(ValueError, match="frame step"):
        every_kth_indices(10, 0)


# ---------------------------------------------------------------- probe and reading


def test_probe_landscape_and_portrait(samples):
    info = probe(samples / FFPP_519)
    assert (info.frames, info.width, info.height) == (751, 640, 480)
    assert info.fps == pytest.approx(25.0)
    portrait = probe(samples / DFDC_PORTRAIT)
    assert (portrait.width, portrait.height) == (1080, 1920)
    assert portrait.frames == 300


def test_frames_past_keyframes_match_sequential_decoding(samples):
    """The FF++ trap: frames after the keyframe at 250 must not come out corrupt (seeking
    decoders give grey or green frames here)."""
    path = samples / FFPP_519_FAKE
    wanted = [300, 520]
    frames = read_frames(path, wanted)
    reference = decord_sequential(path, max(wanted))
    for frame, index in zip(frames, wanted):
        assert np.array_equal(frame, reference[index]), f"frame {index} differs from sequential decoding"
    # and the frames are really different pictures, not a repeated one
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 1


def test_avi_frames_are_the_frames_asked_for(samples):
    """decord's get_batch returns frame 23 for 121 on this MPEG-4 AVI; we must not."""
    path = samples / MEGAMIND
    frames = read_frames(path, [121, 13])
    reference = decord_sequential(path, 121)
    assert np.array_equal(frames[0], reference[121])
    assert np.array_equal(frames[1], reference[13])
    assert not np.array_equal(frames[0], reference[23])


def test_batches_order_resize_and_repeats(samples):
    path = samples / FFPP_004
    batches = list(iter_frame_batches(path, [40, 3, 20, 10, 3], batch_size=2, resize_to=(320, 180)))
    assert [b for b, _ in batches] == [[3, 10], [20, 40]]  # increasing, each once
    assert all(frames.shape[1:] == (180, 320, 3) and frames.dtype == np.uint8 for _, frames in batches)
    frames = read_frames(path, [20, 3, 20])
    assert frames.shape == (3, 720, 1280, 3)
    assert np.array_equal(frames[0], frames[2])
    assert not np.array_equal(frames[0], frames[1])


def test_ramped_batches_grow_from_one_frame_and_hold_the_same_frames(samples):
    """ramp_up: batches of 1, 2, 4, then batch_size, each frame where the fixed batches have it."""
    path = samples / FFPP_004
    targets = list(range(0, 100, 6))  # 17 frames
    fixed = list(iter_sampled_batches(path, targets, EXACT_FRAMES, batch_size=4))
    ramped = list(iter_sampled_batches(path, targets, EXACT_FRAMES, batch_size=4, ramp_up=True))
    assert [len(used) for _, used, _ in fixed] == [4, 4, 4, 4, 1]
    assert [len(used) for _, used, _ in ramped] == [1, 2, 4, 4, 4, 2]
    assert [u for _, used, _ in ramped for u in used] == targets
    assert np.array_equal(np.concatenate([f for *_, f in ramped]), np.concatenate([f for *_, f in fixed]))


def test_reading_past_the_end_is_an_error(samples):
    with pytest.raises(VideoError) as err:
        read_frames(samples / FFPP_004, [5, 5000])
    assert err.value.status == UNREADABLE
    assert "5000" in err.value.message


def test_prefetch_keeps_order_reraises_and_stops_early():
    import threading

    assert list(prefetch(iter(range(20)), depth=2)) == list(range(20))

    def failing():
        yield 1
        yield 2
        raise VideoError(UNREADABLE, "boom")

    got = []
    with pytest.raises(VideoError, match="boom"):
        for item in prefetch(failing()):
            got.append(item)  # noqa: PERF402 (keeps the items before the error)
    assert got == [1, 2]

    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = prefetch(endless(), depth=1)
    assert next(stream) == 0
    stream.close()  # the consumer gives up: the producer thread must end, not block forever
    assert not any(t.name == "facesleuth-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 4


def test_prefetch_depth_zero_runs_in_the_consumers_thread():
    """depth 0 (a scanner that keeps to one core): each item is made when asked for, in this thread."""
    import threading

    made_in, produced = [], []

    def items():
        for n in range(5):
            made_in.append(threading.current_thread())
            produced.append(n)
            yield n

    stream = prefetch(items(), depth=0)
    assert next(stream) == 0 and produced == [0]  # nothing made ahead of the consumer
    assert list(stream) == [1, 2, 3, 4]
    assert set(made_in) == {threading.current_thread()}

    def failing():
        yield 1
        raise VideoError(UNREADABLE, "boom")

    with pytest.raises(VideoError, match="boom"):
        list(prefetch(failing(), depth=0))


def test_prefetch_lowers_the_switch_interval_and_never_raises_it():
    """A decoding thread takes the GIL back between packets: the interval it waits for it is
    lowered to DECODE_SWITCH_INTERVAL while the decoder runs ahead, and one already lower stays."""
    import sys

    from facesleuth.extract.video import DECODE_SWITCH_INTERVAL

    initial = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # the interpreter's default
        assert list(prefetch(iter(range(3)), depth=0)) == [0, 1, 2]
        assert sys.getswitchinterval() == 0.005  # nothing runs ahead: nothing changed
        assert list(prefetch(iter(range(3)), depth=1)) == [0, 1, 2]
        assert sys.getswitchinterval() == pytest.approx(DECODE_SWITCH_INTERVAL)
        assert DECODE_SWITCH_INTERVAL < 0.005
        sys.setswitchinterval(DECODE_SWITCH_INTERVAL / 2)
        assert list(prefetch(iter(range(3)), depth=1)) == [0, 1, 2]
        assert sys.getswitchinterval() == pytest.approx(DECODE_SWITCH_INTERVAL / 2)
    finally:
        sys.setswitchinterval(initial)


# ---------------------------------------------------------------- broken inputs


@pytest.fixture
def broken(tmp_path, samples):
    data = (samples / FFPP_004).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    return {"truncated": truncated, "empty": empty, "text": text, "absent": tmp_path / "absent.mp4"}


@pytest.mark.parametrize(
    "name,status", [("truncated", UNREADABLE), ("empty", EMPTY), ("text", UNREADABLE), ("absent", UNREADABLE)]
)
def test_broken_files_raise_video_error(broken, name, status):
    with pytest.raises(VideoError) as err:
        probe(broken[name])
    assert err.value.status == status
    assert err.value.message
    with pytest.raises(VideoError):
        read_frames(broken[name], [0])


def opencv_frame_count(path) -> int:
    """Frames OpenCV's sequential read gives before it stops (an independent count)."""
    import cv2

    capture, count = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG), 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def test_truncated_avi_counts_the_frames_it_holds_not_the_header(tmp_path, samples):
    data = (samples / MEGAMIND).read_bytes()
    truncated = tmp_path / "half.avi"
    truncated.write_bytes(data[: len(data) // 2])
    info = probe(truncated)
    assert info.frames_claimed == 270  # the header still promises every frame
    assert abs(info.frames - opencv_frame_count(truncated)) <= 1  # the last, cut packet may or may not decode
    assert info.frames < 200
    assert read_frames(truncated, [10]).shape[0] == 1
    with pytest.raises(VideoError, match="stream ends"):
        read_frames(truncated, [260])


@pytest.mark.parametrize("name", [FFPP_519_FAKE, MEGAMIND])
def test_sampled_frames_equal_sequential_decoding_with_or_without_seeking(samples, name):
    """Frames on, just past and well past each keyframe (250, 500, 750 in FF++) equal
    decord's sequential read; in MP4 the decoder seeks to the keyframes, so it decodes far fewer
    frames than the last index asked for."""
    path = samples / name
    total = probe(path).frames
    wanted = [i for i in (3, 121, 250, 252, 299, 500, 520, 700, 749) if i < total]
    report = DecodeReport()
    frames = read_frames(path, wanted, report=report)
    reference = decord_sequential(path, wanted[-1])
    for frame, index in zip(frames, wanted, strict=True):
        assert np.array_equal(frame, reference[index]), f"{name}: frame {index} differs from sequential decoding"
    assert not report.damaged
    # worked by hand from the keyframes: decode 0..121, seek to 250 and decode to 299, (FF++) seek to
    # 500 and decode to 520, then on to 749 (a seek back to 500 would decode more); the AVI is decoded
    # from the start
    expected = {FFPP_519_FAKE: 122 + 50 + 21 + 229, MEGAMIND: 253}[name]
    assert report.frames_decoded == expected, report


def test_damaged_frames_are_counted_and_skipped(tmp_path, samples):
    """Bytes flipped inside the stream: decoding goes on, and the report says what was lost."""
    data = bytearray((samples / MEGAMIND).read_bytes())
    rng = np.random.default_rng(7)
    for offset in rng.integers(len(data) // 5, len(data), 1000):
        data[offset] ^= 0xFF
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(bytes(data))
    total = probe(damaged).frames
    report = DecodeReport()
    frames = read_frames(damaged, range(0, total, 5), report=report)
    assert report.damaged, report
    assert len(frames) + report.frames_skipped == len(range(0, total, 5))
    assert "failed to decode" in report.describe()


# ---------------------------------------------------------------- sniffing and images


def test_sniff_media_by_content_not_name(tmp_path, samples, broken):
    assert sniff_media(samples / FFPP_519) == "video"
    assert sniff_media(samples / MEGAMIND) == "video"
    assert sniff_media(samples / "images/ex_original.png") == "image"
    assert sniff_media(samples / "images/multiface.jpg") == "image"
    disguised_image = tmp_path / "holiday.mp4"
    shutil.copyfile(samples / "images/multiface.jpg", disguised_image)
    disguised_video = tmp_path / "clip.jpg"
    shutil.copyfile(samples / FFPP_004, disguised_video)
    no_suffix = tmp_path / "upload"
    shutil.copyfile(samples / MEGAMIND, no_suffix)
    assert sniff_media(disguised_image) == "image"
    assert sniff_media(disguised_video) == "video"
    assert sniff_media(no_suffix) == "video"
    assert sniff_media(broken["truncated"]) == "video"  # a video, if a broken one
    assert sniff_media(broken["empty"]) is None
    assert sniff_media(broken["text"]) is None
    assert sniff_media(broken["absent"]) is None
    assert sniff_media(samples / "README.md") is None


def test_read_image_rgb_and_exif_rotation(tmp_path, samples):
    from PIL import Image

    image = read_image(samples / "images/multiface.jpg")
    assert image.shape == (630, 1200, 3) and image.dtype == np.uint8
    png = read_image(samples / "images/ex_original.png")
    assert png.shape == (480, 640, 3)
    # A phone photo stored landscape with "rotate 90" in EXIF comes out portrait.
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    rotated = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(rotated, exif=exif.tobytes(), quality=95)
    upright = read_image(rotated)
    assert upright.shape == (80, 40, 3)
    assert upright[5, 20, 0] > 200 and upright[5, 20, 2] < 60  # red end now on top
    with pytest.raises(VideoError) as err:
        read_image(samples / "README.md")
    assert err.value.status == UNREADABLE


def test_a_broken_png_chunk_is_unreadable_not_a_syntax_error(tmp_path, samples):
    """Pillow raises SyntaxError("broken PNG file ...") for a damaged chunk: a file's fault, a status."""
    import struct

    data = bytearray((samples / "images/ex_original.png").read_bytes())
    offset = 8 + 12 + struct.unpack(">I", data[8:12])[0]  # past the signature and IHDR: the first IDAT
    offset += 12 + struct.unpack(">I", data[offset:offset + 4])[0]  # the second IDAT
    data[offset + 4:offset + 8] = b"\x01\x02\x03\x04"  # its chunk type
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(data))
    with pytest.raises(SyntaxError):  # what Pillow itself does with it
        from PIL import Image

        Image.open(broken).convert("RGB")
    with pytest.raises(VideoError) as err:
        read_image(broken)
    assert err.value.status == UNREADABLE and "broken PNG file" in err.value.message


def test_image_pixel_limit_is_inclusive_and_checked_on_the_header(tmp_path, samples):
    from PIL import Image

    from facesleuth.extract.video import TOO_LARGE, MediaLimits

    source = samples / "images/ex_original.png"
    with Image.open(source) as image:
        width, height = image.size
    assert read_image(source, MediaLimits(max_pixels=width * height)).shape == (height, width, 3)
    with pytest.raises(VideoError) as err:
        read_image(source, MediaLimits(max_pixels=width * height - 1))
    assert err.value.status == TOO_LARGE and "--max-pixels" in err.value.message
    with pytest.raises(VideoError) as err:
        probe(samples / FFPP_519, MediaLimits(max_pixels=640 * 480 - 1))
    assert err.value.status == TOO_LARGE
    with pytest.raises(VideoError) as err:
        probe(samples / FFPP_519, MediaLimits(max_seconds=29.0))  # 751 frames at 25 fps: 30 s
    assert err.value.status == "too_long" and "30.0 s" in err.value.message
    with pytest.raises(VideoError) as err:
        read_frames(samples / MEGAMIND, [200], limits=MediaLimits(max_frames=100))  # an AVI decodes from 0
    assert err.value.status == "too_long" and "--max-frames" in err.value.message
    assert probe(samples / FFPP_519, MediaLimits(max_pixels=640 * 480, max_seconds=30.1)).frames == 751


def test_decoders_keep_to_the_thread_budget_and_decode_the_same_frames(samples, monkeypatch):
    """set_decoder_threads bounds every PyAV decoder of the process (what a scanning process is
    given); the frames do not change with the threads, checked against decord's sequential read."""
    from facesleuth.extract import video

    path = samples / FFPP_519_FAKE
    wanted = [40, 300]
    reference = decord_sequential(path, max(wanted))
    counts = []
    threaded = video._threaded

    def spy(stream):
        stream = threaded(stream)
        counts.append(stream.codec_context.thread_count)  # as PyAV reports it back
        return stream

    monkeypatch.setattr(video, "_threaded", spy)
    try:
        video.set_decoder_threads(1)
        frames = read_frames(path, wanted)
    finally:
        video.set_decoder_threads(0)
    assert counts and set(counts) == {1}
    for frame, index in zip(frames, wanted):
        assert np.array_equal(frame, reference[index]), f"frame {index} differs with one decoder thread"
    with pytest.raises(ValueError, match="0 or more"):
        video.set_decoder_threads(-1)


def test_set_cpu_threads_bounds_torch_and_the_decoders():
    """The one switch extraction jobs, scanners and workers use for their thread budget."""
    import torch

    from facesleuth.extract import video
    from facesleuth.extract.detect import set_cpu_threads

    before = torch.get_num_threads()
    try:
        set_cpu_threads(1)
        assert torch.get_num_threads() == 1 and video._decoder_threads == 1
    finally:
        torch.set_num_threads(before)
        video.set_decoder_threads(0)
    with pytest.raises(ValueError, match="at least 1"):
        set_cpu_threads(0)
