"""The thesis's figures (2.12-2.15, 3.1-3.12) drawn from the pipeline's outputs, as PNG.

Every figure is a function returning a matplotlib ``Figure`` from already-read inputs, so
tests can check it; :func:`make_figures` reads a rule's inputs, draws and writes atomically.
matplotlib runs on the Agg backend (no display on cluster nodes).

"Best" runs follow :mod:`facesleuth.report.tables`: per model, the setup with the lowest DFDC log
loss; on Celeb-DF-v2, the highest F1 at the test set's EER threshold.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from facesleuth import registry
from facesleuth.report import catalog
from facesleuth.extract import perturb
from facesleuth.train.augment import build_augmentation
from facesleuth.io import atomic_path
from facesleuth.evaluate.metrics import THRESHOLD_KINDS
from facesleuth.train.preprocess import decode_jpeg, letterbox
from facesleuth.evaluate.robustness import CLEAN, METRICS
from facesleuth.train.sbi import SelfBlender, landmarks_array
from facesleuth.report.studies import build_generalisation
from facesleuth.report.tables import (
    TableError,
    run_label,
    best_run_overall,
    best_setups,
    display_name,
    read_history,
    read_metrics,
    run_of,
    setup_label,
    threshold_description,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

log = logging.getLogger("facesleuth.report.figures")

DPI = 150
# how the galleries' titles name the criterion that picked their run
SELECTION_LABELS = {"log_loss": "lowest log loss", "f1_test_eer": "highest F1 at the test set's EER threshold"}
# transforms that prepare rather than augment: not shown as a step of Fig. 2.12
_NOT_A_STEP = {"Normalize", "ToTensorV2", "LongestMaxSize", "PadIfNeeded", "Resize"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: "Figure", path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG atomically, then close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return Path(path)


def _bar_labels(ax, bars, fmt: str = "{:.3f}") -> None:
    for bar in bars:
        height = bar.get_height()
        ax.annotate(fmt.format(height), (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom",
                    fontsize=7, xytext=(0, 2), textcoords="offset points")


# ---------------------------------------------------------------- Fig. 2.12


class SplitFace(NamedTuple):
    face_id: str
    jpeg: bytes
    landmarks: np.ndarray | None  # (5, 2), crop pixels; None where the split has none


def first_real_face(split_path: str | os.PathLike) -> SplitFace:
    """A real face from the split, read batch by batch (the file holds every training crop):
    the largest JPEG of the first batch holding reals, for detail; one with landmarks when the
    split has them (the self-blending examples need them)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(split_path)
    columns = ["face_id", "label", "jpeg"] + (["landmarks"] if "landmarks" in parquet.schema_arrow.names else [])
    fallback = None
    for batch in parquet.iter_batches(columns=columns, batch_size=512):
        frame = batch.to_pandas()
        reals = frame[frame["label"] == 0]
        if not len(reals):
            continue
        points = reals["landmarks"].map(landmarks_array) if "landmarks" in reals else pd.Series(None, index=reals.index)
        with_points = reals[points.notna()]
        chosen = with_points if len(with_points) else reals
        index = chosen["jpeg"].map(len).idxmax()
        face = SplitFace(str(reals.loc[index, "face_id"]), bytes(reals.loc[index, "jpeg"]), points.loc[index])
        if face.landmarks is not None:
            return face
        fallback = fallback or face
    if fallback is not None:
        return fallback
    raise TableError(f"{split_path} holds no real face to show the augmentations on")


def _steps(compose) -> list[tuple[str, Any]]:
    """The individual augmentations of a Compose, OneOf alternatives listed one by one."""
    steps = []
    for transform in getattr(compose, "transforms", []):
        children = getattr(transform, "transforms", None)
        for t in children if children is not None else [transform]:
            name = type(t).__name__
            if name not in _NOT_A_STEP:
                steps.append((name, t))
    return steps


