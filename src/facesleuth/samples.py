"""The sample media the tests and benchmarks read: where each file comes from, and a download.

Eighteen small real files (FaceForensics++, DFDC, a street clip, an animation, images) laid out
as the full datasets lay out theirs. Each is public in a GitHub repository, pinned here by
commit (the OpenCV animation by its ``4.x`` branch) and by sha256. ``fetch`` downloads them with
pooch into that layout, checking every hash; ``verify`` checks a folder that is already there.
The files come from research datasets: use them for research only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests

#: raw.githubusercontent.com serves a repository's file as <base>/<repository>/<ref>/<path>;
#: none of these files is stored with Git LFS, so the raw URL returns the file itself.
GITHUB_RAW = "https://raw.githubusercontent.com"

_ICPR = ("polimi-ispl/icpr2020dfdc", "bbd64115e612e50416fb64fa8f60393fe4642dc0")
_FFPP = ("ondyari/FaceForensics", "b952e41cba017eb37593c39e12bd884a934791e1")
_FACENET = ("timesler/facenet-pytorch", "787da06156087cd6b616fe6608213722bddc30cd")
_OPENCV = ("opencv/opencv", "4.x")


@dataclass(frozen=True)
class SampleFile:
    """One sample: ``path`` in the samples folder, ``source`` path in ``repository`` at ``ref``."""

    path: str
    repository: str
    ref: str
    source: str
    sha256: str

    def url(self, base_url: str = GITHUB_RAW) -> str:
        return f"{base_url.rstrip('/')}/{self.repository}/{self.ref}/{self.source}"


def _icpr(path: str, sha256: str) -> SampleFile:
    # the ICPR 2020 DFDC repository keeps its test data in the datasets' own layouts
    return SampleFile(path, *_ICPR, f"test/data/{path}", sha256)


SAMPLE_FILES: tuple[SampleFile, ...] = (
    _icpr("dfdc/dfdc_train_part_0/brtujopkby.mp4", "73d79fa019b684884b3b4a06d939447e87ffe0012e7c80fc48ee3239c4c66046"),
    _icpr("dfdc/dfdc_train_part_0/metadata.json", "37eb09ff91e136c233a21cd4de305b559bd5b82066afba12196fa8f02362132f"),
    _icpr("dfdc/dfdc_train_part_1/metadata.json", "cc098f127a8cc078a735bd67581a7ba6e4f36495a34c832bfc64adeef0da1419"),
    _icpr("dfdc/dfdc_train_part_10/metadata.json", "b5daa07ce33cda48c79b76b9dffc8befc3106c2c2cac2883ae3a94dc537eaf61"),
    _icpr("dfdc/dfdc_train_part_10/widuwuoiur.mp4", "b3cf7968f2e90164ac29a477adad23f70eb4fdabe30a9f1ae7ced2d4053845f5"),
    _icpr("dfdc/dfdc_train_part_10/yhffcuhhjy.mp4", "4fcf41ca480539fee67fc7cee0146c037f990aa507ac6c2d3de134d1d6bf6acd"),
    _icpr("ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
          "dfdf5865b996f0732047408ae0d01282671473811ce4c153c29783e95dc2ef33"),
    _icpr("ffpp/manipulated_sequences/FaceSwap/c23/videos/634_660.mp4",
          "f181ddd209539201810f2de0f743c7c8b75b31e724d873798f21f71058f1f82e"),
    _icpr("ffpp/manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
          "5b9ac0deadd01071455172be2f406c62cab53d19eee6b5ca23f743e6f021288d"),
    _icpr("ffpp/original_sequences/youtube/c23/videos/004.mp4",
          "2ac6708057f9f4f6e560a8930988cd9b569875ba2266fa1caac68b1d5ddac348"),
    _icpr("ffpp/original_sequences/youtube/c23/videos/519.mp4",
          "89f1c6ce46bde63b2917bcf02d5f0cffd1f28be41ac5b594a3f87fa365c1e03d"),
    _icpr("ffpp/original_sequences/youtube/c23/videos/634.mp4",
          "439347ff49456a32b8de834de5499b36c3e357ec460ce144fae7477eed85c8b0"),
    SampleFile("images/ex_deepfakes.png", *_FFPP, "images/ex_deepfakes.png",
               "9facb90a6814903d615e1faa0ced0c2267e8ba306373f29b0672504ba1352048"),
    SampleFile("images/ex_deepfakes_mask.png", *_FFPP, "images/ex_deepfakes_mask.png",
               "c8adf153ddadd570ad9dbec1d9a570454f73a69f8eab60c411c9b8ed8445860e"),
    SampleFile("images/ex_original.png", *_FFPP, "images/ex_original.png",
               "1a6d475a1871e9086b006f9bf791ad6bd76c9b541cdc186389029231b7575924"),
    SampleFile("images/multiface.jpg", *_FACENET, "data/multiface.jpg",
               "433a04ac20456b02284f66f8336a4267be86a99ed3635141a477e192312b4f2f"),
    SampleFile("multiface/street.mp4", *_FACENET, "examples/video.mp4",
               "d4c0b7a4e385e11ee3cfe7fbdfd0d01d319e16944441bba747a897eed33d115f"),
    # A branch, not a commit: if OpenCV ever changes the file, its sha256 stops matching and
    # fetch says so instead of handing the tests another video.
    SampleFile("nonhuman/Megamind.avi", *_OPENCV, "samples/data/Megamind.avi",
               "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5"),
)

log = logging.getLogger(__name__)


class SamplesError(RuntimeError):
    """A sample could not be downloaded or does not match its sha256; the message names it."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: str | Path) -> list[str]:
    """Problems of an existing samples folder, one line each (missing file, wrong sha256); [] if none."""
    folder = Path(folder)
    problems = []
    for sample in SAMPLE_FILES:
        path = folder / sample.path
        if not path.is_file():
            problems.append(f"{sample.path}: missing")
        elif (actual := sha256_of(path)) != sample.sha256:
            problems.append(f"{sample.path}: sha256 {actual}, expected {sample.sha256}")
    return problems


def fetch(dest: str | Path, base_url: str = GITHUB_RAW, timeout: float = 60) -> Path:
    """Download every sample into ``dest`` in the samples layout and check its sha256.

    Files already there with the right hash are kept; others are downloaded again. A download
    whose hash does not match raises :class:`SamplesError` and is not kept.
    """
    dest = Path(dest)
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    for sample in SAMPLE_FILES:
        target = dest / sample.path
        url = sample.url(base_url)
        try:
            pooch.retrieve(url, known_hash=f"sha256:{sample.sha256}", fname=target.name,
                           path=target.parent, downloader=downloader)
        except ValueError as err:  # pooch's hash mismatch; it has already deleted the download
            raise SamplesError(f"{sample.path}: the file at {url} does not match its sha256 "
                               f"{sample.sha256}, so it was not kept ({err})") from None
        except (requests.RequestException, OSError) as err:
            raise SamplesError(f"{sample.path}: could not download {url}: {err}") from None
    return dest
