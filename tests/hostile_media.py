"""A seeded corpus of damaged and forged media, made at test time from the sample media.

Each kind of damage a user's upload may carry: bytes flipped, runs zeroed, headers overwritten,
files cut short, halves of two files spliced, extensions that lie; and forged headers: a PNG
whose header claims 30000x30000 pixels, an AVI whose header claims ten million frames. Images of
exactly the pixel limit and one column over sit beside them. The same seed gives the same bytes,
so a failure names a file that can be made again.
"""

from __future__ import annotations

import random
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 2126
#: The limits the corpus is scanned with: the AVI sample (720x528) sits exactly at the pixel
#: limit, and FF++ 519 (30 s) is past the duration limit.
MAX_PIXELS = 720 * 528
MAX_SECONDS = 20
CLAIMED_FRAMES = 10_000_000

FFPP_519 = "ffpp/original_sequences/youtube/c23/videos/519.mp4"
MEGAMIND = "nonhuman/Megamind.avi"
FACE_PNG = "images/ex_original.png"
GROUP_JPG = "images/multiface.jpg"


def short_clip(samples: Path, target: Path, frames: int = 50, keyframe_every: int = 10) -> Path:
    """The first ``frames`` frames of FF++ 519 as H.264 MP4 with an IDR frame every
    ``keyframe_every`` frames (a short video with keyframes to seek to)."""
    import av

    with av.open(str(samples / FFPP_519)) as source, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.options = {"x264-params": f"keyint={keyframe_every}:min-keyint={keyframe_every}:scenecut=0",
                          "preset": "veryfast"}
        stream.time_base = Fraction(1, 25)
        for i, frame in enumerate(source.decode(video=0)):
            if i == frames:
                break
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target


def _jpeg_within_limit(path: Path) -> bytes:
    """The photo scaled to 640 px wide (within the pixel limit), as JPEG."""
    import io

    image = Image.open(path).convert("RGB")
    image = image.resize((640, round(image.height * 640 / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _flip(data: bytes, rng: random.Random, count: int) -> bytes:
    out = bytearray(data)
    for _ in range(count):
        offset = rng.randrange(len(out) // 10, len(out))
        out[offset] ^= 0xFF
    return bytes(out)


def _zero_runs(data: bytes, rng: random.Random, runs: int, length: int) -> bytes:
    out = bytearray(data)
    for _ in range(runs):
        offset = rng.randrange(len(out) // 10, max(len(out) // 10 + 1, len(out) - length))
        out[offset:offset + length] = bytes(min(length, len(out) - offset))
    return bytes(out)


def _overwrite_header(data: bytes, rng: random.Random, length: int = 32) -> bytes:
    return bytes(rng.randrange(256) for _ in range(length)) + data[length:]


def forged_png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (CRC recomputed, so only the size lies)."""
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + data[24:29]
    return data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:]


def forged_avi_frames(data: bytes, frames: int) -> bytes:
    """An AVI whose main and stream headers claim ``frames`` frames."""
    out = bytearray(data)
    avih, strh = out.index(b"avih"), out.index(b"strh")
    out[avih + 8 + 16:avih + 8 + 20] = struct.pack("<I", frames)  # MainAVIHeader.dwTotalFrames
    out[strh + 8 + 32:strh + 8 + 36] = struct.pack("<I", frames)  # AVIStreamHeader.dwLength
    return bytes(out)


def build_corpus(samples: Path, folder: Path) -> dict[str, str]:
    """Write the corpus into ``folder``; returns {file name: what it is}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    clip = short_clip(samples, folder.parent / "clip-source.mp4").read_bytes()
    sources = {
        "clip.mp4": clip,
        "megamind.avi": (samples / MEGAMIND).read_bytes(),
        "face.png": (samples / FACE_PNG).read_bytes(),
        "group.jpg": _jpeg_within_limit(samples / GROUP_JPG),
    }
    corpus: dict[str, bytes] = {}
    about: dict[str, str] = {}

    def add(name: str, data: bytes, what: str) -> None:
        corpus[name], about[name] = data, what

    for name, data in sources.items():
        stem, suffix = name.rsplit(".", 1)
        add(f"clean_{name}", data, "an undamaged sample")
        add(f"flipped_a_{stem}.{suffix}", _flip(data, rng, 40), "40 bytes flipped")
        add(f"flipped_b_{stem}.{suffix}", _flip(data, rng, 400), "400 bytes flipped")
        add(f"zeroed_{stem}.{suffix}", _zero_runs(data, rng, 3, 4096), "three runs of 4 KiB zeroed")
        add(f"header_{stem}.{suffix}", _overwrite_header(data, rng), "first 32 bytes overwritten")
        add(f"cut_40_{stem}.{suffix}", data[: int(len(data) * 0.4)], "cut to 40%")
        add(f"cut_90_{stem}.{suffix}", data[: int(len(data) * 0.9)], "cut to 90%")
    add("spliced_clip_megamind.mp4", clip[: len(clip) // 2] + sources["megamind.avi"][len(sources["megamind.avi"]) // 2:],
        "first half of an MP4, second half of an AVI")
    add("spliced_png_jpg.png", sources["face.png"][: len(sources["face.png"]) // 2]
        + sources["group.jpg"][len(sources["group.jpg"]) // 2:], "first half of a PNG, second half of a JPEG")
    add("png_named.mp4", sources["face.png"], "a PNG named .mp4")
    add("avi_named.png", sources["megamind.avi"], "an AVI named .png")
    add("text_named.mp4", b"this is a text file, not a video\n" * 40, "text named .mp4")
    add("forged_30000x30000.png", forged_png_size(sources["face.png"], 30000, 30000),
        "a PNG whose header claims 30000x30000 pixels")
    add("claims_10M_frames.avi", forged_avi_frames(sources["megamind.avi"], CLAIMED_FRAMES),
        "an AVI whose headers claim ten million frames")
    add("long_519.mp4", (samples / FFPP_519).read_bytes(), "a 30 s video, past the duration limit")
    add("large_group.jpg", (samples / GROUP_JPG).read_bytes(), "a photo larger than the pixel limit")
    for name, data in corpus.items():
        (folder / name).write_bytes(data)
    pixels = np.asarray(Image.open(samples / FACE_PNG).convert("RGB").resize((720, 528)))
    Image.fromarray(pixels).save(folder / "exact_limit.png")
    about["exact_limit.png"] = f"an image of exactly {MAX_PIXELS} pixels"
    Image.fromarray(np.concatenate([pixels, pixels[:, -1:]], axis=1)).save(folder / "over_limit.png")
    about["over_limit.png"] = "an image one column past the pixel limit"
    return about
