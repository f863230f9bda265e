"""Publicly hosted checkpoints ``facesleuth weights fetch`` downloads: every variant of a
registered format that names a URL, as ``FORMAT/VARIANT``; ``FORMAT`` alone names all of them.

Each file is checked against its published sha256 (pooch) and imported into a run folder
``DIR/VARIANT``. Without internet a download fails within ``timeout`` seconds with the URL and
how to import a file downloaded elsewhere.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pooch
import requests

from facesleuth.published import formats
from facesleuth.published.runfolder import import_detector

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = 10  # seconds: an offline machine fails at once, not after minutes


class FetchError(RuntimeError):
    """A checkpoint could not be downloaded or does not match its sha256; the message says what to do."""


def catalogue() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """``{"FORMAT/VARIANT": (format, variant, its VARIANTS entry)}`` for every publicly hosted checkpoint."""
    return {f"{fmt.name}/{variant}": (fmt.name, variant, entry)
            for fmt in formats().values() for variant, entry in fmt.variants.items() if entry.get("url")}


def resolve(name: str) -> list[str]:
    """The catalogue names ``name`` stands for (itself, or every variant of a format)."""
    known = catalogue()
    if name in known:
        return [name]
    group = [key for key in known if key.split("/", 1)[0] == name]
    if group:
        return group
    raise FetchError(f"no published checkpoint called {name!r}; known: {', '.join(sorted(known))} "
                     f"(or a format name: {', '.join(sorted({k.split('/')[0] for k in known}))})")


def fetch(name: str, dest: str | Path, timeout: float = DOWNLOAD_TIMEOUT) -> list[Path]:
    """Download the checkpoints ``name`` names into ``dest``/downloads and import each as ``dest``/VARIANT."""
    dest = Path(dest)
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    folders = []
    for key in resolve(name):
        fmt, variant, entry = catalogue()[key]
        url, sha256 = entry["url"], entry.get("sha256")
        file_name = entry.get("file") or url.rsplit("/", 1)[-1]
        if not sha256:
            log.warning("%s: its publisher gives no sha256, so the download cannot be verified; run.yaml "
                        "records the sha256 of the file received", key)
        try:
            path = pooch.retrieve(url, known_hash=f"sha256:{sha256}" if sha256 else None, fname=file_name,
                                  path=dest / "downloads", downloader=downloader)
        except ValueError as err:  # pooch's hash mismatch; it has already deleted the download
            raise FetchError(f"{key}: the file at {url} does not match its published sha256 {sha256}, "
                             f"so it was not kept ({err})") from None
        except (requests.RequestException, OSError) as err:
            raise FetchError(
                f"{key}: could not download {url} ({type(err).__name__}: {err}). Without internet here, "
                f"download that file elsewhere and import it: facesleuth weights import {fmt} FILE "
                f"{dest / variant} --variant {variant}") from None
        folders.append(import_detector(fmt, path, dest / variant, variant))
    return folders