def _displayable(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    image = image.astype(float)
    return (image - image.min()) / max(float(image.max() - image.min()), 1e-12)


def self_blend_examples(
    crop: np.ndarray, landmarks: np.ndarray | None, input_size: int, compose: Any, seed: int
) -> list[tuple[str, np.ndarray]]:
    """The sbi setup's panels: self-blended fakes of ``crop`` beside their masks (letterboxed),
    the last one also through the setup's chain ``compose``."""
    if landmarks is None:
        log.warning("the split's real faces have no landmarks: the figure shows no self-blended example")
        return []
    panels = []
    blender = SelfBlender()
    draws = 3
    for draw in range(draws):
        blended = blender(crop, landmarks, np.random.default_rng([seed, draw]))
        mask = np.repeat((blended.mask[..., None] * 255 + 0.5).astype(np.uint8), 3, axis=2)
        image = letterbox(blended.image, input_size)
        title = f"SBI {draw + 1}"
        if draw == draws - 1 and compose is not None:
            compose.set_random_seed(seed)
            image, title = compose(image=image)["image"], f"SBI {draw + 1} + chain"
        panels += [(f"SBI {draw + 1}: mask", letterbox(mask, input_size)), (title, image)]
    return panels


def augmentation_examples(
    jpeg: bytes, setups: Sequence[str], input_size: int, params: dict[str, Any], seed: int = 0,
    landmarks: np.ndarray | None = None,
) -> "Figure":
    """One real face letterboxed, under each augmentation step forced on, then one draw of each
    setup (a setup with example panels of its own, as sbi, shows those; they need the face's
    ``landmarks`` in crop pixels)."""
    import albumentations as A

    plt = _pyplot()
    crop = decode_jpeg(jpeg)
    source = letterbox(crop, input_size)
    panels = [("Source (letterboxed)", source)]
    seen = set()
    composes = {setup: build_augmentation(setup, input_size, params, seed=seed) for setup in setups}
    for setup, compose in composes.items():
        for name, transform in _steps(compose):
            if name in seen:
                continue
            seen.add(name)
            forced = copy.deepcopy(transform)
            forced.p = 1.0  # show what the step does, not whether it fired
            panels.append((name, A.Compose([forced], seed=seed)(image=source)["image"]))
    for setup, compose in composes.items():
        examples = registry.AUGMENTATION_SETUPS[setup].examples
        if examples is not None:
            panels += registry.resolve(examples)(crop, landmarks, input_size, compose, seed)
        elif compose is not None:
            compose.set_random_seed(seed)
            panels.append((f"{setup_label(setup)}: one draw", compose(image=source)["image"]))
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.8 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image) in zip(axes.ravel(), panels):
        ax.imshow(_displayable(image))
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"Augmentations on a {input_size} px letterboxed real face (steps forced on; last row: whole setups)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- Fig. 2.13-2.15


