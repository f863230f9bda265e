"""The published-checkpoint formats against the packages their authors built them with.

For each format the test builds the authors' network from the independent package they used
(efficientnet_pytorch for polimi's and DeepfakeBench's EfficientNets, Cadene's pretrainedmodels for
Xception, timm for selimsef's B7), wrapped under the authors' attribute names so its ``state_dict()``
has their keys; randomises it (BatchNorm statistics included, so that a wrongly mapped statistic
shows), saves it in the authors' file layout, loads it with the format's ``load`` and compares the
logits on real face crops. Inputs are smaller than the authors' (the networks are fully
convolutional) to keep the tests fast; 112 px also makes efficientnet_pytorch's fixed padding differ
from timm's dynamic one, so a copy without it fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict

import cv2
import numpy as np
import pretrainedmodels
import pytest
import timm
import torch
import yaml
from efficientnet_pytorch import EfficientNet
from face_crops import face_crop
from torch import nn
from torch.nn import functional as F

from facesleuth.published import deepfakebench, polimi, selimsef

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
CONTRACT_KEYS = {"input_size", "resize", "face_scale", "value_scale", "mean", "std", "colour_order", "output"}


# --- the authors' wrappers, rebuilt from their repositories' files (see docs/weights.md) ---


class FornetEfficientNetB4(nn.Module):
    """polimi fornet.EfficientNetGen('efficientnet-b4'), random init instead of from_pretrained."""

    def __init__(self, efficientnet_class=EfficientNet):
        super().__init__()
        self.efficientnet = efficientnet_class.from_name("efficientnet-b4")
        self.classifier = nn.Linear(self.efficientnet._conv_head.out_channels, 1)
        del self.efficientnet._fc

    def features(self, x):
        x = self.efficientnet.extract_features(x)
        return self.efficientnet._avg_pooling(x).flatten(start_dim=1)

    def forward(self, x):
        return self.classifier(self.efficientnet._dropout(self.features(x)))


class FornetAutoAttEfficientNet(EfficientNet):
    """polimi fornet.EfficientNetAutoAtt with init_att('efficientnet-b4', width=0)."""

    def init_att(self):
        self.att_block_idx = 9
        self.attconv = nn.Conv2d(kernel_size=1, in_channels=56, out_channels=1)

    def extract_features(self, x):
        x = self._swish(self._bn0(self._conv_stem(x)))
        for idx, block in enumerate(self._blocks):
            x = block(x)
            if idx == self.att_block_idx:
                x = x * torch.sigmoid(self.attconv(x))
        return self._swish(self._bn1(self._conv_head(x)))


class FornetAutoAttB4(FornetEfficientNetB4):
    def __init__(self):
        super().__init__(FornetAutoAttEfficientNet)
        self.efficientnet.init_att()


class FornetSiameseTuning(nn.Module):
    """polimi fornet.SiameseTuning(feat_ext, num_feat=1792)."""

    def __init__(self, feat_ext):
        super().__init__()
        self.feat_ext = feat_ext()
        self.classifier = nn.Sequential(nn.BatchNorm1d(num_features=1792), nn.Linear(1792, 1))

    def forward(self, x):
        return self.classifier(self.feat_ext.features(x))


class FornetXception(nn.Module):
    """polimi fornet.Xception: Cadene's xception with a one-logit last_linear."""

    def __init__(self):
        super().__init__()
        self.xception = pretrainedmodels.xception(pretrained=None)
        self.xception.last_linear = nn.Linear(2048, 1)

    def forward(self, x):
        return self.xception(x)


