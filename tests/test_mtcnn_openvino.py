"""MTCNN's networks on OpenVINO (facesleuth.extract.mtcnn_openvino) against facenet-pytorch's torch
networks: the same outputs on real inputs, the same faces on the samples, the export cache keyed
by the weights, clear errors where OpenVINO cannot run, and the scanner's choice of it."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from test_mtcnn_fast import SAMPLE_FRAMES, assert_same_faces, detection_batch

from facesleuth.extract import mtcnn_fast
from facesleuth.extract.detect import FaceDetector

pytest.importorskip("openvino")
from facesleuth.extract import mtcnn_openvino  # noqa: E402 (needs openvino only when called; torch first)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


THRESHOLDS = [0.6, 0.7, 0.7]  # facenet-pytorch's defaults, the config's


def compiled_mtcnn():
    return mtcnn_openvino.load_mtcnn(20, THRESHOLDS, threads=1)


@pytest.fixture(scope="module")
def torch_and_openvino():
    """(facenet's MTCNN with its torch networks, OpenVINO's with the same settings)."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, select_largest=False, device="cpu"), compiled_mtcnn()


def test_each_network_gives_torchs_outputs_on_real_inputs(samples, torch_and_openvino):
    reference, compiled = torch_and_openvino
    frames = detection_batch(samples, "multiface/street.mp4", [0, 60])
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    # a pyramid level of odd size (P-Net), and crops of faces and background (R-Net, O-Net)
    level = (torch.nn.functional.interpolate(pixels, size=(163, 291), mode="area") - 127.5) * 0.0078125
    crops = {size: (torch.nn.functional.interpolate(pixels[:, :, 100:400, 200:600], size=(size, size), mode="area")
                    - 127.5) * 0.0078125 for size in (24, 48)}
    inputs = {"pnet": level, "rnet": crops[24], "onet": crops[48]}
    for name, batch in inputs.items():
        for layout in (torch.contiguous_format, torch.channels_last):  # facenet's and mtcnn_fast's
            with torch.no_grad():
                expected = getattr(reference, name)(batch)
                got = getattr(compiled, name)(batch.contiguous(memory_format=layout))
            assert isinstance(getattr(compiled, name), mtcnn_openvino.CompiledNetwork)
            assert len(got) == len(expected), name
            for out, ref in zip(got, expected):
                assert out.shape == ref.shape and out.dtype == torch.float32, name
                np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=0, atol=1e-5, err_msg=name)
                assert float(ref.std()) > 1e-3  # outputs that vary: a wrong layout could not match them


def test_same_faces_as_torch_on_the_samples(samples, torch_and_openvino):
    reference, compiled = torch_and_openvino
    found = 0
    for path, indices, min_size in SAMPLE_FRAMES:
        batch = detection_batch(samples, path, indices)
        reference.min_face_size = compiled.min_face_size = min_size
        expected = mtcnn_fast.detect(reference, batch, "fast")
        got = mtcnn_fast.detect(compiled, batch, "fast")
        assert_same_faces(expected, got, path)
        found += sum(len(boxes) for boxes, _ in got)
    assert found >= 10


def test_the_detector_finds_the_same_faces_through_openvino(samples):
    frames = detection_batch(samples, "multiface/street.mp4", [0, 60])
    small = {"device": "cpu", "min_face_size": 20, "min_probability": 0.0}  # the street's faces are small
    on_torch = FaceDetector(**small).detect(frames)
    detector = FaceDetector(**small, backend="openvino")
    on_openvino = detector.detect(frames)
    assert isinstance(detector.mtcnn.pnet, mtcnn_openvino.CompiledNetwork)
    assert sum(f.boxes.shape[0] for f in on_torch) >= 2
    for ref, got in zip(on_torch, on_openvino):
        assert ref.detected == got.detected
        np.testing.assert_allclose(got.boxes, ref.boxes, rtol=0, atol=0.05)
        np.testing.assert_allclose(got.probs, ref.probs, rtol=0, atol=1e-5)


def test_networks_are_exported_once_per_weights(monkeypatch, onnx_cache):
    compiled_mtcnn()  # exported here, unless an earlier test did
    exports = []
    real_export = mtcnn_openvino.export_network
    monkeypatch.setattr(mtcnn_openvino, "export_network", lambda *a: exports.append(a[1]) or real_export(*a))
    compiled_mtcnn()  # cached: not exported again
    digest = mtcnn_openvino.weights_digest()
    assert exports == []
    assert sorted(p.name for p in (onnx_cache / "onnx").glob(f"mtcnn-{digest}-*.onnx")) == [
        f"mtcnn-{digest}-{name}.onnx" for name in ("onet", "pnet", "rnet")]
    assert any((onnx_cache / "openvino").iterdir())  # OpenVINO's compiled networks, for later starts
    monkeypatch.setattr(mtcnn_openvino, "weights_digest", lambda: "0" * 16)  # as if the wheel's weights changed
    compiled_mtcnn()
    assert exports == ["pnet", "rnet", "onet"]


