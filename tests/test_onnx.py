"""The scanner's ONNX Runtime and OpenVINO backends against torch, the reference: the same outputs
on real face crops for every backbone of the registry and the built-in published detectors, the
export cache keyed by the checkpoint, ``auto`` without OpenVINO or onnxruntime, and the backend
named in the output. OpenVINO's checks run where it is installed (the test extra installs it)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from face_crops import jittered_crops
from facesleuth.train.backbones import REGISTRY
from facesleuth.train.checkpoint import save_checkpoint
from facesleuth.train.models import build_model
from facesleuth.evaluate.predict import predict_crops
from facesleuth.train.preprocess import decode_jpeg, prepare_faces
from facesleuth.published.builtin import DEFAULT_RUN
from facesleuth.scan import Scanner, ScanOptions, load_scan_run
from facesleuth.evaluate.inference import (
    BackendError,
    OnnxClassifier,
    OpenVinoClassifier,
    load_run,
    resolve_backend,
    run_digest,
    runtime_available,
)
from facesleuth.scan.schema import DOCUMENT_SCHEMA

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-4
# The smallest input each backbone takes (the schema allows 32 px; Inception's stem needs more).
SMALLEST_INPUT = {"inception_v4": 96, "inception_resnet_v2": 96}
BUILTIN_RUNS = sorted(p for p in DEFAULT_RUN.parent.iterdir() if (p / "run.yaml").is_file())
# The backends that run the exported model, with the class each loads; OpenVINO where installed.
EXPORTED_BACKENDS = {"onnx": OnnxClassifier, "openvino": OpenVinoClassifier}
if not runtime_available("openvino"):
    del EXPORTED_BACKENDS["openvino"]


def write_run(folder: Path, name: str, input_size: int, seed: int = 0, faces: list[np.ndarray] | None = None) -> Path:
    """A run folder whose best.pt holds ``name`` with random weights (``pretrained: false``).

    With ``faces``, its batch norms hold those faces' statistics, as a trained network's hold its
    data's: with the initial ones (mean 0, variance 1) the activations of most backbones fade and
    every face gets the same logits, which a wrong export could match as well."""
    torch.manual_seed(seed)
    model = build_model(name, pretrained=False, dropout=0.2)
    info = {"model": name, "timm_name": REGISTRY[name].timm_name if name in REGISTRY else name, "setup": "none",
            "input_size": input_size, "dropout": 0.2, "pretrained": False}
    if faces is not None:
        for norm in model.modules():
            if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
                norm.reset_running_stats()
                norm.momentum = None  # one pass: the plain statistics of the batch
        model.train()
        with torch.no_grad():
            model(prepare_faces(faces, info))
    model.eval()
    save_checkpoint({"model_state": model.state_dict(), "epoch": 0, "run": info}, folder / "best.pt")
    return folder


@pytest.fixture(scope="module")
def other_faces(samples) -> list[np.ndarray]:
    """24 other crops of the same faces, for the random networks' batch statistics."""
    jpegs = jittered_crops(samples, 12, fake=False, seed=5) + jittered_crops(samples, 12, fake=True, seed=6)
    return [decode_jpeg(jpeg) for jpeg in jpegs]


@pytest.fixture(scope="module")
def crops(samples) -> list[np.ndarray]:
    """Real faces (the FF++ presenter, real and Deepfakes, jittered boxes), six: another batch
    size than the export's."""
    jpegs = jittered_crops(samples, 3, fake=False, seed=1) + jittered_crops(samples, 3, fake=True, seed=2)
    return [decode_jpeg(jpeg) for jpeg in jpegs]


@pytest.mark.parametrize("name", list(REGISTRY))
def test_exported_logits_match_torch_for_every_backbone(name, crops, other_faces, tmp_path):
    run = write_run(tmp_path / name, name, SMALLEST_INPUT.get(name, 64), faces=other_faces)
    torch_run = load_scan_run(run, "cpu", backend="torch")
    inputs = prepare_faces(crops, torch_run.info)
    with torch.inference_mode():
        expected = torch_run.model(inputs).numpy()
        exact = copy.deepcopy(torch_run.model).double()(inputs.double()).numpy()
    # Within 1e-4 of torch, beyond torch's own float32 rounding: a random network can be badly
    # conditioned (Inception-v4 and EfficientNet-B4 at 96 and 64 px: torch's float32 logits are
    # 1e-3 off its float64 ones, and ONNX Runtime's as close to float64 as torch's).
    rounding = np.abs(expected - exact).max()
    for backend, classifier in EXPORTED_BACKENDS.items():  # both from the one exported file
        exported_run = load_scan_run(run, "cpu", backend=backend)
        assert isinstance(exported_run.model, classifier) and exported_run.backend == backend
        got = exported_run.model(inputs).numpy()
        assert got.shape == expected.shape == (len(crops), 2), backend
        assert np.abs(got - expected).max() <= TOLERANCE + 2 * rounding, backend
        assert np.abs(got - exact).max() <= TOLERANCE + 2 * rounding, backend
        # the faces' logits differ far more than the backends do: the export follows its input
        assert np.abs(got - expected).max() * 10 < np.ptp(expected, axis=0).max(), backend