class DeepfakeBenchXceptionDetector(nn.Module):
    """DeepfakeBench XceptionDetector: backbone = networks/xception.py's Xception (Cadene's layers,
    two-logit last_linear, the always-built adjust_channel), plus the parameterless loss."""

    def __init__(self):
        super().__init__()
        self.backbone = pretrainedmodels.xception(pretrained=None)
        self.backbone.last_linear = nn.Linear(2048, 2)
        self.backbone.adjust_channel = nn.Sequential(nn.Conv2d(2048, 512, 1, 1), nn.BatchNorm2d(512), nn.ReLU())
        self.loss_func = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.backbone.logits(self.backbone.features(x))


class DeepfakeBenchB4Backbone(nn.Module):
    """DeepfakeBench networks/efficientnetb4.py's EfficientNetB4 (num_classes 2, no dropout, Original)."""

    def __init__(self):
        super().__init__()
        self.efficientnet = EfficientNet.from_name("efficientnet-b4")
        self.efficientnet._conv_stem = nn.Conv2d(3, 48, kernel_size=3, stride=2, bias=False)
        self.efficientnet._fc = nn.Identity()
        self.last_layer = nn.Linear(1792, 2)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.efficientnet.extract_features(x), (1, 1))
        return self.last_layer(x.view(x.size(0), -1))


class DeepfakeBenchB4Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = DeepfakeBenchB4Backbone()
        self.loss_func = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.backbone(x)