def loss_curves(histories: dict[str, pd.DataFrame], column: str, setup: str,
                validation: dict[str, Any] | None = None) -> "Figure":
    """Loss per epoch per model (``column`` train_loss or val_loss); NaN epochs are skipped and said.

    ``validation`` (config.validation_source) names the validation data in the val_loss title.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for model, history in histories.items():
        values = history[column].astype(float)
        finite = np.isfinite(values)
        label = display_name(model)
        if not finite.all():
            label += f" ({int((~finite).sum())} NaN epochs left out)"
        ax.plot(history["epoch"][finite], values[finite], marker="o", markersize=3, label=label)
    which = "Train" if column == "train_loss" else f"Validation ({catalog.short_validation(validation)})"
    ax.set_title(f"{which} loss per epoch, setup: {setup_label(setup)}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss (per face)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def precision_epoch_time(histories: dict[str, pd.DataFrame], batch_sizes: dict[str, int], model: str) -> "Figure":
    """Seconds per epoch, bars grouped by epoch, one colour per precision."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    width = 0.8 / max(len(histories), 1)
    for i, (precision, history) in enumerate(histories.items()):
        x = history["epoch"].to_numpy(dtype=float) + (i - (len(histories) - 1) / 2) * width
        total = float(history["seconds"].sum())
        bars = ax.bar(x, history["seconds"], width, label=f"{precision.upper()} (batch {batch_sizes[precision]}, total {total / 60:.1f} min)")
        _bar_labels(ax, bars, "{:.0f}")
    longest = max(float(h["seconds"].max()) for h in histories.values())
    ax.set_ylim(0, 1.35 * longest)  # room for the legend above the bars
    ax.set_title(f"Training time per epoch of {display_name(model)}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("seconds per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- Fig. 3.1-3.7, 3.10


def eer_curve(run: dict[str, Any], validation: dict[str, Any] | None = None) -> "Figure":
    """FPR and FNR against the threshold for one run, the crossing (EER) marked."""
    plt = _pyplot()
    roc = run["roc"]
    thresholds = np.clip(np.asarray(roc["thresholds"], dtype=float), 0.0, 1.0)
    fpr = np.asarray(roc["fpr"], dtype=float)
    fnr = 1.0 - np.asarray(roc["tpr"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(thresholds, fpr, label="false positive rate (reals called fake)")
    ax.plot(thresholds, fnr, label="false negative rate (fakes called real)")
    ax.plot([run["eer_threshold"]], [run["eer"]], "ko", zorder=5)
    ax.annotate(f"EER {run['eer']:.3f} at threshold {run['eer_threshold']:.3f}", (run["eer_threshold"], run["eer"]),
                xytext=(10, 10), textcoords="offset points", fontsize=8)
    ax.axvline(run["validation_threshold"], color="grey", linestyle="--", linewidth=1,
               label=f"validation EER threshold {run['validation_threshold']:.3f} ({catalog.short_validation(validation)})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold on the video's mean fake confidence")
    ax.set_ylabel("rate")
    ax.set_title(f"Equal error rate: {display_name(run['model'])}, {setup_label(run['aug'])} ({run['testset']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def threshold_bars(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str],
                   validation: dict[str, Any] | None = None) -> "Figure":
    """EER thresholds of each model's best run: the test set's own and the validation one."""
    plt = _pyplot()
    best = best_setups(runs, models, setups)
    chosen = [run_of(runs, m, best[m]) for m in models]
    x = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(models) + 2), 4.2))
    for offset, key, kind in ((-0.2, "eer_threshold", "test_eer"), (0.2, "validation_threshold", "validation")):
        bars = ax.bar(x + offset, [r[key] for r in chosen], 0.4, label=threshold_description(kind, validation))
        _bar_labels(ax, bars)
    ax.set_xticks(x, [f"{display_name(m)}\n({best[m]})" for m in models], fontsize=8)
    ax.set_ylabel("threshold (video fake confidence)")
    ax.set_ylim(0, 1.1)
    ax.set_title("EER thresholds of each model's best setup (lowest DFDC log loss)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def logloss_bars(runs: Sequence[dict[str, Any]], models: Sequence[str], setup: str) -> "Figure":
    """DFDC video log loss of every model under one setup."""
    plt = _pyplot()
    values = [run_of(runs, m, setup)["log_loss"] for m in models]
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(models) + 2), 4.2))
    bars = ax.bar([display_name(m) for m in models], values, color="tab:blue")
    _bar_labels(ax, bars, "{:.4f}")
    ax.axhline(math.log(2), color="grey", linestyle="--", linewidth=1, label="every video scored 0.5 (log 2)")
    ax.set_ylabel("video log loss (lower is better)")
    ax.set_title(f"Video log loss on the DFDC test set, setup: {setup_label(setup)}")
    ax.tick_params(axis="x", labelsize=8, rotation=20)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def roc_curves(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str]) -> "Figure":
    """ROC of each model's best setup, AUC in the legend."""
    plt = _pyplot()
    best = best_setups(runs, models, setups)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for model in models:
        run = run_of(runs, model, best[model])
        ax.plot(run["roc"]["fpr"], run["roc"]["tpr"], label=f"{display_name(model)} ({best[model]}), AUC {run['auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (reals called fake)")
    ax.set_ylabel("true positive rate (fakes called fake)")
    ax.set_title("ROC of each model's best setup, DFDC test set")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def f1_bars(runs: Sequence[dict[str, Any]], models: Sequence[str], setups: Sequence[str],
            validation: dict[str, Any] | None = None) -> "Figure":
    """F1 of each model's best setup (by F1 at the test set's EER threshold), at both thresholds."""
    plt = _pyplot()
    best = best_setups(runs, models, setups, metric="f1_test_eer", lower_is_better=False)
    chosen = [run_of(runs, m, best[m]) for m in models]
    x = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(models) + 2), 4.2))
    for offset, kind in ((-0.2, "test_eer"), (0.2, "validation")):
        bars = ax.bar(x + offset, [r["at_threshold"][kind]["f1"] for r in chosen], 0.4, label=f"at {threshold_description(kind, validation)}")
        _bar_labels(ax, bars)
    ax.set_xticks(x, [f"{display_name(m)}\n({best[m]})" for m in models], fontsize=8)
    ax.set_ylabel("F1 (fake is positive; higher is better)")
    ax.set_ylim(0, 1.15)
    ax.set_title(f"F1 of each model's best setup, {chosen[0]['testset']}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- Fig. 3.8, 3.9, 3.11, 3.12


def _run_key(path: str | os.PathLike) -> tuple[str, str]:
    """(model, aug) of ``results/predictions/{testset}/{model}/{aug}[.faces].parquet``."""
    path = Path(path)
    return path.parent.name, path.name.removesuffix(".parquet").removesuffix(".faces")


def misclassified_examples(
    videos: pd.DataFrame, face_scores: pd.DataFrame, threshold: float, label: str, limit: int
) -> pd.DataFrame:
    """The most confidently misclassified ``label`` videos, each with its most wrong face.

    Columns: video_id, video_score, face_id, face_score. Fakes are wrong below the threshold,
    reals at or above it (the metrics' convention); the worst come first.
    """
    is_fake = label == "fake"
    scored = videos[(videos["label"] == (1 if is_fake else 0)) & videos["score"].notna()]
    wrong = scored[scored["score"] < threshold] if is_fake else scored[scored["score"] >= threshold]
    wrong = wrong.sort_values(["score", "video_id"], ascending=[is_fake, True])
    faces = face_scores[face_scores["video_id"].isin(wrong["video_id"])]
    if faces.empty:
        return pd.DataFrame(columns=["video_id", "video_score", "face_id", "face_score"])
    pick = faces["score"].groupby(faces["video_id"]).idxmin() if is_fake else faces["score"].groupby(faces["video_id"]).idxmax()
    worst_face = faces.loc[pick.to_numpy(), ["video_id", "face_id", "score"]].rename(columns={"score": "face_score"})
    examples = wrong[["video_id", "score"]].rename(columns={"score": "video_score"}).merge(worst_face, on="video_id")
    return examples.head(limit).reset_index(drop=True)


def read_crops(faces_paths: Sequence[str | os.PathLike], face_ids: Sequence[str]) -> dict[str, bytes]:
    """JPEG bytes of ``face_ids`` from faces Parquet files, reading only those rows."""
    import pyarrow.parquet as pq

    wanted = set(face_ids)
    crops: dict[str, bytes] = {}
    if not wanted:
        return crops
    for path in faces_paths:
        table = pq.read_table(path, columns=["face_id", "jpeg"], filters=[("face_id", "in", wanted)])
        crops.update(zip(table.column("face_id").to_pylist(), table.column("jpeg").to_pylist()))
    return crops


def gallery(examples: pd.DataFrame, crops: dict[str, bytes], title: str, empty_note: str) -> "Figure":
    """Face crops with their video and face scores; a note panel when there is nothing to show."""
    plt = _pyplot()
    if examples.empty:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.axis("off")
        ax.text(0.5, 0.5, empty_note, ha="center", va="center", wrap=True, fontsize=10)
        ax.set_title(title, fontsize=9)
        return fig
    ncols = min(4, len(examples))
    nrows = math.ceil(len(examples) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.7 * ncols, 3.1 * nrows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), examples.itertuples(index=False)):
        data = crops.get(row.face_id)
        if data is None:
            ax.text(0.5, 0.5, f"crop {row.face_id}\nnot in the faces files", ha="center", va="center", fontsize=7)
        else:
            ax.imshow(decode_jpeg(data))
        video = row.video_id if len(row.video_id) <= 28 else "..." + row.video_id[-25:]
        ax.set_title(f"{video}\nvideo {row.video_score:.3f}, face {row.face_score:.3f}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def misclassified_gallery(
    runs: Sequence[dict[str, Any]],
    video_paths: Sequence[str | os.PathLike],
    face_score_paths: Sequence[str | os.PathLike],
    faces_paths: Sequence[str | os.PathLike],
    setups: Sequence[str],
    label: str,
    select_by: str = "log_loss",
    limit: int = 12,
) -> "Figure":
    """Misclassified ``label`` videos of the best run (by ``select_by``: ``log_loss`` lowest,
    anything else highest), at the test set's EER threshold."""
    lower = select_by == "log_loss"
    run = best_run_overall(runs, setups, metric=select_by, lower_is_better=lower)
    key = (run["model"], run["aug"])
    video_path = {_run_key(p): p for p in video_paths}.get(key)
    face_path = {_run_key(p): p for p in face_score_paths}.get(key)
    if video_path is None or face_path is None:
        raise TableError(f"no predictions for the best run {key[0]}/{key[1]} among the inputs")
    threshold = float(run["eer_threshold"])
    videos = pd.read_parquet(video_path, columns=["video_id", "label", "score"])
    face_scores = pd.read_parquet(face_path, columns=["video_id", "face_id", "score"])
    examples = misclassified_examples(videos, face_scores, threshold, label, limit)
    crops = read_crops(faces_paths, list(examples["face_id"]))
    other = "real" if label == "fake" else "fake"
    criterion = SELECTION_LABELS.get(select_by, f"{'lowest' if lower else 'highest'} {select_by}")
    title = (
        f"{label.capitalize()} videos of {run['testset']} called {other} by {display_name(run['model'])}, "
        f"{setup_label(run['aug'])} (best run: {criterion})\n"
        f"threshold {threshold:.3f} = {THRESHOLD_KINDS['test_eer']}; most confident mistakes first, "
        f"each with its most {other}-looking face"
    )
    note = f"No {label} video was misclassified at threshold {threshold:.3f}."
    return gallery(examples, crops, title, note)


