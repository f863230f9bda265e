"""Perturbations of video frames: one implementation for the demo's DFDC-style augmenters and
for the robustness suite.

The robustness suite asks how a detector's scores degrade when the test videos are processed
the way uploads are: JPEG compression of every frame, downscaling, Gaussian blur, Gaussian
noise, frame-rate halving and H.264 re-encoding. Each **family** has one parameter and a value
of it that leaves the frames untouched (its identity):

==========  =====================================  =========  ===============
family      parameter                              identity   config defaults
==========  =====================================  =========  ===============
jpeg        JPEG quality of every frame            none       90, 70, 50
downscale   shrink factor (1/n), scaled back up    1          2, 4
blur        Gaussian sigma, pixels                 0          1, 2, 4
noise       Gaussian sigma, 0-255 levels           0          5, 10, 20
framerate   keep every n-th frame (fps / n)        1          2
h264        libx264 CRF (PyAV), encoded + decoded  none       23, 35
==========  =====================================  =========  ===============

A perturbation is named ``{family}_{value}`` (``jpeg_70``, ``downscale_4``, ``h264_35``); that
name is a column of the robustness tables and part of the cached files' paths.

Downscaled frames are scaled back to their size, so what is measured is the detail lost, not
the detector's minimum face size (a 1/4 DFDC frame would hold faces too small to be kept).
H.264 re-encoding needs PyAV with an encoder named ``libx264`` (PyPI's ``av`` wheels ship one);
:func:`h264_available` says whether this installation has it.

Everything works frame by frame on RGB uint8 frames, streaming (:func:`perturb_stream`), so a
1080p video never needs all its frames in memory; :func:`perturb_video` writes the result as a
lossless FFV1 AVI, so the file adds no compression of its own.

cv2 is imported where it is used, as in :mod:`facesleuth.extract.detect`, and PyAV (optional: only the
h264 family needs it) likewise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from facesleuth import registry
from facesleuth.extract.video import iter_frames, probe

Frames = list[np.ndarray]

#: Lossless container and codec of perturbed videos (OpenCV's FFmpeg writer; decoded exactly).
LOSSLESS_FOURCC = "FFV1"
LOSSLESS_SUFFIX = ".avi"
H264_ENCODER = "libx264"


# ---------------------------------------------------------------------- one frame


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a float image to uint8 (x + 0.5, clipped): integers come back unchanged."""
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def blur_frame(frame: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    if sigma <= 0:
        return frame.copy()
    return cv2.GaussianBlur(frame, (0, 0), float(sigma))


def noise_frame(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` levels (float32 draws from ``rng``, rounded)."""
    return to_uint8(frame + rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(sigma))


def jpeg_frame(frame: np.ndarray, quality: int | None) -> np.ndarray:
    """``frame`` through JPEG at ``quality`` (None: untouched)."""
    import cv2

    if quality is None:
        return frame.copy()
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a frame of shape {frame.shape}")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def even_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """(width, height) scaled by ``factor``, rounded to even sides (video encoders need them)."""
    return max(2, round(width * factor / 2) * 2), max(2, round(height * factor / 2) * 2)


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize to (width, height); the frame itself (copied) when the size is its own."""
    import cv2

    height, width = frame.shape[:2]
    if (width, height) == tuple(size):
        return frame.copy()
    return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)


def downscale_frame(frame: np.ndarray, divisor: float) -> np.ndarray:
    """Shrink by 1/``divisor`` (area) and scale back to the frame's size (bilinear)."""
    import cv2

    if divisor <= 1:
        return frame.copy()
    height, width = frame.shape[:2]
    small = (max(1, round(width / divisor)), max(1, round(height / divisor)))
    return cv2.resize(cv2.resize(frame, small, interpolation=cv2.INTER_AREA), (width, height), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------------- whole videos (lists)


def blur(frames: Frames, sigma: float) -> Frames:
    return [blur_frame(f, sigma) for f in frames]


def noise(frames: Frames, sigma: float, rng: np.random.Generator) -> Frames:
    return [noise_frame(f, sigma, rng) for f in frames]


def jpeg(frames: Frames, quality: int | None) -> Frames:
    return [jpeg_frame(f, quality) for f in frames]


def resize(frames: Frames, factor: float) -> Frames:
    """Frames scaled by ``factor`` (kept small), even sides for the encoder."""
    height, width = frames[0].shape[:2]
    size = even_size(width, height, factor)
    return [resize_frame(f, size) for f in frames]


def keep_evenly(frames: Frames, fps: float, count: int) -> tuple[Frames, float]:
    """``count`` frames evenly spread over the video (the video keeps its duration at a lower
    frame rate)."""
    count = max(1, min(int(count), len(frames)))
    keep = np.round(np.linspace(0, len(frames) - 1, count)).astype(int)
    return [frames[i] for i in keep], fps * count / len(frames)


# ---------------------------------------------------------------------- H.264 round trip


@functools.lru_cache(maxsize=1)
def h264_available() -> bool:
    """Whether PyAV is installed with the libx264 encoder."""
    try:
        import av
    except ImportError:
        return False
    return H264_ENCODER in av.codecs_available


def _require_h264() -> None:
    if not h264_available():
        raise RuntimeError(
            f"H.264 re-encoding needs PyAV with the {H264_ENCODER} encoder (pip install av); "
            "leave the h264 family out of robustness.perturbations otherwise"
        )


def h264_stream(frames: Iterable[np.ndarray], fps: float, crf: int | None) -> Iterator[np.ndarray]:
    """Frames encoded with libx264 at ``crf`` (yuv420p, the codec's defaults otherwise) and
    decoded again, in memory; every frame comes back, in order, at its size. None: untouched."""
    if crf is None:
        yield from (f.copy() for f in frames)
        return
    _require_h264()
    import av

    rate = Fraction(fps).limit_denominator(1001)
    encoder = decoder = None
    for frame in frames:
        if encoder is None:
            height, width = frame.shape[:2]
            encoder = av.CodecContext.create(H264_ENCODER, "w")
            # yuv420p needs even sides: pad odd ones by one (edge copied), crop after decoding.
            encoder.width, encoder.height = width + width % 2, height + height % 2
            encoder.pix_fmt = "yuv420p"
            encoder.time_base = 1 / rate
            encoder.framerate = rate
            encoder.options = {"crf": str(int(crf)), "preset": "veryfast"}
            decoder = av.CodecContext.create("h264", "r")
            pts = 0
        if frame.shape[:2] != (height, width):
            raise ValueError(f"frame size changed within the video ({frame.shape[:2]} vs {(height, width)})")
        padded = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
        picture.pts = pts
        pts += 1
        for packet in encoder.encode(picture):
            for decoded in decoder.decode(packet):
                yield decoded.to_ndarray(format="rgb24")[:height, :width]
    if encoder is None:
        return
    for packet in encoder.encode(None):
        for decoded in decoder.decode(packet):
            yield decoded.to_ndarray(format="rgb24")[:height, :width]
    for decoded in decoder.decode(None):
        yield decoded.to_ndarray(format="rgb24")[:height, :width]


def h264(frames: Frames, fps: float, crf: int | None) -> Frames:
    return list(h264_stream(frames, fps, crf))


# ---------------------------------------------------------------------- families


@dataclass(frozen=True)
class Family:
    """One kind of perturbation: its parameter, the value that changes nothing, how it streams."""

    name: str
    parameter: str
    identity: float | None
    #: (frames, fps, value, rng) -> (frames, new fps), lazily
    stream: Callable[[Iterable[np.ndarray], float, float | None, np.random.Generator], tuple[Iterator[np.ndarray], float]]
    #: a number that grows with the damage done, for ordering and plotting (0 at the identity)
    severity: Callable[[float | None], float]
    needs: Callable[[], bool] = lambda: True


def _mapped(function: Callable[[np.ndarray], np.ndarray], frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    return (function(f) for f in frames)


def _every_nth(frames: Iterable[np.ndarray], n: int) -> Iterator[np.ndarray]:
    return (f for i, f in enumerate(frames) if i % n == 0)


def _framerate_stream(frames, fps, value, rng):
    n = max(1, int(value))
    return _every_nth(frames, n), fps / n


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "jpeg", "JPEG quality", None,
            lambda frames, fps, value, rng: (_mapped(lambda f: jpeg_frame(f, None if value is None else int(value)), frames), fps),
            lambda value: 0.0 if value is None else 100.0 - float(value),
        ),
        Family(
            "downscale", "shrink factor 1/n", 1,
            lambda frames, fps, value, rng: (_mapped(lambda f: downscale_frame(f, float(value)), frames), fps),
            lambda value: math.log2(float(value)),
        ),
        Family(
            "blur", "Gaussian sigma (px)", 0,
            lambda frames, fps, value, rng: (_mapped(lambda f: blur_frame(f, float(value)), frames), fps),
            lambda value: float(value),
        ),
        Family(
            "noise", "Gaussian sigma (levels)", 0,
            lambda frames, fps, value, rng: (_mapped(lambda f: noise_frame(f, float(value), rng), frames), fps),
            lambda value: float(value),
        ),
        Family(
            "framerate", "keep every n-th frame", 1,
            _framerate_stream,
            lambda value: math.log2(float(value)),
        ),
        Family(
            "h264", "H.264 CRF", None,
            lambda frames, fps, value, rng: (h264_stream(frames, fps, None if value is None else int(value)), fps),
            lambda value: 0.0 if value is None else float(value),
            h264_available,
        ),
    )
}
registry.require_implemented("perturbation families", registry.PERTURBATION_FAMILIES, FAMILIES)


def family_of(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def perturb_stream(
    frames: Iterable[np.ndarray], fps: float, family: str, value: float | None, rng: np.random.Generator
) -> tuple[Iterator[np.ndarray], float]:
    """Lazily perturbed frames and the new frame rate."""
    return family_of(family).stream(frames, fps, value, rng)


# ---------------------------------------------------------------------- files


def perturb_video(
    source: str | Path, target: str | Path, family: str, value: float | None, seed: int = 0
) -> dict[str, float | int]:
    """Decode ``source`` (sequentially, every frame), perturb it and write ``target`` as a
    lossless FFV1 AVI (beside it under a temporary name, then renamed). Returns the frame counts
    and rates before and after. Raises :class:`facesleuth.extract.video.VideoError` for an unreadable
    source."""
    import cv2

    source, target = Path(source), Path(target)
    info = probe(source)
    frames_in = 0

    def counted():
        nonlocal frames_in
        for frame in iter_frames(source):
            frames_in += 1
            yield frame

    stream, fps = perturb_stream(counted(), info.fps, family, value, np.random.default_rng(seed))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    writer = None
    written = 0
    try:
        for frame in stream:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*LOSSLESS_FOURCC), float(fps), (width, height))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot open a {LOSSLESS_FOURCC} writer for {tmp}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            written += 1
        if writer is None:
            raise ValueError(f"{source}: no frames to perturb")
        writer.release()
        tmp.replace(target)
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return {"frames_in": frames_in, "frames_out": written, "fps_in": info.fps, "fps_out": fps}
