"""facesleuth.io: the one atomic writer and the writers built on it."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest

from facesleuth.io import atomic_path, write_csv, write_json, write_parquet, write_text_atomic


class Boom(RuntimeError):
    pass


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set a umask for the test and restore the process's afterwards."""
    before = os.umask(0o022)
    os.umask(before)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(before)


def test_atomic_path_renames_on_success_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert tmp.name.startswith(".out.csv.") and tmp.suffix == ".csv"  # the suffix picks some writers' format
        assert not target.exists()  # nothing at the target until the block succeeds
        tmp.write_text("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]


def test_a_failure_leaves_no_target_and_no_temporary(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise Boom("killed while writing")
    assert list(tmp_path.iterdir()) == []


def test_the_old_file_survives_a_failed_rewrite(tmp_path):
    target = tmp_path / "history.csv"
    write_text_atomic("epoch\n1\n", target)
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("epoch\n1\n2\n")
            raise Boom
    assert target.read_text() == "epoch\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_permissions_follow_the_umask_like_an_ordinary_new_file(tmp_path, umask, mask):
    umask(mask)
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as fh:  # what open() creates under this umask is the reference
        fh.write("x")
    written = write_text_atomic("x", tmp_path / "atomic.txt")
    assert _mode(written) == _mode(plain)


def test_writers_round_trip(tmp_path):
    frame = pd.DataFrame({"video_id": ["a", "b"], "score": [0.25, 0.75]})
    write_csv(frame, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), frame)
    write_parquet(frame, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "t.parquet").to_pandas(), frame)
    document = {"eer_threshold": 0.4, "source": "validation", "nested": [1, 2]}
    write_json(document, tmp_path / "t.json")
    text = (tmp_path / "t.json").read_text()
    assert json.loads(text) == document and text.endswith("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json", "t.parquet"]


def test_write_parquet_refuses_missing_columns_and_keeps_the_old_file(tmp_path):
    import pyarrow as pa

    schema = pa.schema([("video_id", pa.string()), ("score", pa.float64())])
    target = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"video_id": ["a"], "score": [1.0]}), target, schema)
    with pytest.raises(ValueError, match="columns missing"):
        write_parquet(pd.DataFrame({"video_id": ["b"]}), target, schema)
    assert pq.read_table(target).column("video_id").to_pylist() == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