class SelimsefDeepFakeClassifier(nn.Module):
    """selimsef training/zoo/classifiers.py DeepFakeClassifier('tf_efficientnet_b7_ns'), random init."""

    def __init__(self):
        super().__init__()
        self.encoder = timm.create_model("tf_efficientnet_b7_ns", pretrained=False, drop_path_rate=0.2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(2560, 1)

    def forward(self, x):
        x = self.avg_pool(self.encoder.forward_features(x)).flatten(1)
        return self.fc(self.dropout(x))


# --- randomising, inputs, comparison ---


def randomised(model: nn.Module, seed: int) -> nn.Module:
    """``model`` with random weights and random BatchNorm affine parameters and statistics (a fresh
    BatchNorm is the identity in eval mode, which would hide a mis-mapped statistic), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
                module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
            elif isinstance(module, nn.Conv2d):
                # variance-preserving weights: with PyTorch's default init the signal fades over
                # B4's 32 blocks and every face gets the same logit
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.05)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    return model.eval()


def network_input(samples, preprocessing: dict, size: int) -> torch.Tensor:
    """The real and the Deepfakes crop of the sample face, stretched to ``size`` and scaled and
    normalised as ``preprocessing`` says."""
    images = [cv2.resize(face_crop(samples, fake=fake), (size, size), interpolation=cv2.INTER_AREA)
              for fake in (False, True)]
    batch = np.stack(images).astype(np.float32) * preprocessing["value_scale"]
    if preprocessing["colour_order"] == "BGR":
        batch = batch[..., ::-1]
    if preprocessing["mean"] is not None:
        batch = (batch - np.float32(preprocessing["mean"])) / np.float32(preprocessing["std"])
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)


def assert_same_logits(ours: nn.Module, reference: nn.Module, batch: torch.Tensor):
    with torch.no_grad():
        expected, got = reference(batch), ours(batch)
    assert not ours.training
    assert got.shape == expected.shape
    # the two faces must get different logits, or the comparison could not tell much
    assert (expected[0] - expected[1]).abs().max() > 1e-3
    torch.testing.assert_close(got, expected, **TOLERANCE)


def check_contract(preprocessing: dict):
    assert CONTRACT_KEYS <= preprocessing.keys()
    assert preprocessing["colour_order"] in {"RGB", "BGR"}
    if preprocessing["output"] == "two_logits_fake_index":
        assert preprocessing["fake_index"] in (0, 1)


# --- polimi icpr2020dfdc ---

POLIMI_REFERENCES = {
    "EfficientNetB4": FornetEfficientNetB4,
    "EfficientNetAutoAttB4": FornetAutoAttB4,
    "EfficientNetB4ST": lambda: FornetSiameseTuning(FornetEfficientNetB4),
    "EfficientNetAutoAttB4ST": lambda: FornetSiameseTuning(FornetAutoAttB4),
    "Xception": FornetXception,
}


@pytest.mark.parametrize(("variant", "wrapped"), [
    ("EfficientNetB4_DFDC", False),  # the hosted files: a bare state dict
    ("EfficientNetAutoAttB4_FFPP", True),  # train_binclass.py's save_model: {'net': ..., 'opt': ...}
    ("EfficientNetB4ST_FFPP", False),
    ("EfficientNetAutoAttB4ST_DFDC", True),
    ("Xception_DFDC", False),
])
def test_polimi_matches_fornet(samples, tmp_path, variant, wrapped):
    reference = randomised(POLIMI_REFERENCES[polimi.VARIANTS[variant]["architecture"]](), seed=1)
    state = reference.state_dict()
    if wrapped:
        state = {"net": state, "opt": {"state": {}, "param_groups": []}, "train_loss": 0.4, "val_loss": 0.5,
                 "iteration": 1200, "batch_size": 32, "epoch": 3}
    path = tmp_path / polimi.VARIANTS[variant]["file"]
    torch.save(state, path)

    model, preprocessing = polimi.load(variant, path)

    check_contract(preprocessing)
    assert preprocessing["output"] == "fake_logit"
    assert_same_logits(model, reference, network_input(samples, preprocessing, size=112))


def test_polimi_variants_name_their_files():
    for name, variant in polimi.VARIANTS.items():
        # torch.hub's check_hash reads the hash from the file name: they must agree
        assert variant["url"].endswith(variant["file"])
        assert variant["file"] == f"{name}_bestval-{variant['sha256']}.pth"
        assert len(variant["sha256"]) == 64


def test_polimi_rejects_other_layouts(tmp_path):
    xception = FornetXception().state_dict()
    other_head = OrderedDict(xception)
    other_head["xception.last_linear.weight"] = torch.zeros(2, 2048)  # DeepfakeBench's two logits
    other_head["xception.last_linear.bias"] = torch.zeros(2)
    cases = {
        "selimsef.pth": ({"epoch": 1, "state_dict": {"module.fc.weight": torch.zeros(1, 2560)}}, "missing keys"),
        "renamed.pth": ({f"model.{key}": value for key, value in xception.items()}, "unexpected keys"),
        "shapes.pth": (other_head, "do not fit"),
        "list.pth": ([torch.zeros(1)], "not a state dict"),
    }
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError, match=message) as raised:
            polimi.load("Xception_FFPP", tmp_path / name)
        assert "fornet.Xception" in str(raised.value)

    (tmp_path / "text.pth").write_text("not a checkpoint")
    torch.save(nn.Linear(2048, 1), tmp_path / "module.pth")  # a pickled module: unpickling would run code
    for name in ("text.pth", "module.pth"):
        with pytest.raises(ValueError, match="not a PyTorch checkpoint that can be read safely"):
            polimi.load("Xception_FFPP", tmp_path / name)
    with pytest.raises(ValueError, match="no such checkpoint"):
        polimi.load("Xception_FFPP", tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="unknown polimi variant"):
        polimi.load("Xception_CelebDF", tmp_path / "text.pth")


# --- DeepfakeBench ---


@pytest.mark.parametrize(("variant", "reference_class", "ddp"), [
    ("xception", DeepfakeBenchXceptionDetector, False),
    ("efficientnetb4", DeepfakeBenchB4Detector, True),
])
def test_deepfakebench_matches_detector(samples, tmp_path, variant, reference_class, ddp):
    reference = randomised(reference_class(), seed=2)
    state = reference.state_dict()
    if ddp:  # trainer.save_ckpt of a DistributedDataParallel model
        state = OrderedDict((f"module.{key}", value) for key, value in state.items())
    path = tmp_path / deepfakebench.VARIANTS[variant]["file"]
    torch.save(state, path)

    model, preprocessing = deepfakebench.load(variant, path)

    check_contract(preprocessing)
    assert preprocessing["output"] == "two_logits_fake_index"
    assert_same_logits(model, reference, network_input(samples, preprocessing, size=112))


def test_deepfakebench_rejects_polimi_checkpoint(tmp_path):
    torch.save({"net": {"xception.conv1.weight": torch.zeros(32, 3, 3, 3)}}, tmp_path / "polimi.pth")
    with pytest.raises(ValueError, match="DeepfakeBench xception checkpoint.*missing keys.*backbone"):
        deepfakebench.load("xception", tmp_path / "polimi.pth")


# --- selimsef dfdc_deepfake_challenge ---


@pytest.mark.slow  # two EfficientNet-B7s: about 40 s on two shared cores
def test_selimsef_matches_deepfake_classifier(samples, tmp_path):
    reference = randomised(SelimsefDeepFakeClassifier(), seed=3)
    variant = "final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36"
    # train_classifier.py saves the DataParallel model's state dict (hence 'module.') in a dict
    # (its 'bce_best' is scikit-learn's log loss, a numpy.float64)
    checkpoint = {"epoch": 37, "state_dict": nn.DataParallel(reference).state_dict(), "bce_best": np.float64(0.21)}
    assert next(iter(checkpoint["state_dict"])).startswith("module.")
    path = tmp_path / variant
    torch.save(checkpoint, path)

    model, preprocessing = selimsef.load(variant, path)

    check_contract(preprocessing)
    assert preprocessing["resize"] == "isotropic_pad"
    assert_same_logits(model, reference, network_input(samples, preprocessing, size=64))

    torch.save({"epoch": 1, "state_dict": {"module.encoder.conv_stem.weight": torch.zeros(64, 3, 3, 3)}},
               tmp_path / "partial")
    with pytest.raises(ValueError, match="selimsef dfdc_deepfake_challenge checkpoint.*missing keys"):
        selimsef.load(variant, tmp_path / "partial")


def test_formats_need_neither_publisher_package_at_run_time():
    """The loaders run on timm alone: efficientnet_pytorch and pretrainedmodels are test-only."""
    probe = """
import sys
sys.modules["efficientnet_pytorch"] = None  # importing either now raises ImportError
sys.modules["pretrainedmodels"] = None
from facesleuth.published import deepfakebench, polimi, selimsef
polimi.CadeneXception(outputs=1)
print("built")
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "built"


# --- the formats as run folders: import through the CLI, load as the scanner does, score ---

#: the pixels the crops below were grown by around the face box (the scanner's detection margin)
CROP_MARGIN = 20


def scanner_crops(samples) -> list[np.ndarray]:
    """The real and the Deepfakes face of the sample frame, as the scanner's crops (box + margin)."""
    return [face_crop(samples, fake=fake) for fake in (False, True)]


def inputs_by_hand(preprocessing: dict, crops: list[np.ndarray]) -> torch.Tensor:
    """The network input of ``crops`` as docs/weights.md describes the preprocessing, written out
    here: the square of face_scale x the box's longer side around the box (the crop less the
    margin), zero-padded where it leaves the crop, resized bilinearly (no square below shrinks by
    half, where area interpolation would take over), scaled, normalised."""
    size = preprocessing["input_size"]
    images = []
    for crop in crops:
        height, width = crop.shape[:2]
        side = round(preprocessing["face_scale"] * max(height - 2 * CROP_MARGIN, width - 2 * CROP_MARGIN))
        assert side < 2 * size
        top, left = round(height / 2 - side / 2), round(width / 2 - side / 2)
        padded = np.pad(crop, ((side, side), (side, side), (0, 0)))  # zeros all round, then the square
        square = padded[side + top : side + top + side, side + left : side + left + side]
        # a square needs no padding for isotropic_pad and is the same stretched: one resize serves all three
        images.append(cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR))
    batch = np.stack(images).astype(np.float32) * np.float32(preprocessing["value_scale"])
    batch = (batch - np.float32(preprocessing["mean"])) / np.float32(preprocessing["std"])
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def by_hand(network: nn.Module, preprocessing: dict, crops: list[np.ndarray]) -> np.ndarray:
    """P(fake) of ``crops``: the network on :func:`inputs_by_hand`, then the output's polarity."""
    with torch.no_grad():
        out = network(inputs_by_hand(preprocessing, crops)).double()
    if preprocessing["output"] == "fake_logit":
        return torch.sigmoid(out.reshape(-1)).numpy()
    assert preprocessing["output"] == "two_logits_fake_index"
    return torch.softmax(out, dim=1)[:, preprocessing["fake_index"]].numpy()