# ---------------------------------------------------------------- beyond the thesis (3.3)


def generalisation_heatmap(data: pd.DataFrame, testsets: Sequence[str],
                           home_testsets: dict[str, str] | None = None) -> "Figure":
    """The generalisation table as a heatmap (AUC 0.5 = chance ... 1), each cell annotated; a
    training set's own test set (``home_testsets``, italic in the table) is outlined.

    The scale starts at chance, or lower where a cell is below chance (a run that does worse than
    chance on another source is a finding, not a colour clipped to 0.5's)."""
    plt = _pyplot()
    values = data[list(testsets)].to_numpy(dtype=float)
    labels = [f"{t} / {n}" for t, n in zip(data["trainset"], data["name"])]
    fig, ax = plt.subplots(figsize=(max(7.0, 4.0 + 1.3 * len(testsets)), 1.8 + 0.38 * len(labels)))
    lowest = min(0.5, math.floor(values.min() * 10) / 10)
    image = ax.imshow(values, cmap="viridis", vmin=lowest, vmax=1.0, aspect="auto")
    ax.set_xticks(np.arange(len(testsets)), list(testsets))
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on / model (setup)")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=7,
                    color="black" if image.norm(values[i, j]) > 0.6 else "white")
    home_testsets = home_testsets or {}
    for i, trainset in enumerate(data["trainset"]):
        if home_testsets.get(trainset) in testsets:
            j = list(testsets).index(home_testsets[trainset])
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    fig.colorbar(image, ax=ax, label="ROC-AUC (0.5: chance)")
    title = "Generalisation: ROC-AUC of every run on every test set"
    ax.set_title(title + ("\n(outlined: the training set's own test set)" if home_testsets else ""), fontsize=10)
    fig.tight_layout()
    return fig