@pytest.mark.parametrize("folder", BUILTIN_RUNS, ids=[p.name for p in BUILTIN_RUNS])
def test_exported_models_match_torch_for_the_builtin_published_detectors(folder, crops, onnx_cache):
    torch_run = load_scan_run(folder, "cpu", backend="torch")
    expected = predict_crops(torch_run.model, torch_run.info, crops)
    for backend in EXPORTED_BACKENDS:
        exported_run = load_scan_run(folder, "cpu", backend=backend)
        got = predict_crops(exported_run.model, exported_run.info, crops)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=backend)
        # the package's own folder is never written: the export lives in the user cache
        assert exported_run.model.path.parent == onnx_cache / "onnx"
    assert not (folder / "onnx").exists()


def test_a_changed_checkpoint_is_exported_again(crops, tmp_path, monkeypatch):
    import facesleuth.evaluate.inference as inference

    run = write_run(tmp_path / "run", "mobilenetv3_small_050", 64, seed=0)
    exports = []
    real_export = inference.export_onnx
    monkeypatch.setattr(inference, "export_onnx", lambda *a: exports.append(a[-1]) or real_export(*a))
    first = load_scan_run(run, "cpu", backend="onnx").model
    assert first.path == run / "onnx" / f"{run_digest(run / 'best.pt', False)}.onnx"
    load_scan_run(run, "cpu", backend="onnx")  # cached: not exported again
    assert exports == [first.path]

    write_run(run, "mobilenetv3_small_050", 64, seed=1)  # retrained: other weights
    second = load_scan_run(run, "cpu", backend="onnx").model
    assert second.path != first.path and len(exports) == 2
    assert sorted(p.name for p in (run / "onnx").iterdir()) == [second.path.name]  # the stale file is gone
    new_torch, info = load_run(run)
    inputs = prepare_faces(crops, info)
    with torch.inference_mode():
        expected = new_torch(inputs).numpy()
    np.testing.assert_allclose(second(inputs).numpy(), expected, rtol=0, atol=TOLERANCE)


def test_auto_takes_openvino_then_onnx_then_torch_and_torch_off_the_cpu(monkeypatch):
    pytest.importorskip("openvino")
    assert resolve_backend("auto", "cpu") == "openvino"
    assert resolve_backend("auto", "cuda") == "torch"
    for backend in ("onnx", "openvino"):
        with pytest.raises(BackendError, match=f"{backend} runs on the CPU only"):
            resolve_backend(backend, "cuda:0")
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed: importing it raises
    assert resolve_backend("auto", "cpu") == "onnx"
    with pytest.raises(BackendError, match=r"pip install 'facesleuth\[openvino\]'"):
        resolve_backend("openvino", "cpu")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert resolve_backend("auto", "cpu") == "torch"
    with pytest.raises(BackendError, match=r"pip install 'facesleuth\[onnx\]'"):
        resolve_backend("onnx", "cpu")
    scanner = Scanner(DEFAULT_RUN, ScanOptions(device="cpu"))
    assert scanner.run.backend == "torch" and all(m.backend == "torch" for m in scanner.run.members)
    assert not isinstance(scanner.run.members[0].model, OnnxClassifier)


@pytest.mark.parametrize("backend", ["torch", *EXPORTED_BACKENDS])
def test_the_scan_output_names_the_backend(backend, samples, tmp_path, capsys):
    from facesleuth.cli import main

    image = samples / "images" / "ex_deepfakes.png"
    report = tmp_path / "scan.json"
    code = main(["scan", str(image), "--backend", backend, "--device", "cpu", "--threads", "1",
                 "--format", "json", "--output", str(report)])
    assert code == 0
    document = json.loads(report.read_text())
    jsonschema.validate(document, DOCUMENT_SCHEMA)
    assert document["model"]["backend"] == backend
    assert document["results"][0]["status"] == "ok"
    assert main(["scan", str(image), "--backend", backend, "--device", "cpu", "--threads", "1"]) == 0
    assert f"backend  {backend} on cpu" in capsys.readouterr().out


def test_an_unknown_backend_is_a_usage_error(samples, capsys):
    from facesleuth.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["scan", str(samples / "images" / "ex_deepfakes.png"), "--backend", "tensorrt"])
    assert stopped.value.code == 2
    assert "--backend" in capsys.readouterr().err


def test_a_run_folder_that_cannot_be_written_exports_to_the_user_cache(tmp_path, monkeypatch, onnx_cache):
    import facesleuth.evaluate.inference as inference

    run = write_run(tmp_path / "readonly", "mobilenetv3_small_050", 64)
    real_atomic_path = inference.atomic_path

    def refuse_the_run_folder(path):  # as a read-only mount answers (root ignores chmod)
        if Path(path).is_relative_to(run):
            raise PermissionError(13, "Permission denied", str(path))
        return real_atomic_path(path)

    monkeypatch.setattr(inference, "atomic_path", refuse_the_run_folder)
    model = load_scan_run(run, "cpu", backend="onnx").model
    assert model.path == onnx_cache / "onnx" / f"{run_digest(run / 'best.pt', False)}.onnx"
    assert not (run / "onnx").exists()
    assert load_scan_run(run, "cpu", backend="onnx").model.path == model.path  # found there next time