def tempered(model: nn.Module, head: nn.Linear, factor: float) -> nn.Module:
    """``model`` with its last layer's weights scaled by ``factor``: random weights give logits in the
    thousands at full input size, whose sigmoid or softmax is 0 or 1 for every face, so comparing
    scores would tell nothing; the factors below bring the logits to a few units."""
    with torch.no_grad():
        head.weight.mul_(factor)
    return model


def polimi_xception_checkpoint(path):
    # Xception rather than a B4: at its full 224 px the randomised B4's 32 blocks amplify float32
    # rounding (batch size or memory layout move a logit by hundreds), which no tolerance survives
    reference = randomised(FornetXception(), seed=4)
    torch.save(tempered(reference, reference.xception.last_linear, 1e-7).state_dict(), path)  # as hosted: bare


def deepfakebench_xception_checkpoint(path):
    reference = randomised(DeepfakeBenchXceptionDetector(), seed=5)
    torch.save(tempered(reference, reference.backbone.last_linear, 1e-6).state_dict(), path)  # save_ckpt


def selimsef_checkpoint(path):
    # no head factor makes a random B7 usable at 380 px: its 55 blocks amplify float32 rounding so
    # far that the batch size or memory layout flips a logit's sign; its inputs are compared instead
    reference = randomised(SelimsefDeepFakeClassifier(), seed=6)
    torch.save({"epoch": 37, "state_dict": nn.DataParallel(reference).state_dict(), "bce_best": np.float64(0.2)},
               path)


