"""Output formats of a scan: a terminal table (streamed), JSON (one document), JSON Lines (streamed).

Writers receive results one by one as inputs finish (:meth:`OutputWriter.add`) and are closed
with the summary at the end (:meth:`OutputWriter.finish`). The streamed formats print each
input as soon as it is scanned, so a long folder scan shows its results while it runs and an
interrupted one keeps what it printed; JSON and HTML need the whole scan and are written at the
end. The HTML report lives in :mod:`facesleuth.scan.html`.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from facesleuth import __version__
from facesleuth.scan.html import render_html, threshold_source_text
from facesleuth.scan.runfolder import ScanRun
from facesleuth.scan.scanner import (
    FAILED_STATUSES,
    OK,
    STATUSES,
    VERDICTS,
    ScanOptions,
    ScanResult,
)

FORMATS = ("table", "json", "jsonl", "html")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class Tally:
    """Running counts of a scan (streamed formats keep these, not every result)."""

    def __init__(self) -> None:
        self.inputs = 0
        self.statuses: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()

    def add(self, result: ScanResult) -> None:
        self.inputs += 1
        self.statuses[result.status] += 1
        if result.verdict:
            self.verdicts[result.verdict] += 1

    def summary(self, skipped: list[str], seconds: float) -> dict[str, Any]:
        """Counts per status and verdict (only those that occur), failures, skipped files."""
        return {
            "inputs": self.inputs,
            "statuses": {s: self.statuses[s] for s in STATUSES if self.statuses[s]},
            "verdicts": {v: self.verdicts[v] for v in VERDICTS if self.verdicts[v]},
            "failed": sum(self.statuses[s] for s in FAILED_STATUSES),
            "skipped": len(skipped),
            "skipped_files": list(skipped),
            "seconds": round(float(seconds), 3),
        }


def summarize(results: Iterable[ScanResult], skipped: list[str], seconds: float) -> dict[str, Any]:
    """The ``summary`` section for ``results``."""
    tally = Tally()
    for result in results:
        tally.add(result)
    return tally.summary(skipped, seconds)


def build_document(results: list[ScanResult], run: ScanRun, options: ScanOptions, skipped: list[str],
                   seconds: float, created: str | None = None, thumbnails: bool = False) -> dict[str, Any]:
    """The ``--format json`` document (see :data:`facesleuth.scan.schema.DOCUMENT_SCHEMA`)."""
    return {
        "facesleuth_version": __version__,
        "created": created or now_iso(),
        "model": run.describe(),
        "settings": options.describe(),
        "summary": summarize(results, skipped, seconds),
        "results": [r.to_dict(thumbnails=thumbnails) for r in results],
    }


def summary_line(summary: dict[str, Any]) -> str:
    """``12 inputs in 35.2 s: 8 ok (3 fake, 5 real), 1 no_face, 3 failed (...)``."""
    statuses, verdicts = summary["statuses"], summary["verdicts"]
    parts = []
    if statuses.get(OK):
        split = ", ".join(f"{verdicts[v]} {v}" for v in VERDICTS if verdicts.get(v))
        parts.append(f"{statuses[OK]} ok ({split})")
    if statuses.get("no_face"):
        parts.append(f"{statuses['no_face']} no_face")
    if summary["failed"]:
        failed = ", ".join(f"{statuses[s]} {s}" for s in STATUSES if s in FAILED_STATUSES and statuses.get(s))
        parts.append(f"{summary['failed']} failed ({failed})")
    line = f"{summary['inputs']} input{'s' if summary['inputs'] != 1 else ''} in {summary['seconds']:.1f} s"
    line += ": " + ", ".join(parts) if parts else ": nothing to scan"
    if summary["skipped"]:
        line += f"; {summary['skipped']} file(s) in folders skipped as neither video nor image"
    return line


def html_report(document: dict[str, Any]) -> str:
    """The HTML report of a scan document (built with thumbnails), headed by its summary line."""
    return render_html(document, summary_line(document["summary"]))


def run_header(run: ScanRun) -> list[str]:
    trained_on = ", ".join(dict.fromkeys(t for m in run.scorers for t in m.info.get("trained_on") or [])) or "unknown data"
    source = threshold_source_text(run.threshold_source)
    what = (f"{len(run.members)} runs" if run.members
            else run.info.get("timm_name") or run.info.get("architecture") or "?")
    lines = [
        f"model    {run.name} ({what}, input {run.input_size} px, trained on {trained_on})",
        f"run      {run.folder}",
        f"backend  {run.backend} on {run.device}",
        f"verdict  fake when the {run.aggregation} face score >= {run.threshold:.4f} ({source})",
    ]
    if run.members:
        lines.insert(1, f"ensemble {' + '.join(m.name for m in run.members)}, joined by {run.ensemble_method}")
    if run.calibrated:
        lines.append(f"score    calibrated probability (temperature {run.temperature:.3g} fitted on the validation "
                     f"videos; uncalibrated threshold {run.raw_threshold:.4f})")
    return ([f"LIMITS   {limit}" for limit in run.limits] + lines
            + [f"note     {note}" for note in run.notes])


class OutputWriter:
    """Base writer: ``emit`` prints one line (streamed formats), ``out`` receives whole documents."""

    def __init__(self, emit: Callable[[str], None], run: ScanRun, options: ScanOptions):
        self.emit, self.run, self.options = emit, run, options
        self.tally = Tally()
        self.created = now_iso()

    def start(self) -> None:
        pass

    def add(self, result: ScanResult) -> None:
        self.tally.add(result)

    def finish(self, skipped: list[str], seconds: float) -> dict[str, Any]:
        return self.tally.summary(skipped, seconds)


class TableWriter(OutputWriter):
    """A fixed-width table, one row per input as it finishes; messages under failed rows."""

    COLUMNS = f"{'STATUS':<11} {'VERDICT':<7} {'SCORE':>6} {'FACES':>5} {'TRACKS':>6} {'SECONDS':>7}  PATH"

    def start(self) -> None:
        for line in run_header(self.run):
            self.emit(line)
        self.emit("")
        self.emit(self.COLUMNS)

    def add(self, result: ScanResult) -> None:
        super().add(result)
        score = f"{result.score:.3f}" if result.score is not None else "-"
        tracks = str(result.tracks_scored) if result.kind == "video" and result.status == OK else "-"
        self.emit(
            f"{result.status:<11} {(result.verdict or '-').upper():<7} {score:>6} {len(result.faces):>5} "
            f"{tracks:>6} {result.seconds:>7.1f}  {result.path}"
        )
        if result.status != OK or result.frames_failed or result.frames_skipped:  # damage is news even when ok
            self.emit(f"{'':<11} -> {result.message}")

    def finish(self, skipped: list[str], seconds: float) -> dict[str, Any]:
        summary = super().finish(skipped, seconds)
        self.emit("")
        self.emit(summary_line(summary))
        return summary


class JsonLinesWriter(OutputWriter):
    """One JSON object per input (RESULT_SCHEMA), one line each, flushed as it comes."""

    def add(self, result: ScanResult) -> None:
        super().add(result)
        self.emit(json.dumps(result.to_dict(), allow_nan=False))


class DocumentWriter(OutputWriter):
    """Collects everything and writes one document at the end through ``write(text)``."""

    def __init__(self, emit: Callable[[str], None], run: ScanRun, options: ScanOptions, fmt: str,
                 write: Callable[[str], None]):
        super().__init__(emit, run, options)
        self.fmt, self.write = fmt, write
        self.results: list[ScanResult] = []

    def add(self, result: ScanResult) -> None:
        super().add(result)
        self.results.append(result)

    def finish(self, skipped: list[str], seconds: float) -> dict[str, Any]:
        html = self.fmt == "html"
        document = build_document(self.results, self.run, self.options, skipped, seconds, self.created,
                                  thumbnails=html)
        if html:
            self.write(html_report(document))
        else:
            self.write(json.dumps(document, indent=1, allow_nan=False) + "\n")
        return document["summary"]


def make_writer(fmt: str, emit: Callable[[str], None], write: Callable[[str], None], run: ScanRun,
                options: ScanOptions) -> OutputWriter:
    """The writer for ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "table":
        return TableWriter(emit, run, options)
    if fmt == "jsonl":
        return JsonLinesWriter(emit, run, options)
    if fmt in ("json", "html"):
        return DocumentWriter(emit, run, options, fmt, write)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
