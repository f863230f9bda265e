"""The ``--format html`` report: one self-contained page (inline CSS, faces as base64 JPEG).

A page a moderator can open anywhere, mail or archive: no script, no external file. An
overview table (one row per input, linked to its details) and, per input, its verdict, score,
message and the thumbnails of its most suspicious faces with their scores. Every text that
comes from a file name or a message is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from facesleuth.extract.video import DecodeReport


BACKEND_NAMES = {"torch": "torch", "onnx": "ONNX Runtime", "openvino": "OpenVINO"}


def threshold_source_text(source: str) -> str:
    """How the reports name where a run's threshold comes from."""
    if source == "validation":
        return "validation EER threshold"
    if source == "published":
        return "the published detector's decision boundary, chosen on no data"
    return f"{source} threshold: the run has no threshold.json"


_CSS = """
.limits{background:#fff4e5;border-left:4px solid #e67e00;padding:.5rem .8rem;margin:.5rem 0}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.05rem;margin:0 0 .3rem;word-break:break-all}
table{border-collapse:collapse;margin:.8rem 0;background:#fff}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;font-size:.9rem;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta td:first-child{font-weight:600;white-space:nowrap}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;font-size:.8rem;font-weight:600;color:#fff}
.fake{background:#c62828}.real{background:#2e7d32}.none{background:#757575}.failed{background:#ef6c00}
.card{background:#fff;border:1px solid #ddd;border-radius:.4rem;padding:.8rem;margin:.8rem 0}
.msg{color:#444;font-size:.9rem;margin:.3rem 0}
.damaged{color:#b00020;font-weight:600}
.faces{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.5rem}
figure{margin:0;text-align:center;font-size:.75rem;width:116px}
figure img{max-width:112px;max-height:112px;border:3px solid #2e7d32;border-radius:.2rem}
figure.suspect img{border-color:#c62828}
"""


def _badge(result: dict[str, Any]) -> str:
    if result["verdict"]:
        return f'<span class="badge {result["verdict"]}">{escape(result["verdict"].upper())}</span>'
    css = "none" if result["status"] == "no_face" else "failed"
    return f'<span class="badge {css}">{escape(result["status"])}</span>'


def _score(result: dict[str, Any]) -> str:
    return f"{result['score']:.3f}" if result["score"] is not None else "&ndash;"


def _faces(result: dict[str, Any], threshold: float) -> str:
    shown = sorted((f for f in result["faces"] if f.get("thumbnail")), key=lambda f: -f["score"])
    if not shown:
        return ""
    figures = []
    for face in shown:
        where = (f"frame {face['frame']}, track {face['track']}" if face["track"] is not None
                 else f"face {face['face'] + 1}")
        css = ' class="suspect"' if face["score"] >= threshold else ""
        title = escape(f"{where}, box {face['box']}, detector {face['detector_prob']:.2f}")
        figures.append(
            f'<figure{css}><img alt="face, {escape(where)}" title="{title}" '
            f'src="data:image/jpeg;base64,{face["thumbnail"]}"><figcaption>{face["score"]:.3f}<br>'
            f"{escape(where)}</figcaption></figure>"
        )
    note = (f"<div class='msg'>The {len(shown)} most suspicious of {len(result['faces'])} scored faces "
            "(red: at or above the threshold).</div>")
    return note + f'<div class="faces">{"".join(figures)}</div>'


def _card(index: int, result: dict[str, Any], threshold: float) -> str:
    size = f"{result['width']}x{result['height']}" if result["width"] else "&ndash;"
    frames = (f", {result['frames_read']} of {result['frames_total']} frames sampled"
              if result["kind"] == "video" and result["frames_total"] else "")
    damage = DecodeReport(frames_failed=result.get("frames_failed", 0), frames_skipped=result.get("frames_skipped", 0))
    if damage.damaged:
        frames += f" <span class='damaged'>(damaged: {escape(damage.describe())})</span>"
    count = len(result["faces"])
    facts = (f"{escape(result['kind'] or 'unknown kind')}, {size}{frames}; score {_score(result)} "
             f"({escape(result['aggregation'] or '')} of {count} face{'' if count == 1 else 's'}); "
             f"{result['seconds']:.1f} s")
    return (
        f'<div class="card" id="input-{index}"><h2>{_badge(result)} {escape(result["path"])}</h2>'
        f'<div class="msg">{facts}</div><div class="msg">{escape(result["message"])}</div>'
        f"{_faces(result, threshold)}</div>"
    )


def render_html(document: dict[str, Any], headline: str) -> str:
    """The page for a scan document (:func:`facesleuth.scan.formats.build_document` with thumbnails).

    ``headline``: the one-line summary (:func:`facesleuth.scan.formats.summary_line`), shown as
    the title and in the overview.
    """
    model, settings, results = document["model"], document["settings"], document["results"]
    threshold = float(model["threshold"])
    source = threshold_source_text(model["threshold_source"])
    meta = [
        ("Model", f"{model['name']} ({model.get('timm_name') or model.get('architecture') or '?'}, "
                  f"input {model['input_size']} px)"),
        ("Trained on", ", ".join(model["trained_on"]) or "unknown"),
        ("Run", model["run"]),
        ("Verdict", f"fake when the {model['aggregation']} face score is at least {threshold:.4f} ({source})"),
        *([("Score", f"calibrated probability (temperature {model['temperature']:.3g} fitted on the validation "
                     "videos)")] if model.get("calibrated") else []),
        *([("Ensemble", f"{' + '.join(model['members'])}, joined by {model['ensemble_method']}")]
          if model.get("members") else []),
        ("Sampling", f"{settings['frames']} frames per video, tracks by IoU > {settings['iou_threshold']}"),
        ("Scanned", f"{document['created']} with facesleuth {document['facesleuth_version']}, on {model['device']}, "
                    f"the classifier run by {BACKEND_NAMES[model.get('backend', 'torch')]}"),
        ("Summary", headline),
    ] + [("Note", note) for note in model["notes"]]
    limits = "".join(f'<p class="limits"><strong>Limits:</strong> {escape(limit)}</p>'
                     for limit in model.get("limits") or [])
    meta_rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in meta)
    rows = "".join(
        f'<tr><td>{_badge(r)}</td><td class="num">{_score(r)}</td><td class="num">{len(r["faces"])}</td>'
        f'<td class="num">{r["seconds"]:.1f}</td><td><a href="#input-{i}">{escape(r["path"])}</a></td></tr>'
        for i, r in enumerate(results)
    )
    overview = (
        "<table><tr><th>verdict / status</th><th>score</th><th>faces</th><th>seconds</th><th>input</th></tr>"
        f"{rows}</table>" if results else "<p>No video or image was found to scan.</p>"
    )
    cards = "".join(_card(i, r, threshold) for i, r in enumerate(results))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>facesleuth scan: {escape(headline)}</title><style>{_CSS}</style></head>"
        f'<body><h1>facesleuth scan report</h1>{limits}<table class="meta">{meta_rows}</table>'
        f"{overview}{cards}</body></html>\n"
    )
