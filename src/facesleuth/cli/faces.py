"""``facesleuth faces VIDEO --flow train|test --out DIR``: one video through an extraction flow.

Writes ``faces.parquet``, ``status.parquet`` and ``contact_sheet.png`` (the crops in a grid,
labelled with frame and track) into DIR, to see what the pipeline would keep from a video.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facesleuth.config import ConfigError, extraction_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
THUMB = 160  # contact sheet cell side, pixels


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "faces",
        description=(
            "Run one video through an extraction flow of the pipeline. Settings come from the "
            "config's extraction section (schema defaults without --config). Exit 0 when faces "
            "were kept, 1 when the video failed or had no usable face (status printed), 2 for a "
            "usage error."
        ),
    )
    parser.add_argument("video", type=Path, help="video file")
    parser.add_argument("--flow", choices=["train", "test"], required=True,
                        help="train: evenly spaced frames; test: every frame_step-th frame, tracked")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--config", type=Path, default=None, help="config YAML whose extraction section to use")
    parser.add_argument("--device", default=None, help="detector device: auto, cpu, cuda or cuda:N (overrides config)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from facesleuth.extract.flows import extract_video
    from facesleuth.io import FACES_SCHEMA, STATUS_SCHEMA, write_parquet
    from facesleuth.runtime import resolve_device, setup_logging

    setup_logging()
    try:
        settings = extraction_settings(args.config)
    except (OSError, ValueError, ConfigError) as err:
        print(f"facesleuth faces: {err}", file=sys.stderr)
        return EXIT_USAGE
    detection = dict(settings["detection"])
    if args.device:
        detection["device"] = args.device
    try:
        resolve_device(detection["device"])
    except RuntimeError as err:
        print(f"facesleuth faces: --device: {err}", file=sys.stderr)
        return EXIT_USAGE

    faces, status = extract_video(args.video, args.flow, detection, settings[f"{args.flow}_flow"])
    args.out.mkdir(parents=True, exist_ok=True)
    write_parquet(faces, args.out / "faces.parquet", FACES_SCHEMA)
    write_parquet(status, args.out / "status.parquet", STATUS_SCHEMA)
    row = status.iloc[0]
    contact_sheet(faces, args.out / "contact_sheet.png", title=f"{args.video.name}: {row['status']}, {row['message']}")
    print(
        f"{args.video}: {row['status']} - {row['message']}\n"
        f"  frames {row['frames_read']} of {row['frames_total']}, faces detected {row['faces_detected']}, "
        f"kept {row['faces_kept']}, {row['seconds']:.1f} s\n"
        f"  wrote {args.out / 'faces.parquet'}, {args.out / 'status.parquet'}, {args.out / 'contact_sheet.png'}"
    )
    return EXIT_OK if row["status"] == "ok" else EXIT_FAILED


def contact_sheet(faces, path: Path, title: str = "", columns: int = 8) -> Path:
    """Grid of the crops (letterboxed to THUMB px) labelled ``f<frame>`` and ``t<track>``; with no
    faces, a small image carrying ``title`` so the file is always there to look at."""
    from PIL import Image, ImageDraw

    from facesleuth.io import atomic_path
    from facesleuth.train.preprocess import decode_jpeg

    count = len(faces)
    columns = max(1, min(columns, count)) if count else 1
    rows = (count + columns - 1) // columns if count else 0
    header = 24
    width = max(columns * THUMB, 480)
    sheet = Image.new("RGB", (width, header + rows * THUMB + (THUMB // 2 if not count else 0)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 6), title[:120], fill="black")
    for i, face in enumerate(faces.itertuples(index=False)):
        image = Image.fromarray(decode_jpeg(face.jpeg))
        image.thumbnail((THUMB, THUMB))
        x, y = (i % columns) * THUMB, header + (i // columns) * THUMB
        sheet.paste(image, (x + (THUMB - image.width) // 2, y + (THUMB - image.height) // 2))
        label = f"f{face.frame}" + (f" t{face.track}" if face.track >= 0 else "")
        draw.rectangle((x, y, x + 8 * len(label) + 4, y + 14), fill="black")
        draw.text((x + 2, y + 1), label, fill="white")
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