def test_a_cache_that_cannot_be_written_says_what_to_do(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("FACESLEUTH_CACHE", str(blocked))
    with pytest.raises(OSError, match="set FACESLEUTH_CACHE to a writable folder"):
        compiled_mtcnn()
    from facesleuth.runtime import openvino_cpu_config

    assert "CACHE_DIR" not in openvino_cpu_config(1)  # nor a cache of compiled networks: compiled anew


def test_where_openvino_cannot_run_the_detector_says_why(monkeypatch):
    with pytest.raises(ValueError, match="not one of"):
        FaceDetector(backend="tensorrt")
    with pytest.raises(ValueError, match="runs the fast cascade"):
        FaceDetector(device="cpu", backend="openvino", implementation="facenet").load()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU, as far as the detector can tell
    with pytest.raises(ValueError, match="openvino runs on the CPU only, the device is cuda"):
        FaceDetector(device="cuda", backend="openvino").load()
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed: importing it raises
    with pytest.raises(ValueError, match=r"pip install 'facesleuth\[openvino\]'"):
        FaceDetector(device="cpu", backend="openvino").load()


def test_the_scanner_runs_mtcnn_where_it_runs_the_classifier(tmp_path):
    from facesleuth.published.builtin import DEFAULT_RUN
    from facesleuth.scan import Scanner, ScanOptions

    cases = {("auto", None): "openvino", ("openvino", None): "openvino", ("onnx", None): "torch",
             ("torch", None): "torch", ("openvino", "torch"): "torch"}
    for (backend, configured), expected in cases.items():
        detection = {"backend": configured} if configured else {}
        scanner = Scanner(DEFAULT_RUN, ScanOptions(device="cpu", backend=backend, detection=detection))
        assert scanner.detector.backend == expected, (backend, configured)
        assert scanner.options.detection["backend"] == expected  # the report shows it
        assert isinstance(scanner.detector.mtcnn.pnet, mtcnn_openvino.CompiledNetwork) == (expected == "openvino")


def test_a_scanner_on_openvino_imports_neither_facenet_nor_torchvision(samples, tmp_path):
    """Once the networks are exported, scanning on OpenVINO needs neither package: importing
    torchvision (it imports torch._dynamo) was about 1.5 s of every scanner's cold start."""
    import subprocess

    from facesleuth.published.builtin import DEFAULT_RUN
    from facesleuth.scan import load_scan_run

    compiled_mtcnn(), load_scan_run(DEFAULT_RUN, "cpu", backend="openvino")  # the exports, in the tests' cache
    program = (
        "import sys; from facesleuth.published.builtin import DEFAULT_RUN; "
        "from facesleuth.scan import Scanner, ScanOptions; "
        "scanner = Scanner(DEFAULT_RUN, ScanOptions(device='cpu', backend='openvino')); "
        f"result = scanner.scan_file({str(samples / 'images' / 'ex_deepfakes.png')!r}); "
        "print(result.status, len(result.faces), scanner.detector.backend, "
        "sorted({m.split('.')[0] for m in sys.modules} & {'torchvision', 'facenet_pytorch'}))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-4:] == ["ok", "1", "openvino", "[]"], done.stdout


def test_the_server_exports_mtcnn_before_its_workers_start(monkeypatch, tmp_path):
    from facesleuth.cli.serve import check_model
    from facesleuth.published.builtin import DEFAULT_RUN

    monkeypatch.setenv("FACESLEUTH_CACHE", str(tmp_path))  # an empty cache
    assert check_model(str(DEFAULT_RUN), "cpu", "openvino")  # the model's limits, for the page
    digest = mtcnn_openvino.weights_digest()
    assert sorted(p.name for p in (tmp_path / "onnx").glob("mtcnn-*")) == [
        f"mtcnn-{digest}-{name}.onnx" for name in ("onet", "pnet", "rnet")]


def test_a_process_that_dropped_a_scanner_on_openvino_still_trains_with_worker_processes():
    """OpenVINO 2026.4: a process that had freed compiled networks crashed (a segmentation
    fault) in its next DataLoader with worker processes, as the test suite does when a scan test
    precedes a training test; compiled networks are kept for the process's life instead."""
    import subprocess

    program = textwrap.dedent("""
        import gc, torch
        from facesleuth.published.builtin import DEFAULT_RUN
        from facesleuth.scan import Scanner, ScanOptions
        scanner = Scanner(DEFAULT_RUN, ScanOptions(device="cpu", backend="openvino"))
        again = Scanner(DEFAULT_RUN, ScanOptions(device="cpu", backend="openvino"))
        assert again.run.members[0].model.network is scanner.run.members[0].model.network  # one compiled copy
        del scanner, again
        gc.collect()

        class Faces(torch.utils.data.Dataset):
            def __len__(self):
                return 32

            def __getitem__(self, index):
                return torch.full((3, 8, 8), float(index))

        batches = list(torch.utils.data.DataLoader(Faces(), batch_size=8, num_workers=2))
        print(sum(float(b.sum()) for b in batches))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert float(done.stdout.split()[-1]) == 3 * 8 * 8 * sum(range(32))
