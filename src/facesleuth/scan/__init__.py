"""``facesleuth scan``: check uploaded videos and images for manipulated faces (thesis 1.3).

The "automatic fake video control mechanism" the thesis proposes, built on a trained run of
the pipeline. Each input is recognised by content (video or image), its faces are found and
tracked with the pipeline's own test flow, scored by the run's model, aggregated into one
score and judged against the run's validation EER threshold.

API (the CLI is a thin layer over it)::

    from facesleuth.scan import ScanOptions, scan_paths
    for result in scan_paths(["uploads/"], "results/models/efb0_ns/default", ScanOptions(frames=32)):
        print(result.path, result.status, result.score, result.verdict)

Modules: :mod:`.runfolder` (loading a run), :mod:`.discover` (which files), :mod:`.scanner`
(one input), :mod:`.formats` and :mod:`.html` (output), :mod:`.schema` (JSON Schemas),
:mod:`facesleuth.evaluate.inference` (torch, ONNX Runtime or OpenVINO); the command is :mod:`facesleuth.cli.scan`.
"""

from facesleuth.scan.runfolder import (
    RUN_FOLDER_HELP,
    RunFolderError,
    ScanRun,
    load_scan_run,
)
from facesleuth.scan.scanner import (
    FAILED_STATUSES,
    STATUSES,
    VERDICTS,
    FaceScore,
    Scanner,
    ScanOptions,
    ScanResult,
    scan_paths,
)

__all__ = [
    "FAILED_STATUSES",
    "RUN_FOLDER_HELP",
    "STATUSES",
    "VERDICTS",
    "FaceScore",
    "RunFolderError",
    "ScanOptions",
    "ScanResult",
    "ScanRun",
    "Scanner",
    "load_scan_run",
    "scan_paths",
]
