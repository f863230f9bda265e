"""Which files a scan looks at: the paths given, folders walked recursively, media judged by content.

Every path named on the command line yields a result, whatever it holds (a missing path is
reported ``missing``, a text file ``unsupported``). Inside folders, files are recognised by
content (:func:`facesleuth.extract.video.sniff_media`), so a PNG renamed ``.dat`` is scanned; files that
are neither media by content nor named like media (``metadata.json``, ``README``) are skipped
and counted, since every folder of videos carries such files and reporting each as a failure
would bury the real ones. A file *named* like media whose content is not is reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from facesleuth.registry import IMAGE_SUFFIXES, VIDEO_SUFFIXES

# Names that promise media: such a file is reported even inside a folder when its content is not.
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES


@dataclass(frozen=True)
class Candidate:
    """A path to scan. ``explicit``: named by the user (always reported), not found in a folder."""

    path: Path
    explicit: bool


def named_like_media(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in MEDIA_SUFFIXES


def _walk(folder: Path) -> list[Path]:
    """Regular files (and links to them, or broken links) under ``folder``, sorted, recursively.

    Symbolic links to folders are not followed, so a link cycle cannot loop forever.
    """
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(files))
    return found


def discover(paths: Iterable[str | os.PathLike]) -> list[Candidate]:
    """The candidates in ``paths``, in the order given (folders expanded, sorted), each file once."""
    candidates: list[Candidate] = []
    position: dict[str, int] = {}

    def add(path: Path, explicit: bool) -> None:
        key = os.path.realpath(path) if path.exists() else str(path)
        if key not in position:
            position[key] = len(candidates)
            candidates.append(Candidate(path, explicit))
        elif explicit and not candidates[position[key]].explicit:
            # named on its own as well as inside a folder given before: report it whatever it is
            candidates[position[key]] = Candidate(candidates[position[key]].path, True)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path):
                add(file, explicit=False)
        else:
            add(path, explicit=True)
    return candidates
