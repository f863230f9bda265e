"""JSON Schemas (draft 2020-12) of the scanner's machine-readable output.

``RESULT_SCHEMA`` is one input (a line of ``--jsonl``, an item of ``results`` in ``--format
json``); ``DOCUMENT_SCHEMA`` is the ``--format json`` document. Consumers can validate against
them (``facesleuth.scan.schema.DOCUMENT_SCHEMA``); the tests do.
"""

from __future__ import annotations

from typing import Any

from facesleuth.config import CROP_KEYS
from facesleuth.registry import FRAME_POLICIES
from facesleuth.scan.scanner import FACE_CROP_SOURCES, STATUSES, VERDICTS

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}

FACE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["frame", "face", "track", "box", "detector_prob", "score"],
    "properties": {
        "frame": {"type": "integer", "minimum": 0, "description": "frame index in the video (0 for images)"},
        "face": {"type": "integer", "minimum": 0, "description": "index of the face within its frame"},
        "track": {"type": ["integer", "null"], "minimum": 0, "description": "track of the face (null for images)"},
        "box": {
            "type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4,
            "description": "cropped region x0, y0, x1, y1: detector box plus margin, full-resolution pixels",
        },
        "detector_prob": _PROBABILITY,
        "score": {**_PROBABILITY, "description": "fake probability of the face"},
        "thumbnail": {"type": "string", "description": "base64 JPEG (HTML report only)"},
    },
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "facesleuth scan result (one input)",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "path", "status", "message", "kind", "score", "verdict", "threshold", "aggregation", "model", "faces",
        "faces_found", "tracks", "tracks_scored", "frames_total", "frames_read", "frames_failed", "frames_skipped",
        "width", "height", "seconds",
        "timings", "calibrated", "raw_score",
    ],
    "properties": {
        "path": {"type": "string", "minLength": 1},
        "status": {"enum": list(STATUSES)},
        "message": {"type": "string"},
        "kind": {"enum": ["video", "image", None]},
        "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "verdict": {"enum": [*VERDICTS, None]},
        "threshold": _NUMBER_OR_NULL,
        "aggregation": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "faces": {"type": "array", "items": FACE_SCHEMA},
        "faces_found": {"type": "integer", "minimum": 0},
        "tracks": {"type": "integer", "minimum": 0},
        "tracks_scored": {"type": "integer", "minimum": 0},
        "frames_total": _INT_OR_NULL,
        "frames_claimed": {**_INT_OR_NULL, "description": "video frames its header claims (frames_total: it holds)"},
        "frames_read": {"type": "integer", "minimum": 0},
        "frames_failed": {"type": "integer", "minimum": 0,
                          "description": "video frames the decoder rejected or decoded with errors concealed"},
        "frames_skipped": {"type": "integer", "minimum": 0,
                           "description": "sampled video frames that did not decode and were left out"},
        "width": _INT_OR_NULL,
        "height": _INT_OR_NULL,
        "seconds": {"type": "number", "minimum": 0},
        "timings": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "calibrated": {"type": "boolean", "description": "score is the run's temperature-calibrated probability"},
        "raw_score": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                      "description": "the aggregated score before calibration"},
    },
    # A verdict exactly when there is a score, and both exactly when faces were scored.
    "allOf": [
        {
            "if": {"properties": {"status": {"const": "ok"}}},
            "then": {"properties": {"score": {"type": "number"}, "verdict": {"enum": list(VERDICTS)},
                                    "faces": {"minItems": 1}}},
            "else": {"properties": {"score": {"type": "null"}, "verdict": {"type": "null"}, "faces": {"maxItems": 0}}},
        }
    ],
}

DOCUMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "facesleuth scan report",
    "type": "object",
    "additionalProperties": False,
    "required": ["facesleuth_version", "created", "model", "settings", "summary", "results"],
    "properties": {
        "facesleuth_version": {"type": "string"},
        "created": {"type": "string", "description": "ISO 8601 time the scan started"},
        "model": {
            "type": "object",
            "required": ["run", "checkpoint", "name", "model", "setup", "input_size", "trained_on", "device",
                         "backend", "threshold", "threshold_source", "aggregation", "notes", "limits"],
            "properties": {
                "run": {"type": "string"},
                "checkpoint": {"type": "string"},
                "name": {"type": "string"},
                "model": {"type": ["string", "null"]},
                "timm_name": {"type": ["string", "null"]},
                "architecture": {"type": ["string", "null"], "description": "an imported detector's architecture"},
                "setup": {"type": ["string", "null"]},
                "input_size": {"type": "integer", "minimum": 1},
                "trained_on": {"type": "array", "items": {"type": "string"}},
                "best_epoch": _INT_OR_NULL,
                "device": {"type": "string"},
                "backend": {"enum": ["torch", "onnx", "openvino"],
                            "description": "what ran the classifier: torch, or ONNX Runtime or OpenVINO on a model "
                                           "exported from it"},
                "threshold": {"type": "number"},
                "threshold_source": {"type": "string"},
                "eer": _NUMBER_OR_NULL,
                "auc": _NUMBER_OR_NULL,
                "aggregation": {"type": "string"},
                "notes": {"type": "array", "items": {"type": "string"}},
                "calibrated": {"type": "boolean"},
                "temperature": _NUMBER_OR_NULL,
                "raw_threshold": _NUMBER_OR_NULL,
                "ensemble_method": {"type": ["string", "null"]},
                "members": {"type": "array", "items": {"type": "string"}},
                "limits": {"type": "array", "items": {"type": "string"},
                           "description": "what the run's verdicts cannot be trusted for (its run.yaml limits)"},
                "published": {"type": ["object", "null"],
                              "description": "an imported published detector's provenance (url, sha256, licence, "
                                             "training data), null for a trained run"},
            },
        },
        "settings": {
            "type": "object",
            "required": ["frames", "iou_threshold", "min_track_fraction", "faces_per_video", "detection",
                         "face_crops"],
            "properties": {
                "frames": {"type": "integer", "minimum": 1},
                "frame_policy": {"type": "string", "enum": list(FRAME_POLICIES),
                                 "description": "which decoded frame stands for a sampled one"},
                "max_frame_offset": {"type": "integer", "minimum": 0},
                "iou_threshold": {"type": "number"},
                "min_track_fraction": {"type": "number"},
                "faces_per_video": {"type": "integer", "minimum": 1},
                "detection": {"type": "object"},
                "face_crops": {
                    "type": "object",
                    "description": "the detection and crop settings the faces were cut with and where they came "
                                   "from: the run's run.yaml (those its training faces had), the --config (the keys "
                                   "it writes; the rest from the run or the defaults), or the package's defaults",
                    "required": ["source", *CROP_KEYS],
                    "properties": {"source": {"type": "string", "enum": list(FACE_CROP_SOURCES)}},
                },
                "aggregation": {"type": ["string", "null"]},
                "calibrate": {"type": "boolean"},
                "limits": {
                    "type": "object",
                    "description": "what one input may cost (null: no limit); past one, its status",
                    "properties": {
                        "max_pixels": _INT_OR_NULL,
                        "max_seconds": _NUMBER_OR_NULL,
                        "max_frames": _INT_OR_NULL,
                        "input_seconds": _NUMBER_OR_NULL,
                    },
                },
            },
        },
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": ["inputs", "statuses", "verdicts", "failed", "skipped", "skipped_files", "seconds"],
            "properties": {
                "inputs": {"type": "integer", "minimum": 0},
                "statuses": {"type": "object", "propertyNames": {"enum": list(STATUSES)},
                             "additionalProperties": {"type": "integer", "minimum": 1}},
                "verdicts": {"type": "object", "propertyNames": {"enum": list(VERDICTS)},
                             "additionalProperties": {"type": "integer", "minimum": 0}},
                "failed": {"type": "integer", "minimum": 0},
                "skipped": {"type": "integer", "minimum": 0},
                "skipped_files": {"type": "array", "items": {"type": "string"}},
                "seconds": {"type": "number", "minimum": 0},
            },
        },
        "results": {"type": "array", "items": {k: v for k, v in RESULT_SCHEMA.items() if k != "$schema"}},
    },
}
