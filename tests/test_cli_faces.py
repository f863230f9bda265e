"""``facesleuth faces``: one video through a flow, outputs and exit codes."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest
import yaml
from PIL import Image

from facesleuth.cli import faces as cli_faces
from facesleuth.config import extraction_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST_EXTRACTION = {
    "detection": {"detect_max_side": 320, "batch_size": 4},
    "train_flow": {"frames_per_video": 2},
    "test_flow": {"frame_step": 5, "max_frames": 6, "min_track_length": 2, "faces_per_video": 3},
}


def run_faces(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="facesleuth")
    cli_faces.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["faces", *argv])
    return args.run(args)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    # a full config whose other sections point at datasets absent here: only extraction is read
    path.write_text(
        yaml.safe_dump(
            {
                "datasets": {"x": {"format": "dfdc_train", "root": "/absent", "flow": "train"}},
                "models": ["resnet50"],
                "augmentation_setups": ["none"],
                "splits": {"train_datasets": ["x"]},
                "evaluation": {"testsets": []},
                "extraction": FAST_EXTRACTION,
            }
        )
    )
    return path


def test_registered_in_the_main_command():
    from facesleuth.cli import SUBCOMMANDS

    assert SUBCOMMANDS["faces"].module == "facesleuth.cli.faces"
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command")
    cli_faces.register(subparsers)
    args = parser.parse_args(["faces", "v.mp4", "--flow", "test", "--out", "o"])
    assert args.run is cli_faces.run and args.flow == "test" and args.config is None


@pytest.mark.slow
def test_train_flow_writes_faces_status_and_contact_sheet(tmp_path, samples, config_file, capsys):
    out = tmp_path / "out"
    video = samples / "ffpp/original_sequences/youtube/c23/videos/519.mp4"
    code = run_faces(
        [str(video), "--flow", "train", "--out", str(out), "--config", str(config_file), "--device", "cpu"]
    )
    assert code == 0
    faces = pd.read_parquet(out / "faces.parquet")
    status = pd.read_parquet(out / "status.parquet")
    assert len(faces) == 2 and set(faces["target_frame"]) == {187, 563}  # 2 evenly spaced frames of 751
    assert (faces["frame"] - faces["target_frame"]).abs().max() <= 2  # the train flow's nearest_reference
    assert status.iloc[0]["status"] == "ok" and status.iloc[0]["faces_kept"] == 2
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width >= 2 * cli_faces.THUMB and sheet.height > cli_faces.THUMB
    assert "519.mp4: ok" in capsys.readouterr().out


@pytest.mark.slow
def test_test_flow_labels_tracks(tmp_path, samples, config_file):
    out = tmp_path / "out"
    video = samples / "ffpp/original_sequences/youtube/c23/videos/004.mp4"
    assert run_faces([str(video), "--flow", "test", "--out", str(out), "--config", str(config_file)]) == 0
    faces = pd.read_parquet(out / "faces.parquet")
    assert len(faces) == 3 and (faces["track"] >= 0).all()
    assert set(faces["frame"]) <= {0, 5, 10, 15, 20, 25}


def test_schema_defaults_without_config():
    settings = extraction_settings(None)
    assert settings["detection"]["min_face_size"] == 70 and settings["detection"]["margin"] == 30
    assert settings["train_flow"]["frames_per_video"] == 10
    assert settings["test_flow"]["iou_threshold"] == 0.75 and settings["test_flow"]["min_track_length"] == 50


def test_failed_video_exits_1_and_still_writes_status(tmp_path, config_file, capsys):
    video = tmp_path / "clip.mp4"
    video.write_text("not a video at all\n" * 10)
    out = tmp_path / "out"
    assert run_faces([str(video), "--flow", "train", "--out", str(out), "--config", str(config_file)]) == 1
    assert "unreadable" in capsys.readouterr().out
    assert pd.read_parquet(out / "status.parquet").iloc[0]["status"] == "unreadable"
    assert len(pd.read_parquet(out / "faces.parquet")) == 0
    assert (out / "contact_sheet.png").exists()
    assert run_faces([str(tmp_path / "absent.mp4"), "--flow", "train", "--out", str(out)]) == 1
    assert pd.read_parquet(out / "status.parquet").iloc[0]["status"] == "missing"


def test_usage_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"extraction": {"detection": {"margin": -1}}}))
    video = tmp_path / "v.mp4"
    assert run_faces([str(video), "--flow", "train", "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    assert "extraction.detection.margin" in capsys.readouterr().err
    absent_config = ["--config", str(tmp_path / "no.yaml")]
    assert run_faces([str(video), "--flow", "train", "--out", str(tmp_path / "o"), *absent_config]) == 2
    with pytest.raises(SystemExit) as exit_info:
        run_faces([str(video), "--flow", "sideways", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    import torch

    if not torch.cuda.is_available():
        assert run_faces([str(video), "--flow", "train", "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


def test_damaged_video_is_counted_and_quiet(tmp_path, samples, config_file, capfd):
    """Bytes flipped all through the AVI sample: the status row counts the frames that failed and
    says so; FFmpeg prints nothing (the package switches its log off)."""
    import numpy as np

    data = bytearray((samples / "nonhuman/Megamind.avi").read_bytes())
    rng = np.random.default_rng(7)
    for offset in rng.integers(len(data) // 5, len(data), 3000):
        data[offset] ^= 0xFF
    video = tmp_path / "damaged.avi"
    video.write_bytes(bytes(data))
    out = tmp_path / "out"
    run_faces([str(video), "--flow", "train", "--out", str(out), "--config", str(config_file)])
    row = pd.read_parquet(out / "status.parquet").iloc[0]
    assert row["status"] in ("ok", "no_face"), row["message"]
    assert row["frames_failed"] + row["frames_skipped"] > 0
    assert "damaged video" in row["message"]
    err = capfd.readouterr().err
    assert "@ 0x" not in err and "Traceback" not in err, err[-2000:]