def add_ensemble_rocs(fig: "Figure", ensembles: Sequence[dict[str, Any]], linestyle: str = "--") -> "Figure":
    """Draw each ensemble's ROC (dashed) on the figure's first axes and refresh the legend; with
    ``linestyle`` ``-.``, the baselines' (config ``baselines``: detectors not trained by the pipeline)."""
    if not ensembles:
        return fig
    ax = fig.axes[0]
    for record in ensembles:
        ax.plot(record["roc"]["fpr"], record["roc"]["tpr"], linestyle=linestyle, linewidth=1.6,
                label=f"{run_label(record)}, AUC {record['auc']:.3f}")
    ax.legend(fontsize=8, loc="lower right")
    return fig


# ---------------------------------------------------------------- drawings named in the registry
# Each takes a rule's inputs (name -> paths) and settings and returns its figures by output name.


def draw_augmentation_examples(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    face = first_real_face(inputs["split"][0])
    log.info("augmentation examples on face %s", face.face_id)
    fig = augmentation_examples(
        face.jpeg, settings["setups"], settings["input_size"], settings["augmentations"], settings.get("seed", 0),
        face.landmarks,
    )
    return {"png": fig}


def draw_losses(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    histories = {m: read_history(p) for m, p in zip(settings["models"], inputs["histories"])}
    return {
        name: loss_curves(histories, column, settings["setup"], settings.get("validation"))
        for name, column in (("train_loss", "train_loss"), ("validation_loss", "val_loss"))
    }


def draw_precision_epoch_time(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    study = settings["precision_study"]
    histories = {p: read_history(path) for p, path in zip(study["runs"], inputs["histories"])}
    return {"png": precision_epoch_time(histories, study["runs"], study["model"])}


def draw_eer(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    return {"png": eer_curve(best_run_overall(read_metrics(inputs["metrics"]), settings["setups"]), settings.get("validation"))}


def draw_thresholds(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    return {"png": threshold_bars(read_metrics(inputs["metrics"]), settings["models"], settings["setups"],
                                  settings.get("validation"))}


def draw_logloss(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    return {"png": logloss_bars(read_metrics(inputs["metrics"]), settings["models"], settings["setup"])}


def draw_roc(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    fig = roc_curves(read_metrics(inputs["metrics"]), settings["models"], settings["setups"])
    fig = add_ensemble_rocs(fig, read_metrics(inputs.get("ensembles", [])))
    return {"png": add_ensemble_rocs(fig, read_metrics(inputs.get("baselines", [])), linestyle="-.")}


def draw_f1(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    return {"png": f1_bars(read_metrics(inputs["metrics"]), settings["models"], settings["setups"], settings.get("validation"))}


def draw_misclassified(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    fig = misclassified_gallery(
        read_metrics(inputs["metrics"]), inputs["videos"], inputs["face_scores"], inputs["faces"],
        settings["setups"], settings["label"], settings["select_by"], settings.get("limit", 12),
    )
    return {"png": fig}


# ---------------------------------------------------------------- robustness suite


def severity_curves(data: pd.DataFrame, metric: str = "auc") -> "Figure":
    """One panel per perturbation family: the metric (``auc`` or ``logloss``) against severity,
    the family's parameter on the x axis with ``clean`` at its identity, a line per test set
    and run; ``data`` is a robustness table (columns testset, run, clean, family_value...)."""
    plt = _pyplot()
    families: dict[str, list[tuple[float, str]]] = {}
    for column in data.columns:
        if column not in ("testset", "run", CLEAN):
            family, value = registry.parse_perturbation(column)
            families.setdefault(family, []).append((value, column))
    if not families:
        raise TableError("the robustness table has no perturbation column")
    title, _, better = METRICS[metric]
    fig, axes = plt.subplots(1, len(families), figsize=(3.4 * len(families) + 0.6, 3.6), squeeze=False, sharey=True)
    for ax, (family, columns) in zip(axes[0], families.items()):
        entry = perturb.family_of(family)
        columns = sorted(columns, key=lambda item: entry.severity(item[0]))
        xs = [entry.severity(entry.identity)] + [entry.severity(value) for value, _ in columns]
        for _, row in data.iterrows():
            ys = [row[CLEAN]] + [row[column] for _, column in columns]
            ax.plot(xs, ys, marker="o", label=f"{row['run']} ({row['testset']})")
        ax.set_xticks(xs, [CLEAN] + [registry.format_value(value) for value, _ in columns], fontsize=8)
        ax.set_xlabel(entry.parameter, fontsize=8)
        ax.set_title(family, fontsize=9)
        ax.grid(alpha=0.3)
        if metric == "auc":
            ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[0][0].set_ylabel(f"video {title} ({better} is better)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    rows = math.ceil(len(labels) / 2)
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, min(0.5, 0.05 + 0.05 * rows), 1, 1))
    return fig


def draw_robustness(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    """AUC against severity, from the robustness_auc table."""
    return {"png": severity_curves(pd.read_csv(inputs["table"][0]), settings.get("metric", "auc"))}
def draw_generalisation(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, "Figure"]:
    table = build_generalisation(inputs, settings)
    matrix = settings["generalisation"]
    return {"png": generalisation_heatmap(table.data, matrix["testsets"], matrix.get("home_testsets"))}


def make_figures(kind: str, inputs: dict[str, list[str]], settings: dict[str, Any], outputs: dict[str, str]) -> list[Path]:
    """Draw the figure(s) of ``kind`` (a key of :data:`facesleuth.report.catalog.DRAWINGS`) from a rule's
    inputs and params and write ``outputs``.

    ``outputs`` maps output names to paths: ``png`` for single figures, ``train_loss`` and
    ``validation_loss`` for ``losses``.
    """
    if kind not in catalog.DRAWINGS:
        raise ValueError(f"unknown figure kind {kind!r} (known: {sorted(catalog.DRAWINGS)})")
    figures = registry.resolve(catalog.DRAWINGS[kind])(inputs, settings)
    written = []
    for name, fig in figures.items():
        written.append(save_figure(fig, outputs[name]))
        log.info("wrote %s (%s) to %s", name, kind, outputs[name])
    return written
