"""Frame access for the extraction flows and the scanner: exact frames, bounded work, quiet decoders.

Why: random access (ffmpeg's fast seek, decord's ``get_batch``) returns corrupt or wrong frames
on the very datasets this project reads, while sequential decoding agrees frame for frame on
every sample (benchmarks/README.md, "Decoding").

So frames are decoded with PyAV (FFmpeg) and numbered in presentation order. In MP4/MOV and
Matroska, whose packets carry presentation timestamps, a frame's index is the rank of its
timestamp among the stream's packets, and a long video is not decoded from the start: the
decoder seeks to the last keyframe at or before the next sampled frame, and only when the first
frame out of the decoder is that keyframe itself (a keyframe that is no clean entry point, as in
an open GOP, fails this check and decoding goes on from the start instead). Other containers
(AVI, whose timestamps do not number frames the way sequential decoding does) are decoded
forward from the start. Either way the frame at index ``i`` is the ``i``-th frame OpenCV's
sequential read gives (tests/test_video.py checks both). Videos whose container asks for a
rotation (phone videos) are read through OpenCV, which applies it, so they come out upright.

Damage is counted, not hidden: packets the decoder rejects are counted in a
:class:`DecodeReport` (``frames_failed``) and a sampled frame that never comes out is skipped
and counted (``frames_skipped``). FFmpeg's and OpenCV's own log lines are switched off
(:func:`quiet_decoder_logs`), whatever the environment says, so they never bury a report.

:class:`MediaLimits` bounds what one input may cost: pixels per frame (checked on the header,
before anything is decoded), duration (from the packets' timestamps, not from what the header
claims), frames decoded, and a wall-clock deadline. Past one the input gets its own status
(``too_large``, ``too_long``, ``timed_out``) and a message naming the limit. Frames are returned
in batches, so a 1080p video never sits in memory whole.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import os
import queue
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image, ImageOps

# Statuses a VideoError carries (registry.VIDEO_ERRORS). Extraction reports unreadable and
# empty both as "unreadable" rows, with the message saying which.
from facesleuth.registry import (
    EMPTY,
    FRAME_POLICIES,
    LIMIT_STATUSES,
    MAX_FRAME_OFFSET,
    TIMED_OUT,
    TOO_LARGE,
    TOO_LONG,
    UNREADABLE,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BATCH_SIZE = 16
#: Default limits of the scanner and the service (the pipeline's extraction runs unbounded).
DEFAULT_MAX_PIXELS = 7680 * 4320  # 8K UHD: larger frames are no upload a face check needs
DEFAULT_MAX_SECONDS = 600.0  # ten minutes of video
DEFAULT_MAX_FRAMES = 20_000  # frames decoded for one input, the ones decoded to reach a sampled frame included
# Containers whose packet timestamps number the frames as sequential decoding does (see above).
_SEEKABLE_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")
_CLOCK_EVERY = 16  # decoded frames between two looks at the deadline


class VideoError(Exception):
    """A video (or image) cannot be used; ``status`` says why in one word, the message in full."""

    def __init__(self, status: str, message: str, path: str | Path | None = None):
        self.status = status
        self.message = message
        self.path = str(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


@dataclass(frozen=True)
class VideoInfo:
    """Frames present (counted from the container's packets), fps, size of the decoded (upright)
    frames; ``frames_claimed``: what the header says, which a damaged or forged file may inflate."""

    frames: int
    fps: float
    width: int
    height: int
    frames_claimed: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class MediaLimits:
    """What one input may cost; None leaves that bound off. ``deadline``: a ``time.monotonic()``
    past which work on the input stops (set per input from a wall-clock budget)."""

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_seconds: float | None = DEFAULT_MAX_SECONDS
    max_frames: int | None = DEFAULT_MAX_FRAMES
    deadline: float | None = None
    wall_seconds: float | None = None  # the budget the deadline came from, for the message

    def check_pixels(self, width: int, height: int, path: str | Path | None = None, what: str = "frame") -> None:
        if self.max_pixels is not None and int(width) * int(height) > self.max_pixels:
            raise VideoError(TOO_LARGE, f"{what} of {width}x{height} = {int(width) * int(height):,} pixels is over "
                                        f"the limit of {self.max_pixels:,} pixels (--max-pixels)", path)

    def check_seconds(self, seconds: float, path: str | Path | None = None) -> None:
        if self.max_seconds is not None and seconds > self.max_seconds:
            raise VideoError(TOO_LONG, f"video of {seconds:.1f} s is over the limit of {self.max_seconds:g} s "
                                       "(--max-seconds)", path)

    def check_frames(self, decoded: int, path: str | Path | None = None) -> None:
        if self.max_frames is not None and decoded > self.max_frames:
            raise VideoError(TOO_LONG, f"reaching the sampled frames would decode more than {self.max_frames:,} "
                                       "frames, the limit (--max-frames)", path)

    def check_clock(self, path: str | Path | None = None) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            budget = f"{self.wall_seconds:g} s" if self.wall_seconds is not None else "its time"
            raise VideoError(TIMED_OUT, f"scanning took longer than the limit of {budget} per input "
                                        "(--input-seconds)", path)

    def started(self) -> MediaLimits:
        """These limits with the deadline of an input that starts now."""
        if self.wall_seconds is None:
            return self
        return MediaLimits(self.max_pixels, self.max_seconds, self.max_frames,
                           time.monotonic() + self.wall_seconds, self.wall_seconds)


#: No bound at all: the pipeline's extraction of the datasets it was configured with.
UNLIMITED = MediaLimits(max_pixels=None, max_seconds=None, max_frames=None)


EXACT, NEAREST_REFERENCE = "exact", "nearest_reference"  # registry.FRAME_POLICIES


@dataclass(frozen=True)
class FramePolicy:
    """Which decoded frame stands for a sampled index (registry.FRAME_POLICIES): ``exact``, the
    frame itself; ``nearest_reference``, the nearest frame among those decoded with
    non-reference frames skipped, at most ``max_frame_offset`` frames away, else the exact one."""

    name: str = EXACT
    max_frame_offset: int = MAX_FRAME_OFFSET

    def __post_init__(self):
        if self.name not in FRAME_POLICIES:
            raise ValueError(f"frame policy must be one of {', '.join(FRAME_POLICIES)}, got {self.name!r}")
        if int(self.max_frame_offset) < 0:
            raise ValueError(f"max_frame_offset must be 0 or more, got {self.max_frame_offset}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> FramePolicy:
        """From a flow's settings (``frame_policy``, ``max_frame_offset``)."""
        return cls(str(settings.get("frame_policy", EXACT)), int(settings.get("max_frame_offset", 2)))

    def describe(self) -> dict[str, Any]:
        return {"frame_policy": self.name, "max_frame_offset": int(self.max_frame_offset)}


#: Today's (and the thesis's) frames: each sampled index decoded exactly.
EXACT_FRAMES = FramePolicy(EXACT)


@dataclass
class DecodeReport:
    """What decoding met: frames decoded; ``frames_failed``: packets the decoder rejected or
    decoded with errors concealed; ``frames_skipped``: sampled frames that never came out."""

    frames_decoded: int = 0
    frames_failed: int = 0
    frames_skipped: int = 0

    @property
    def damaged(self) -> bool:
        return bool(self.frames_failed or self.frames_skipped)

    def describe(self) -> str:
        """``"12 frames failed to decode, 2 sampled frames skipped"`` (empty when undamaged)."""
        parts = []
        if self.frames_failed:
            parts.append(f"{self.frames_failed} frame{'s' if self.frames_failed != 1 else ''} failed to decode")
        if self.frames_skipped:
            parts.append(f"{self.frames_skipped} sampled frame{'s' if self.frames_skipped != 1 else ''} skipped")
        return ", ".join(parts)


@functools.cache
def quiet_decoder_logs() -> None:
    """Switch off FFmpeg's (PyAV's and OpenCV's copies) and OpenCV's own log output.

    Set here, not left to the user's environment: a damaged file makes FFmpeg print thousands
    of lines (``[h264 @ 0x...] error while decoding MB``) that bury the scanner's report; the
    damage is counted in :class:`DecodeReport` instead. OpenCV reads its FFmpeg log level when
    it first opens a video, so this runs before that.
    """
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    os.environ["OPENCV_LOG_LEVEL"] = "SILENT"
    import av.logging
    import cv2

    av.logging.set_level(None)  # PyAV: FFmpeg's messages are dropped, not printed
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


# Threads each FFmpeg decoder may use; 0 lets FFmpeg take one per core. A scanning process is
# given a thread budget (facesleuth scan --threads, a service worker's share of the cores) and
# its decoder keeps to it, as torch and ONNX Runtime do, so that workers sized to the cores do
# not each start a decoder thread per core.
_decoder_threads = 0


def set_decoder_threads(threads: int) -> None:
    """Let each video decoder of this process use at most ``threads`` threads (0: one per core)."""
    global _decoder_threads
    if threads < 0:
        raise ValueError(f"decoder threads must be 0 or more, got {threads}")
    _decoder_threads = int(threads)


def _threaded(stream: Any) -> Any:
    """``stream`` (PyAV) set to decode with frame and slice threads, as many as allowed: x264's
    single-slice 1080p decodes about 30% faster than with slice threads alone, as fast as
    OpenCV's reader; the frames are the same."""
    stream.thread_type = "AUTO"
    stream.thread_count = _decoder_threads
    return stream


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoError(UNREADABLE, "file does not exist", path)
    if not path.is_file():
        raise VideoError(UNREADABLE, "not a regular file", path)
    if path.stat().st_size == 0:
        raise VideoError(EMPTY, "file is empty (0 bytes)", path)
    return path


def _short(err: Exception, limit: int = 200) -> str:
    """First line of a library's error message (some carry stack traces), without the file name."""
    text = str(err).strip()
    filename = getattr(err, "filename", None)
    if filename:
        text = text.replace(f": {filename!r}", "").replace(f": '{filename}'", "")
    return (text.splitlines()[0] if text else type(err).__name__)[:limit]


def _open_capture(path: str | Path):
    import cv2  # half a second to import: extract imports this module, and its summary step never decodes

    quiet_decoder_logs()
    path = _check_file(path)
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoError(UNREADABLE, "cannot open as a video (not a video, or truncated/corrupt)", path)
    return capture


def _open_container(path: Path):
    import av

    quiet_decoder_logs()
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise VideoError(UNREADABLE, f"cannot open as a video (not a video, or truncated or corrupt: "
                                     f"{_short(err)})", path) from None
    if not container.streams.video:
        container.close()
        raise VideoError(UNREADABLE, "holds no video stream (audio only, or not a video)", path)
    return container


@dataclass(frozen=True)
class _StreamIndex:
    """A video stream's packets, read without decoding: what probing and seeking need."""

    format: str
    codec: str
    pts: tuple[int, ...] | None  # sorted presentation timestamps; None when some packet has none
    keyframes: tuple[int, ...]  # frame indices (ranks in ``pts``) of keyframes that are clean entry points
    packets: int
    fps: float
    seconds: float
    width: int
    height: int
    frames_claimed: int | None

    @property
    def seekable(self) -> bool:
        return self.pts is not None and self.format in _SEEKABLE_FORMATS and any(self.keyframes)


# Codecs whose keyframes are seeked to: NAL unit types of a clean entry point (H.264 IDR;
# HEVC IDR, BLA and CRA, whose leading pictures precede it in presentation order), and how the
# type sits in the NAL header. Other codecs are decoded from the start.
_ENTRY_NAL_TYPES: dict[str, tuple[frozenset[int], int, int]] = {
    "h264": (frozenset({5}), 0, 0x1F),
    "hevc": (frozenset(range(16, 22)), 1, 0x3F),
}


def _clean_entry(data: bytes, extradata: bytes, types: frozenset[int], shift: int, mask: int) -> bool:
    """Whether a keyframe packet (MP4-style length-prefixed NAL units) holds a clean entry point."""
    if not extradata or extradata[0] != 1:  # not avcC/hvcC: Annex B or unknown, do not trust it
        return False
    length_size = (extradata[4] & 3) + 1 if len(extradata) > 4 and mask == 0x1F else (
        (extradata[21] & 3) + 1 if len(extradata) > 21 else 4)
    offset = 0
    while offset + length_size < len(data):
        size = int.from_bytes(data[offset:offset + length_size], "big")
        if size <= 0:
            return False
        if (data[offset + length_size] >> shift) & mask in types:
            return True
        offset += length_size + size
    return False


def _index_stream(path: Path, limits: MediaLimits) -> _StreamIndex:
    """Read the video stream's packets (no decoding). The header's size is checked first, the
    duration while reading, so a forged or endless file costs no more than the limits allow."""
    import av

    with _open_container(path) as container:
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        limits.check_pixels(width, height, path, "the header's frame")
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        time_base = float(stream.time_base or 0.0)
        timestamps: list[int] = []
        keyframe_pts: list[int] = []
        entry_kinds = _ENTRY_NAL_TYPES.get(stream.codec_context.name)
        extradata = bytes(stream.codec_context.extradata or b"")
        packets, missing_pts, first, last = 0, False, None, None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the end-of-stream marker
                    continue
                packets += 1
                if packet.pts is None:
                    missing_pts = True
                else:
                    timestamps.append(packet.pts)
                    if packet.is_keyframe and entry_kinds and _clean_entry(bytes(packet), extradata, *entry_kinds):
                        keyframe_pts.append(packet.pts)
                    first = packet.pts if first is None else min(first, packet.pts)
                    last = packet.pts if last is None else max(last, packet.pts)
                if packets % 256 == 0:
                    seconds = ((last - first) * time_base if time_base and first is not None
                               else packets / fps if fps else 0.0)
                    limits.check_seconds(seconds, path)
                    limits.check_clock(path)
        except av.FFmpegError as err:  # a damaged packet ends what can be read
            log.info("%s: packets stop after %d: %s", path, packets, _short(err))
        claimed = int(stream.frames or 0) or None
        format_name = container.format.name
        codec = str(stream.codec_context.name or "")
    if time_base and first is not None and last is not None and not missing_pts:
        seconds = (last - first) * time_base + (1 / fps if fps else 0.0)
    else:
        seconds = packets / fps if fps else 0.0
    limits.check_seconds(seconds, path)
    pts = None
    keyframes: tuple[int, ...] = ()
    if not missing_pts and len(set(timestamps)) == len(timestamps):
        pts = tuple(sorted(timestamps))
        rank = {value: i for i, value in enumerate(pts)}
        keyframes = tuple(sorted({0, *(rank[value] for value in keyframe_pts)}))
    return _StreamIndex(format_name, codec, pts, keyframes, packets, fps, seconds, width, height, claimed)


@functools.lru_cache(maxsize=8)
def _cached_index(path: str, size: int, mtime_ns: int) -> _StreamIndex:
    return _index_stream(Path(path), UNLIMITED)


def _stream_index(path: Path, limits: MediaLimits) -> _StreamIndex:
    """The index of ``path``: read once per file version, the limits checked on every call."""
    if limits.max_pixels is not None or limits.max_seconds is not None or limits.deadline is not None:
        index = _index_stream(path, limits)  # bounded reading: a forged file must not be read whole first
    else:
        stat = path.stat()
        index = _cached_index(str(path), stat.st_size, stat.st_mtime_ns)
    return index


def _decoded_frames(container, stream, report: DecodeReport) -> Iterator:
    """Every frame the decoder gives, in presentation order; rejected packets are counted."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:  # the container breaks off here: the rest is unreachable
            return
        try:
            frames = stream.decode(packet)
        except av.FFmpegError:
            report.frames_failed += 1
            continue
        for frame in frames:
            if frame.is_corrupt:  # decoded with errors concealed: used, but counted
                report.frames_failed += 1
            yield frame


def _rotation(frame) -> int:
    return round(getattr(frame, "rotation", 0) or 0) % 360


def probe(path: str | Path, limits: MediaLimits = UNLIMITED) -> VideoInfo:
    """Frames, fps and size of a video; raises VideoError when it cannot be decoded or is past ``limits``.

    Frames are counted from the container's packets (a header may claim more than the file
    holds); the size is that of the first decoded frame (upright), which also proves the
    stream decodes at all.
    """
    path = _check_file(path)
    index = _stream_index(path, limits)
    if index.packets == 0:
        raise VideoError(EMPTY, "no frame decodes (the video stream holds no packet)", path)
    report = DecodeReport()
    with _open_container(path) as container:
        stream = container.streams.video[0]
        first = None
        for frame in _decoded_frames(container, stream, report):
            first = frame
            break
        if first is None:
            raise VideoError(EMPTY, f"no frame decodes (empty or corrupt stream; {report.frames_failed} of "
                                    f"{index.packets} packets rejected)", path)
        width, height = first.width, first.height
        if _rotation(first) in (90, 270):
            width, height = height, width
    limits.check_pixels(width, height, path)
    return VideoInfo(frames=index.packets, fps=index.fps, width=int(width), height=int(height),
                     frames_claimed=index.frames_claimed, seconds=round(index.seconds, 3))


def evenly_spaced_indices(total: int, n: int) -> list[int]:
    """Up to ``n`` frame indices spread evenly over ``total`` frames (train flow).

    Each index is the middle of one of ``n`` equal segments, so the first and last frames
    (often black fades) are avoided, and every frame is taken when ``n >= total``.
    """
    if total <= 0 or n <= 0:
        return []
    if n >= total:
        return list(range(total))
    return [math.floor((i + 0.5) * total / n) for i in range(n)]


def every_kth_indices(total: int, k: int, max_frames: int | None = None) -> list[int]:
    """Frames 0, k, 2k, ... (test flow), at most ``max_frames`` of them."""
    if k < 1:
        raise ValueError(f"frame step must be at least 1, got {k}")
    indices = list(range(0, max(total, 0), k))
    if max_frames is not None:
        indices = indices[:max_frames]
    return indices


def _av_error() -> type[Exception]:
    import av

    return av.FFmpegError


class _SeekMismatch(Exception):
    """The decoder did not start at the keyframe it was sent to (no clean entry point)."""


def _decode_from(container, stream, index: _StreamIndex, key: int, report: DecodeReport,
                 primed: bool) -> tuple[Iterator, int | None]:
    """Frames decoded from keyframe ``key`` on, and the pts the first of them must have (None from
    the start of the stream: no seek). Before a first seek the first packet primes the decoder:
    x264 writes its version into an SEI there, which FFmpeg's H.264 decoder needs to decode x264's
    4:4:4 streams right (a cold seek into FF++ gives green frames, even at an IDR frame)."""
    if key == 0:
        return _decoded_frames(container, stream, report), None
    if not primed:
        for _ in _decoded_frames(container, stream, report):
            report.frames_decoded += 1
            break
    container.seek(index.pts[key], stream=stream, backward=True, any_frame=False)
    return _decoded_frames(container, stream, report), index.pts[key]


def _count_decoded(report: DecodeReport, limits: MediaLimits, path: Path) -> None:
    """One more frame decoded: within the input's frame and time limits, or VideoError."""
    report.frames_decoded += 1
    if report.frames_decoded % _CLOCK_EVERY == 0:
        limits.check_clock(path)
    limits.check_frames(report.frames_decoded, path)