@pytest.mark.parametrize(("format_name", "variant", "write_checkpoint", "scores_comparable"), [
    ("polimi", "Xception_FFPP", polimi_xception_checkpoint, True),
    ("deepfakebench", "xception", deepfakebench_xception_checkpoint, True),
    pytest.param("selimsef", "final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36", selimsef_checkpoint, False,
                 marks=pytest.mark.slow),  # three EfficientNet-B7s; inputs compared, not scores (above)
])
def test_imported_run_scores_as_its_format_and_preprocessing_say(samples, tmp_path, capsys, format_name, variant,
                                                                 write_checkpoint, scores_comparable):
    from facesleuth.cli import main as facesleuth_main
    from facesleuth.evaluate.predict import predict_crops
    from facesleuth.train.preprocess import prepare_faces
    from facesleuth.published import get_format
    from facesleuth.scan.runfolder import load_scan_run

    fmt = get_format(format_name)
    checkpoint = tmp_path / fmt.variants[variant]["file"]
    write_checkpoint(checkpoint)
    out = tmp_path / "run"
    # no --variant: the published file name identifies it (no sha256 can match a random checkpoint)
    assert facesleuth_main(["weights", "import", format_name, str(checkpoint), str(out)]) == 0, capsys.readouterr()
    spec = yaml.safe_load((out / "run.yaml").read_text())
    assert (spec["kind"], spec["format"], spec["variant"]) == ("published", format_name, variant)
    assert spec["provenance"]["layout_source"] == fmt.variants[variant]["layout_source"]
    assert spec["provenance"]["url"] == fmt.variants[variant]["url"]
    assert (out / checkpoint.name).read_bytes() == checkpoint.read_bytes()

    run = load_scan_run(out)
    crops = scanner_crops(samples)
    network, preprocessing = fmt.load(variant, checkpoint)
    assert run.info["preprocessing"] == preprocessing
    torch.testing.assert_close(prepare_faces(crops, run.info, margin=CROP_MARGIN),
                               inputs_by_hand(preprocessing, crops), rtol=0, atol=1e-5)
    assert run.limits == spec["limits"] and run.limits  # every scan output repeats them
    if not scores_comparable:
        return
    scanned = predict_crops(run.model, run.info, crops, run.device, margin=CROP_MARGIN)  # the scanner's call
    expected = by_hand(network, preprocessing, crops)

    # scores inside (0, 1) that differ between the faces, so the comparison can tell
    assert np.all((expected > 0.01) & (expected < 0.99)) and abs(expected[0] - expected[1]) > 1e-3, expected
    np.testing.assert_allclose(scanned, expected, rtol=0, atol=1e-5)


