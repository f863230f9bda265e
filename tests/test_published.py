"""Published detectors as run folders: MesoNet read from the authors' Keras files, checked against
an independent numpy forward pass, the authors' test images, real sample videos; the run folder
(import, fetch, the built-in default) through prediction and the scanner's outputs; demo-trained
runs marked as such."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import cv2
import h5py
import jsonschema
import numpy as np
import pytest
import torch
import yaml

from facesleuth.cli import main as facesleuth_main
from facesleuth.evaluate.inference import load_run
from facesleuth.evaluate.predict import predict_crops
from facesleuth.train.preprocess import recrop
from facesleuth.published import get_format, mesonet
from facesleuth.published.builtin import BUILTIN_RUNS, DEFAULT_MEMBERS, DEFAULT_RUN
from facesleuth.published.catalogue import FetchError, fetch
from facesleuth.published.runfolder import PublishedDetector, import_detector
from facesleuth.scan.schema import DOCUMENT_SCHEMA

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ("--frames", "8", "--threads", "1", "--no-progress")


def packaged(name: str) -> Path:
    return BUILTIN_RUNS[name] / f"{name}.h5"


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------- an independent Meso-4


def _keras_layers(path: Path) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        weights = {n: {k.split(":")[0]: f[n][n][k][()].astype(np.float64) for k in f[n][n]} for n in names
                   if n in f and len(f[n]) and n in f[n]}
    return names, weights


def _conv_relu(x: np.ndarray, w: dict[str, np.ndarray], dilation: int = 1) -> np.ndarray:
    """Keras Conv2D(padding='same', activation='relu') at stride 1 on an (H, W, C) array."""
    kernel = w["kernel"]
    k = kernel.shape[0]
    reach = dilation * (k - 1)
    padded = np.pad(x, ((reach // 2, reach // 2), (reach // 2, reach // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (reach + 1, reach + 1), axis=(0, 1))
    windows = windows[..., ::dilation, ::dilation]  # H, W, C, k, k
    return np.maximum(np.einsum("hwcij,ijco->hwo", windows, kernel) + w["bias"], 0)


def _norm_pool(x: np.ndarray, w: dict[str, np.ndarray], pool: int) -> np.ndarray:
    x = w["gamma"] * (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + 1e-3) + w["beta"]
    h, wd, c = x.shape
    return x.reshape(h // pool, pool, wd // pool, pool, c).max(axis=(1, 3))


def _numpy_mesonet(path: Path, image: np.ndarray, inception: bool) -> float:
    """MesoNet written straight from Keras's definitions in ``classifiers.py``, in numpy,
    channels-last as Keras computes: 'same' convolutions with ReLU, batch norm (eps 1e-3), max
    pooling, flatten, dense 16, its LeakyReLU(0.1) only where the file lists that layer, dense 1,
    sigmoid. Layers are taken by their Keras names (creation order)."""
    names, weights = _keras_layers(path)
    convs = sorted((n for n in names if n.startswith("conv2d")), key=lambda n: int(n.rsplit("_", 1)[1]))
    norms = sorted((n for n in names if n.startswith("batch_normalization")), key=lambda n: int(n.rsplit("_", 1)[1]))
    dense = sorted((n for n in names if n.startswith("dense")), key=lambda n: int(n.rsplit("_", 1)[1]))
    x = image.astype(np.float64)
    if inception:
        for block in range(2):  # InceptionLayer: 1x1 | 1x1, 3x3 | 1x1, 3x3 dilated 2 | 1x1, 3x3 dilated 3
            c = [weights[n] for n in convs[7 * block : 7 * block + 7]]
            branches = [_conv_relu(x, c[0]),
                        _conv_relu(_conv_relu(x, c[1]), c[2]),
                        _conv_relu(_conv_relu(x, c[3]), c[4], dilation=2),
                        _conv_relu(_conv_relu(x, c[5]), c[6], dilation=3)]
            x = _norm_pool(np.concatenate(branches, axis=-1), weights[norms[block]], 2)
        rest = [(convs[14], norms[2], 2), (convs[15], norms[3], 4)]
    else:
        rest = list(zip(convs, norms, (2, 2, 2, 4)))
    for conv, norm, pool in rest:
        x = _norm_pool(_conv_relu(x, weights[conv]), weights[norm], pool)
    x = x.reshape(-1) @ weights[dense[0]]["kernel"] + weights[dense[0]]["bias"]
    if any(n.startswith("leaky_re_lu") for n in names):
        x = np.where(x > 0, x, 0.1 * x)
    return float((x @ weights[dense[1]]["kernel"] + weights[dense[1]]["bias"])[0])  # the logit


@pytest.mark.parametrize("variant", ["Meso4_DF", "Meso4_F2F", "MesoInception_DF"])
def test_mesonet_forward_matches_an_independent_numpy_network(variant):
    """The torch network against the numpy one on the same pixels: P(real) within 1e-5, and the
    logit before the sigmoid (which saturates) within 1e-4."""
    rng = np.random.default_rng(5)
    # a smooth random image (large areas of similar values, as faces have) and pixel noise
    small = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    images = [cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC).clip(0, 1),
              rng.uniform(0.3, 0.7, (256, 256, 3)).astype(np.float32)]
    network, preprocessing = mesonet.load(variant, packaged(variant))
    assert preprocessing["output"] == "real_probability" and preprocessing["input_size"] == 256
    logits = []
    network.out.register_forward_hook(lambda module, inputs, output: logits.append(output[:, 0]))
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        ours = network(batch).numpy()
    expected = np.array([_numpy_mesonet(packaged(variant), image, variant.startswith("MesoInception"))
                         for image in images])
    np.testing.assert_allclose(logits[0].numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(ours, 1 / (1 + np.exp(-expected)), atol=1e-5)


def test_wrong_architecture_is_refused_with_the_layout():
    with pytest.raises(ValueError, match="expected the layout of Meso-4"):
        mesonet.load("Meso4_DF", packaged("MesoInception_DF"))
    with pytest.raises(ValueError, match="not an HDF5 file"):
        mesonet.load("Meso4_DF", Path(__file__))


# ---------------------------------------------------------------------------- real faces


def test_authors_test_images_come_out_the_right_way_round(published_weights, tmp_path):
    """The authors' example: test_images/df are forged, test_images/real are not. Through the run
    folder (import, load_run, predict_crops: the scanner's path), P(fake) of both forged faces is
    above 0.5 and of both real ones below, for the two models trained on Deepfakes."""
    images = published_weights / "mesonet" / "test_images"
    df = [read_rgb(p) for p in sorted((images / "df").glob("*.jpg"))]
    real = [read_rgb(p) for p in sorted((images / "real").glob("*.jpg"))]
    assert len(df) == 2 and len(real) == 2
    for variant in ("Meso4_DF", "MesoInception_DF"):
        folder = import_detector("mesonet", published_weights / "mesonet" / f"{variant}.h5", tmp_path / variant)
        model, info = load_run(folder)
        p_fake = predict_crops(model, info, df + real, "cpu")
        assert (p_fake[:2] > 0.9).all() and (p_fake[2:] < 0.1).all(), (variant, p_fake)


@pytest.mark.slow
def test_ffpp_deepfake_scores_below_its_original(samples):
    """Meso-4 DF gives the FF++ Deepfakes sample a far higher P(fake) (lower P(real)) than its original."""
    from facesleuth.scan import ScanOptions, Scanner

    scanner = Scanner(BUILTIN_RUNS["Meso4_DF"], ScanOptions(frames=8, device="cpu",
                                                             detection={"detect_max_side": 480}))
    videos = samples / "ffpp"
    original = scanner.scan_file(videos / "original_sequences/youtube/c23/videos/519.mp4")
    fake = scanner.scan_file(videos / "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4")
    assert original.status == fake.status == "ok"
    assert fake.score > original.score + 0.3, (fake.score, original.score)


# ---------------------------------------------------------------------------- run folders


def test_output_polarities_become_the_fake_class_of_two_logits():
    raw = torch.tensor([-2.0, 0.0, 3.0])
    probability = torch.tensor([0.1, 0.5, 1.0])

    def p_fake(output, values, fake_index=None):
        network = torch.nn.Identity()
        return torch.softmax(PublishedDetector(network, output, fake_index)(values), dim=1)[:, 1]

    torch.testing.assert_close(p_fake("fake_logit", raw), 1 / (1 + torch.exp(-raw)))
    torch.testing.assert_close(p_fake("fake_probability", probability), probability)
    torch.testing.assert_close(p_fake("real_probability", probability), 1 - probability)
    logits = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    torch.testing.assert_close(p_fake("two_logits_fake_index", logits, 0), torch.tensor([0.952574, 0.268941]),
                               atol=1e-6, rtol=0)


def test_recrop_takes_the_square_around_the_box():
    # a 100 x 60 box grown by 30 px: the crop is 160 x 120 (w x h); 1.3 x 100 = 130 px square
    crop = np.arange(120 * 160 * 3, dtype=np.int64).reshape(120, 160, 3) % 251
    out = recrop(crop.astype(np.uint8), 1.3, 30)
    assert out.shape == (130, 130, 3)
    # centred: columns 15..144 of the crop; rows -5..124, so 5 zero rows above and below
    np.testing.assert_array_equal(out[5:125], crop[:, 15:145].astype(np.uint8))
    assert not out[:5].any() and not out[125:].any()


def test_import_cli_makes_a_run_folder_and_refuses_a_bad_file(tmp_path, capsys):
    out = tmp_path / "meso4_f2f"
    assert facesleuth_main(["weights", "import", "mesonet", str(packaged("Meso4_F2F")), str(out)]) == 0
    spec = yaml.safe_load((out / "run.yaml").read_text())
    digest = hashlib.sha256(packaged("Meso4_F2F").read_bytes()).hexdigest()
    assert spec["kind"] == "published" and spec["variant"] == "Meso4_F2F"  # known by its sha256
    assert spec["provenance"]["sha256"] == spec["provenance"]["published_sha256"] == digest
    assert spec["provenance"]["licence"].startswith("Apache-2.0")
    assert (out / "Meso4_F2F.h5").read_bytes() == packaged("Meso4_F2F").read_bytes()
    assert "Apache License" in (out / "LICENSE").read_text() and (out / "NOTICE").is_file()
    assert spec["preprocessing"] == mesonet.PREPROCESSING
    bad = tmp_path / "other.h5"
    bad.write_bytes(packaged("MesoInception_DF").read_bytes())
    assert facesleuth_main(["weights", "import", "mesonet", str(bad), str(tmp_path / "bad"),
                            "--variant", "Meso4_DF"]) == 1
    assert "expected the layout of Meso-4" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_builtin_run_folders_are_what_import_writes(tmp_path):
    for name, folder in BUILTIN_RUNS.items():
        made = import_detector("mesonet", folder / f"{name}.h5", tmp_path / name)
        assert yaml.safe_load((made / "run.yaml").read_text()) == yaml.safe_load((folder / "run.yaml").read_text())
    spec = yaml.safe_load((DEFAULT_RUN / "ensemble.yaml").read_text())
    assert [Path(m).name for m in spec["members"]] == list(DEFAULT_MEMBERS)


def test_fetch_without_internet_fails_at_once_and_says_how_to_import(monkeypatch, tmp_path, capsys):
    # port 9 (discard) on this machine refuses at once, with or without internet
    monkeypatch.setitem(mesonet.VARIANTS["Meso4_DF"], "url", "http://127.0.0.1:9/Meso4_DF.h5")
    started = time.perf_counter()
    with pytest.raises(FetchError) as error:
        fetch("mesonet/Meso4_DF", tmp_path, timeout=2)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "http://127.0.0.1:9/Meso4_DF.h5" in message and "facesleuth weights import mesonet FILE" in message
    assert facesleuth_main(["weights", "fetch", "mesonet/Meso4_DF", str(tmp_path), "--timeout", "2"]) == 1
    assert "could not download" in capsys.readouterr().err
    with pytest.raises(FetchError, match="no published checkpoint called"):
        fetch("nosuch", tmp_path)
    assert get_format("mesonet").variants["Meso4_DF"]["url"].startswith("http://127.0.0.1:9")


# ---------------------------------------------------------------------------- outputs state the limits


def test_scan_without_model_uses_the_builtin_ensemble_and_states_its_limits(samples, tmp_path, capsys):
    image = samples / "images" / "ex_original.png"
    assert facesleuth_main(["scan", str(image), "--format", "json", *FAST]) == 0
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, DOCUMENT_SCHEMA)
    model = document["model"]
    assert model["members"] == ["mesonet/Meso4_DF", "mesonet/Meso4_F2F"] and model["threshold"] == 0.5
    assert model["threshold_source"] == "published"
    assert "mesonet/Meso4_DF: threshold 0.5 is the network's own decision boundary" in " ".join(model["notes"])
    assert any("2018" in limit and "--model" in limit for limit in model["limits"])
    (result,) = document["results"]
    assert result["status"] == "ok" and result["verdict"] == "real", result  # a real FF++ frame
    assert facesleuth_main(["scan", str(image), *FAST]) == 0
    assert "LIMITS   MesoNet is a 2018 model" in capsys.readouterr().out
    report = tmp_path / "report.html"
    assert facesleuth_main(["scan", str(image), "--format", "html", "--output", str(report), *FAST]) == 0
    assert 'class="limits"' in report.read_text() and "2018 model" in report.read_text()


def test_demo_trained_run_says_so_everywhere(samples, tmp_path, capsys):
    import copy

    from face_crops import write_split
    from scan_helpers import RUN_SETTINGS

    from facesleuth.serve.app import ServeSettings, Service
    from facesleuth.cli.serve import check_model
    from facesleuth.train.loop import train_run

    split = write_split(tmp_path / "split.parquet", samples)
    run = tmp_path / "demo_run"
    train_run(split, run, {**copy.deepcopy(RUN_SETTINGS), "trained_on_demo": True})
    info = yaml.safe_load((run / "run.yaml").read_text())
    assert info["trained_on_demo"] is True and "synthetic faces" in info["limits"][0]
    image = samples / "images" / "ex_original.png"
    assert facesleuth_main(["scan", str(image), "--model", str(run), "--format", "json", *FAST]) == 0
    assert any("not validated on real media" in limit for limit in json.loads(capsys.readouterr().out)["model"]["limits"])
    assert facesleuth_main(["scan", str(image), "--model", str(run), *FAST]) == 0
    assert "LIMITS   trained on the embedded demo's synthetic faces" in capsys.readouterr().out
    report = tmp_path / "report.html"
    assert facesleuth_main(["scan", str(image), "--model", str(run), "--format", "html", "--output", str(report),
                            *FAST]) == 0
    assert "synthetic faces" in report.read_text()
    limits = check_model(str(run), "cpu")
    page = Service(ServeSettings.make(tmp_path / "data", run, model_limits=limits)).page(None).body.decode()
    assert "Limits of this model" in page and "not validated on real media" in page
    plain = copy.deepcopy(RUN_SETTINGS)
    from facesleuth.train.loop import run_info

    assert "limits" not in run_info(plain, ["x"], "cpu", 1, {})


def test_pipeline_prediction_and_validation_take_an_imported_run(samples, tmp_path):
    """The pipeline's validation (the path of rule validate and of calibration) scores a split's
    faces with an imported run as its authors prepare them: checked against the network run by
    hand on the same JPEGs (OpenCV decode, stretch to 256, /255, 1 - P(real))."""
    from face_crops import write_split

    from facesleuth.train.data import read_split
    from facesleuth.evaluate.predict import score_validation_faces, validate_on_holdout

    split = write_split(tmp_path / "split.parquet", samples)
    run = BUILTIN_RUNS["Meso4_DF"]
    faces = score_validation_faces(run, split, {"batch_size": 5}, device="cpu")
    table = read_split(split, "val")
    assert len(faces) == table.num_rows > 0
    network, _ = mesonet.load("Meso4_DF", packaged("Meso4_DF"))
    by_hand = []
    for jpeg in table.column("jpeg").to_pylist():
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        size_before = min(rgb.shape[:2])
        interpolation = cv2.INTER_AREA if 256 < 0.5 * size_before else cv2.INTER_LINEAR
        x = torch.from_numpy(cv2.resize(rgb, (256, 256), interpolation=interpolation)).permute(2, 0, 1)[None] / 255.0
        with torch.no_grad():
            by_hand.append(1 - float(network(x.float())[0]))
    np.testing.assert_allclose(faces["score"].to_numpy(), by_hand, atol=1e-5)
    _, videos, threshold = validate_on_holdout(run, split, {"aggregation": "mean", "batch_size": 16}, device="cpu")
    assert threshold["source"] == "validation" and 0.0 <= threshold["eer_threshold"] <= 1.0
    assert set(videos["label"]) == {0, 1}


def test_serve_without_model_uses_the_builtin_ensemble_and_its_page_states_the_limits(tmp_path):
    from facesleuth.cli import build_parser
    from facesleuth.serve.app import Service
    from facesleuth.cli.serve import check_model, settings_from_args

    args = build_parser("serve").parse_args(["serve", "--data-dir", str(tmp_path / "data")])
    settings = settings_from_args(args)
    assert Path(settings.worker.model) == DEFAULT_RUN
    settings.model_limits = check_model(settings.worker.model, "cpu")
    page = Service(settings).page(None).body.decode()
    assert "Limits of this model" in page and "MesoNet is a 2018 model" in page
