"""Read W&B offline run files (``run-<id>.wandb``) with W&B's own record definitions.

wandb 0.31 no longer ships a Python reader of its transaction log (its Go core writes and
uploads it), so the container is read here as the format is laid out: a 7-byte header
(``:W&B``, magic 0xBEE1, version 0), then LevelDB-log blocks of 32 KiB whose chunks are
``crc32 (4) | length (2, little-endian) | type (1: full, 2: first, 3: middle, 4: last) | data``;
each whole record is a ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> Iterator["wandb_internal_pb2.Record"]:
    data = Path(path).read_bytes()
    assert data[:7] == HEADER, f"{path} is not a W&B transaction log (header {data[:7]!r})"
    offset, pending = 7, b""
    while offset + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < CHUNK_HEADER:  # the block's padding
            offset += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + CHUNK_HEADER])
        if kind == 0 and length == 0:  # zero padding at the end of a flushed block
            offset += left_in_block
            continue
        if offset + CHUNK_HEADER + length > len(data):  # a write cut short by a kill: the records before it stand
            break
        chunk = data[offset + CHUNK_HEADER:offset + CHUNK_HEADER + length]
        offset += CHUNK_HEADER + length
        if kind in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(folder: str | Path, run_id: str) -> dict[str, Any]:
    """Every offline file of run ``run_id`` under ``folder`` (a resumed run writes one per process), in
    the order written: its run records, history rows, summary and config."""
    files = sorted(Path(folder).rglob(f"run-{run_id}.wandb"), key=lambda p: p.stat().st_mtime)
    out: dict[str, Any] = {"files": files, "runs": [], "history": [], "summary": {}, "config": {}}
    for path in files:
        for record in records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                out["runs"].append(record.run)
                for item in record.run.config.update:
                    out["config"][_key(item)] = json.loads(item.value_json)
            elif kind == "history":
                out["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
            elif kind == "summary":
                out["summary"].update({_key(i): json.loads(i.value_json) for i in record.summary.update})
            elif kind == "config":
                for item in record.config.update:
                    out["config"][_key(item)] = json.loads(item.value_json)
    return out