def test_deepfakebench_run_says_its_alignment_is_approximated(samples, tmp_path, capsys):
    """DeepfakeBench aligned faces by five landmarks; the crops have none, so the run records the
    square crop + stretch it gets instead, and a scan states it."""
    import json

    from facesleuth.cli import main as facesleuth_main

    checkpoint = tmp_path / "xception_best.pth"
    deepfakebench_xception_checkpoint(checkpoint)
    out = tmp_path / "dfb"
    assert facesleuth_main(["weights", "import", "deepfakebench", str(checkpoint), str(out)]) == 0
    capsys.readouterr()
    spec = yaml.safe_load((out / "run.yaml").read_text())
    assert spec["preprocessing"]["resize"] == "similarity_align"  # the authors' own, kept as they did it
    assert spec["preprocessing_approximation"]["applied"] == "stretch"
    assert any("approximated" in limit and "landmarks" in limit for limit in spec["limits"])

    image = samples / "images" / "ex_original.png"
    assert facesleuth_main(["scan", str(image), "--model", str(out), "--format", "json", "--frames", "1",
                            "--threads", "1", "--no-progress"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert any("approximated" in limit and "ArcFace" in limit for limit in document["model"]["limits"])
    (result,) = document["results"]
    assert result["status"] == "ok" and 0.0 <= result["score"] <= 1.0, result


def test_list_and_fetch_know_the_new_formats(monkeypatch, tmp_path, capsys):
    import time

    from facesleuth.cli import main as facesleuth_main
    from facesleuth.published.catalogue import FetchError, catalogue, fetch

    assert facesleuth_main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    for module in (polimi, selimsef, deepfakebench):
        for name, variant in module.VARIANTS.items():
            assert name in listing and variant["url"] in listing
            assert f"{module.__name__.rsplit('.', 1)[-1]}/{name}" in catalogue()
    # polimi publishes a sha256 per file; selimsef and DeepfakeBench none, which the list says
    assert f"sha256 {polimi.VARIANTS['Xception_FFPP']['sha256']}" in listing
    assert listing.count("no published sha256") == len(selimsef.VARIANTS) + len(deepfakebench.VARIANTS)

    # offline: the download fails at once, with the URL and how to import a file downloaded elsewhere
    variant = "EfficientNetB4_FFPP"
    monkeypatch.setitem(polimi.VARIANTS[variant], "url", "http://127.0.0.1:9/" + polimi.VARIANTS[variant]["file"])
    started = time.monotonic()
    with pytest.raises(FetchError) as raised:
        fetch(f"polimi/{variant}", tmp_path, timeout=2)
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "http://127.0.0.1:9/" in message and "facesleuth weights import polimi FILE" in message
    assert f"--variant {variant}" in message
    assert not (tmp_path / variant).exists()