def _av_frames(path: Path, wanted: list[int], index: _StreamIndex, limits: MediaLimits, report: DecodeReport,
               seek: bool) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB frame)`` for each wanted index that decodes, in order (PyAV).

    With ``seek``, frames are numbered by timestamp rank and the decoder jumps to the last
    keyframe before the next wanted frame whenever that skips frames; it raises _SeekMismatch
    when the first frame after a jump is not that keyframe.
    """
    rank = {value: i for i, value in enumerate(index.pts)} if seek else None
    keyframes = index.keyframes if seek else (0,)
    with _open_container(path) as container:
        stream = _threaded(container.streams.video[0])
        frames: Iterator | None = None
        last, counter, expected, i = -1, 0, None, 0
        while i < len(wanted):
            target = wanted[i]
            key = keyframes[max(0, bisect.bisect_right(keyframes, target) - 1)]
            if frames is None or key > last + 1:
                frames, expected = _decode_from(container, stream, index, key, report, primed=frames is not None)
            progressed = False
            for frame in frames:
                _count_decoded(report, limits, path)
                if rank is not None:
                    if expected is not None and frame.pts != expected:
                        raise _SeekMismatch
                    expected = None
                    position = rank.get(frame.pts)
                    if position is None:
                        continue
                else:
                    position, counter = counter, counter + 1
                last = position
                while i < len(wanted) and wanted[i] < position:  # never came out of the decoder
                    report.frames_skipped += 1
                    i, progressed = i + 1, True
                if i < len(wanted) and wanted[i] == position:
                    yield position, frame.to_ndarray(format="rgb24")
                    i, progressed = i + 1, True
                if progressed:
                    break
            if not progressed:  # the stream ended before the rest
                report.frames_skipped += len(wanted) - i
                return


def _opencv_frames(path: Path, wanted: list[int], limits: MediaLimits,
                   report: DecodeReport) -> Iterator[tuple[int, np.ndarray]]:
    """Sequential OpenCV decoding, which applies the container's rotation (phone videos)."""
    import cv2

    capture = _open_capture(path)
    try:
        position = 0  # index of the next frame the decoder returns
        for target in wanted:
            ends = f"stream ends after {{}} frames; frame {target} was asked for"
            while position < target:
                if not capture.grab():
                    raise VideoError(UNREADABLE, ends.format(position), path)
                position += 1
                report.frames_decoded += 1
                limits.check_frames(report.frames_decoded, path)
                if position % _CLOCK_EVERY == 0:
                    limits.check_clock(path)
            ok, frame = capture.read()
            if not ok or frame is None:
                raise VideoError(UNREADABLE, ends.format(position), path)
            position += 1
            report.frames_decoded += 1
            yield target, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _needs_rotation(path: Path) -> bool:
    with _open_container(path) as container:
        stream = container.streams.video[0]
        for frame in _decoded_frames(container, stream, DecodeReport()):
            return _rotation(frame) != 0
    return False


def iter_frame_batches(
    path: str | Path,
    indices: Sequence[int],
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize_to: tuple[int, int] | None = None,
    *,
    limits: MediaLimits = UNLIMITED,
    report: DecodeReport | None = None,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yield ``(indices, frames)`` batches in increasing frame order, each index once; frames
    ``(n, H, W, 3)`` RGB uint8, resized to ``resize_to=(width, height)`` when given.

    Raises VideoError when a requested frame lies past the frames the stream holds, or a limit
    is passed. A requested frame the decoder cannot produce (damage) is skipped and counted in
    ``report`` (with the packets it rejected).
    """
    for _, used, frames in iter_sampled_batches(path, indices, EXACT_FRAMES, batch_size, resize_to,
                                                limits=limits, report=report):
        yield used, frames


def iter_sampled_batches(
    path: str | Path,
    targets: Sequence[int],
    policy: FramePolicy,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize_to: tuple[int, int] | None = None,
    *,
    limits: MediaLimits = UNLIMITED,
    report: DecodeReport | None = None,
    ramp_up: bool = False,
) -> Iterator[tuple[list[int], list[int], np.ndarray]]:
    """Yield ``(targets, used, frames)`` batches in increasing frame order: for each sampled
    target index the index of the frame that stands for it under ``policy`` (the target itself
    under ``exact``) and that frame. Used indices are distinct and increasing; otherwise as
    :func:`iter_frame_batches`.

    ``ramp_up``: the first batch holds one frame and each next one twice as many, up to
    ``batch_size``, so a consumer working while this decodes ahead (:func:`prefetch`) starts
    after one frame rather than after a whole batch.
    """
    import cv2  # half a second to import: extract imports this module, and its summary step never decodes

    wanted = sorted({int(i) for i in targets})
    if not wanted:
        return
    if wanted[0] < 0:
        raise VideoError(UNREADABLE, f"negative frame index {wanted[0]}", path)
    path = _check_file(path)
    report = report if report is not None else DecodeReport()
    batch_size = max(1, int(batch_size))
    index = _stream_index(path, limits)
    if wanted[-1] >= index.packets:
        raise VideoError(UNREADABLE, f"stream ends after {index.packets} frames; frame {wanted[-1]} was asked for",
                         path)
    if _needs_rotation(path):
        frames = _as_exact(_opencv_frames(path, wanted, limits, report))
    elif index.seekable and policy.name == NEAREST_REFERENCE and _skips_nonref(index):
        frames = _nearest_reference_frames(path, wanted, policy.max_frame_offset, index, limits, report)
    elif index.seekable:
        frames = _as_exact(_seeking_or_sequential(path, wanted, index, limits, report))
    else:  # no timestamps to number the frames the decoder skips by: every frame is decoded
        frames = _as_exact(_av_frames(path, wanted, index, limits, report, seek=False))
    batch_targets: list[int] = []
    batch_used: list[int] = []
    batch: list[np.ndarray] = []
    size = 1 if ramp_up else batch_size
    try:
        for target, used, frame in frames:
            if resize_to is not None and (frame.shape[1], frame.shape[0]) != tuple(resize_to):
                frame = cv2.resize(frame, tuple(resize_to), interpolation=cv2.INTER_AREA)
            batch.append(frame)
            batch_targets.append(target)
            batch_used.append(used)
            if len(batch) == size:
                yield batch_targets, batch_used, np.stack(batch)
                batch_targets, batch_used, batch = [], [], []
                size = min(batch_size, 2 * size)
    except (_av_error(), MemoryError) as err:  # what the decoder raises past a packet: the file is damaged
        raise VideoError(UNREADABLE, f"decoding stopped ({_short(err)})", path) from None
    if batch:
        yield batch_targets, batch_used, np.stack(batch)


def _as_exact(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, int, np.ndarray]]:
    for position, frame in frames:
        yield position, position, frame


def _skips_nonref(index: _StreamIndex) -> bool:
    """Whether the stream's codec is one whose non-reference frames FFmpeg's skip_frame drops
    while the rest decode as usual (H.264 and HEVC; tested on the samples)."""
    return index.codec in _ENTRY_NAL_TYPES


def _windows(wanted: list[int], bound: int) -> list[tuple[int, int]]:
    """For each target, the frame indices that may stand for it: within ``bound`` and nearer to
    it than to its neighbours (a tie at a midpoint goes to the earlier target), so no frame
    stands for two targets and every target's window holds the target itself."""
    windows = []
    for i, target in enumerate(wanted):
        low, high = target - bound, target + bound
        if i > 0:
            low = max(low, (wanted[i - 1] + target) // 2 + 1)
        if i + 1 < len(wanted):
            high = min(high, (target + wanted[i + 1]) // 2)
        windows.append((max(0, low), high))
    return windows


def _nearest_reference_frames(path: Path, wanted: list[int], bound: int, index: _StreamIndex, limits: MediaLimits,
                              report: DecodeReport) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(target, used, RGB frame)`` per target, in order: the nearest frame to the target among
    those decoded with non-reference frames skipped (FFmpeg's ``skip_frame = "NONREF"``), within
    its window (:func:`_windows`); a target whose window holds no decoded frame is decoded
    exactly, so nothing is lost. Frames are numbered by the rank of their timestamp among the
    stream's packets, as the exact seeking decoder numbers them, and the decoder seeks to the
    last clean keyframe before a window as that one does.
    """
    windows = _windows(wanted, bound)
    rank = {value: i for i, value in enumerate(index.pts)}
    keyframes = index.keyframes

    def exactly(target: int) -> Iterator[tuple[int, int, np.ndarray]]:
        for position, frame in _seeking_or_sequential(path, [target], index, limits, report):
            yield target, position, frame

    i, done = 0, -1
    try:
        with _open_container(path) as container:
            stream = _threaded(container.streams.video[0])
            stream.codec_context.skip_frame = "NONREF"
            frames: Iterator | None = None
            last, expected, best = -1, None, None  # best: (distance, position, frame) for target i
            while i < len(wanted):
                low, high = windows[i]
                key = keyframes[max(0, bisect.bisect_right(keyframes, low) - 1)]
                if frames is None or key > last + 1:
                    frames, expected = _decode_from(container, stream, index, key, report, primed=frames is not None)
                progressed = False
                for frame in frames:
                    _count_decoded(report, limits, path)
                    if expected is not None and frame.pts != expected:
                        raise _SeekMismatch
                    expected = None
                    position = rank.get(frame.pts)
                    if position is None:
                        continue
                    last = position
                    while i < len(wanted):
                        low, high = windows[i]
                        if position < low:
                            break
                        target = wanted[i]
                        if position <= high and (best is None or abs(position - target) < best[0]):
                            best = (abs(position - target), position, frame)
                        if position < target:
                            break  # a nearer frame may still come
                        if best is not None:
                            yield target, best[1], best[2].to_ndarray(format="rgb24")
                        else:
                            yield from exactly(target)
                        done, best, i, progressed = target, None, i + 1, True
                    if progressed:
                        break
                if not progressed:  # the stream ended before the rest
                    break
            for target in wanted[i:]:
                if best is not None:
                    yield target, best[1], best[2].to_ndarray(format="rgb24")
                    best = None
                else:
                    yield from exactly(target)
                done = target
    except _SeekMismatch:
        log.info("%s: a keyframe is no clean entry point; decoding the rest exactly from the start", path)
        rest = [t for t in wanted if t > done]
        yield from _as_exact(_av_frames(path, rest, index, limits, report, seek=False))


def _seeking_or_sequential(path: Path, wanted: list[int], index: _StreamIndex, limits: MediaLimits,
                           report: DecodeReport) -> Iterator[tuple[int, np.ndarray]]:
    """Seek where keyframes allow; when one is no clean entry point, decode the rest from the start."""
    done = -1
    try:
        for position, frame in _av_frames(path, wanted, index, limits, report, seek=True):
            done = position
            yield position, frame
    except _SeekMismatch:
        log.info("%s: a keyframe is no clean entry point; decoding from the start", path)
        rest = [i for i in wanted if i > done]
        yield from _av_frames(path, rest, index, limits, report, seek=False)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Every frame of the video, in order, RGB uint8, until the stream ends (however many
    frames the container promised)."""
    import cv2

    capture = _open_capture(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def read_frames(
    path: str | Path,
    indices: Sequence[int],
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize_to: tuple[int, int] | None = None,
    *,
    limits: MediaLimits = UNLIMITED,
    report: DecodeReport | None = None,
) -> np.ndarray:
    """Frames ``indices`` (in the order given, repeats allowed) as one ``(N, H, W, 3)`` RGB array;
    frames that do not decode (counted in ``report``) are left out."""
    decoded: dict[int, np.ndarray] = {}
    for batch_indices, frames in iter_frame_batches(path, indices, batch_size, resize_to, limits=limits,
                                                    report=report):
        decoded.update(zip(batch_indices, frames))
    if not decoded:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack([decoded[int(i)] for i in indices if int(i) in decoded])


# The decoder releases the GIL while it decodes a packet but takes it back between packets, and
# each time waits out the interpreter's switch interval (5 ms by default) while the consumer runs
# Python code: beside a busy Python thread a 1080p video decoded several times slower at 5 ms,
# little slower at 0.2 ms (benchmarks/README.md, decode_contention.py). Process-wide, lowered once.
DECODE_SWITCH_INTERVAL = 0.0002


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer
    (``depth`` 0: in the consumer's thread, nothing ahead).

    Decoding (the decoders release the GIL) then overlaps detection. An exception raised by
    ``items`` is re-raised here, in order; closing the generator early stops the thread.
    Lowers the process's GIL switch interval to DECODE_SWITCH_INTERVAL (never raises it).
    """
    if depth <= 0:
        yield from items
        return
    if sys.getswitchinterval() > DECODE_SWITCH_INTERVAL:
        sys.setswitchinterval(DECODE_SWITCH_INTERVAL)
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except Exception as err:  # noqa: BLE001 (handed to the consumer, raised there)
            put((False, err))
            return
        put((True, done))

    worker = threading.Thread(target=produce, name="facesleuth-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


# ------------------------------------------------------------------ media sniffing and images

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", 0),  # JPEG
    (b"\x89PNG\r\n\x1a\n", 0),
    (b"GIF87a", 0),
    (b"GIF89a", 0),
    (b"BM", 0),  # BMP
    (b"II*\x00", 0),  # TIFF little endian
    (b"MM\x00*", 0),  # TIFF big endian
)
_VIDEO_MAGIC = (
    (b"\x1a\x45\xdf\xa3", 0),  # Matroska / WebM
    (b"FLV", 0),
    (b"\x00\x00\x01\xba", 0),  # MPEG program stream
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", 0),  # ASF / WMV
    (b"OggS", 0),
)
# ISO base media (mp4, mov, m4v, 3gp): a box type at offset 4. HEIF/AVIF images share the
# layout; their brands say so.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
_ISO_IMAGE_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")


def _sniff_magic(head: bytes) -> Literal["video", "image"] | None:
    for magic, offset in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "image"
    for magic, offset in _VIDEO_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "video"
    if head[:4] == b"RIFF":
        kind = head[8:12]
        if kind == b"WEBP":
            return "image"
        if kind in (b"AVI ", b"AVIX"):
            return "video"
    if head[4:8] in _ISO_BOXES:
        if head[4:8] == b"ftyp" and head[8:12] in _ISO_IMAGE_BRANDS:
            return "image"
        return "video"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # MPEG transport stream
        return "video"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # the 512-byte window may cut a multi-byte character at its end
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def sniff_media(path: str | Path, limits: MediaLimits = UNLIMITED) -> Literal["video", "image"] | None:
    """``"video"``, ``"image"`` or None, judged by content, never by the file name.

    Magic bytes first (cheap, and a truncated mp4 still says "video" so it is reported as an
    unreadable video, not skipped); otherwise an image decode and then a video open are tried.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if not head:
        return None
    kind = _sniff_magic(head)
    if kind is not None:
        return kind
    if _looks_like_text(head):
        # ffmpeg would play a .txt file as ANSI art; text is never media here.
        return None
    try:
        read_image(path, limits)
        return "image"
    except VideoError as err:
        if err.status in LIMIT_STATUSES:  # an image, too large to decode: the scan reports it so
            return "image"
    try:
        probe(path, limits)
        return "video"
    except VideoError as err:
        return "video" if err.status in LIMIT_STATUSES else None


def read_image(path: str | Path, limits: MediaLimits = UNLIMITED) -> np.ndarray:
    """An image file as ``(H, W, 3)`` RGB uint8, EXIF orientation applied (phone photos).

    Raises VideoError: ``unreadable`` or ``empty`` when it is not a decodable image, whatever
    Pillow raises on a damaged file (its PNG reader raises SyntaxError, for one); ``too_large``
    when its header names more pixels than ``limits`` allow (checked before decoding).
    """
    path = _check_file(path)
    try:
        with warnings.catch_warnings():
            # past Pillow's own bomb size it warns on stderr; the limits above decide instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                limits.check_pixels(*image.size, path, "image")
                image = ImageOps.exif_transpose(image)
                return np.asarray(image.convert("RGB"))
    except VideoError:
        raise
    except Image.DecompressionBombError as err:  # Pillow refuses in open(), before the size is ours to check
        claimed = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(claimed.group(1)):,} pixels" if claimed else "more pixels than Pillow decodes safely"
        limit = f"over the limit of {limits.max_pixels:,} pixels (--max-pixels)" if limits.max_pixels else (
            "more than Pillow decodes safely")
        raise VideoError(TOO_LARGE, f"image whose header claims {pixels}, {limit}", path) from None
    except Exception as err:  # noqa: BLE001 (a damaged file makes Pillow raise almost anything)
        raise VideoError(UNREADABLE, f"cannot decode as an image ({_short(err)})", path) from None
