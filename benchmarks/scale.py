#!/usr/bin/env python
"""The study at its real size, rehearsed: planning, manifests, split, input pipeline, memory, prediction.

Lays out the thesis's datasets at full size (``facesleuth.demo.rehearsal``: 119,197 DFDC training
videos in 50 parts with DFDC's ``metadata.json``, 4,000 validation and 5,000 test videos with
``labels.csv``, 6,529 Celeb-DF-v2 videos; every video a symbolic link to a DFDC sample) and
face files built from real face crops of the samples, then measures, each step in its own
process where its memory matters (peak RSS from ``wait4``, CPU time beside wall time, since the
machine may be shared):

- ``dry-run``: ``snakemake -n`` with ``config/thesis.yaml`` pointed at the layout;
- ``manifests``: the manifest rule's adapter on each dataset, seconds per 10,000 videos;
- ``splits``: the splits rule's steps (as ``workflow/scripts/splits.py`` runs them) on the
  train-flow faces of ``--splits-fraction`` of DFDC train (real JPEG bytes), and its choice alone
  (``make_splits``, no JPEG bytes) on all 1.19 M face rows;
- ``pipeline``: the training input pipeline (``FaceDataset`` -> ``make_loader``) at 224 px, for
  each augmentation setup with 1 and 2 workers: images/s per worker and per CPU-second;
- ``memory``: a training process's data side (train and validation datasets, DataLoader with
  ``--workers``) over two epochs of a split of ``--memory-fraction`` of the 415,405 faces,
  without a model (its memory is the model's, separate), proportional set size of the process
  and its workers sampled every second;
- ``predict``: faces/s per core of ``predict.predict_faces`` on a sample of test-flow faces,
  extrapolated to 50 faces x 5,000 videos.

Example (full size; about 20 GB of disk for the face files at the default fractions)::

    python benchmarks/scale.py --work /scratch/rehearsal --json scale.json
    python benchmarks/scale.py --work /tmp/r --fraction 0.005 --steps manifests dry-run   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Imports are local to each step on purpose: a measured child process must load only what the
# rule it stands for loads (the manifest rule does not import torch), or its peak memory and
# start-up time would be another rule's.

STEPS = ("layout", "manifests", "dry-run", "splits", "pipeline", "memory", "predict")
GiB = 2**30


def find_samples() -> Path:
    folder = Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared" / "data" / "samples")
    if not (folder / "dfdc").is_dir():
        raise SystemExit(f"sample media not found in {folder}: set FACESLEUTH_SAMPLES (see the README's Tests section)")
    return folder


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


# A small launcher forks and waits for the measured command: the kernel keeps a process's peak
# RSS across exec, so a command started straight from this (larger) process would report at
# least this process's size.
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"code": os.waitstatus_to_exitcode(status), "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_rss_kib": usage.ru_maxrss}, out)
"""


def run_measured(argv: list[str], **kwargs) -> dict:
    """Run ``argv``; wall and CPU seconds and peak RSS of that process (and its waited-for children)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", LAUNCHER, report.name, *map(str, argv)], check=True, **kwargs)
        wall = time.perf_counter() - started
        usage = json.loads(Path(report.name).read_text())
    if usage["code"]:
        raise SystemExit(f"{' '.join(map(str, argv))} failed with exit code {usage['code']}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage["cpu_s"], 2),
            "peak_rss_gib": round(usage["peak_rss_kib"] * 1024 / GiB, 3), "load": load()}


def child(step: str, *args: str) -> list[str]:
    return [sys.executable, __file__, "--child", step, *args]


# ---------------------------------------------------------------- steps


def step_layout(work: Path, size, samples: Path) -> dict:
    from facesleuth.demo.rehearsal import lay_out_study

    started, cpu = time.perf_counter(), time.process_time()
    datasets = lay_out_study(work / "datasets", samples, size)
    (work / "datasets.json").write_text(json.dumps(datasets, indent=1))
    return {"datasets": {k: v["videos"] for k, v in datasets.items()}, "wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(time.process_time() - cpu, 2), "load": load()}


def datasets_of(work: Path) -> dict:
    path = work / "datasets.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run the layout step first")
    return json.loads(path.read_text())


def step_manifests(work: Path) -> dict:
    results = {}
    for name in datasets_of(work):
        out = work / "manifests" / f"{name}.parquet"
        figures = run_measured(child("manifest", str(work), name, str(out)))
        videos = datasets_of(work)[name]["videos"]
        figures.update(videos=videos, s_per_10k_videos=round(figures["wall_s"] * 1e4 / videos, 2),
                       cpu_s_per_10k_videos=round(figures["cpu_s"] * 1e4 / videos, 2))
        results[name] = figures
        print(f"manifest {name}: {videos} videos, {figures['wall_s']} s wall ({figures['cpu_s']} s CPU), "
              f"{figures['s_per_10k_videos']} s per 10k videos, peak RSS {figures['peak_rss_gib']} GiB, {figures['load']}", flush=True)
    return results


def child_manifest(work: str, name: str, out: str) -> None:
    from facesleuth.manifests import build_manifest, write_manifest

    dataset = datasets_of(Path(work))[name]
    write_manifest(build_manifest(name, {k: v for k, v in dataset.items() if k != "videos"}), out)


def thesis_config(work: Path) -> Path:
    """config/thesis.yaml with the dataset roots pointed at the layout."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())
    for name, dataset in datasets_of(work).items():
        if name in config["datasets"]:
            config["datasets"][name]["root"] = dataset["root"]
    path = work / "thesis.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def step_dry_run(work: Path) -> dict:
    config = thesis_config(work)
    workdir = work / "workdir"
    workdir.mkdir(exist_ok=True)
    log = work / "dry_run.log"
    with open(log, "w") as out:
        figures = run_measured(["snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                                "--configfile", str(config), "--cores", "1", "--quiet", "rules"],
                               stdout=out, stderr=subprocess.STDOUT)
    text = log.read_text()
    jobs = [line.split() for line in text.splitlines() if line.strip().startswith("total")]
    figures["jobs"] = int(jobs[-1][1]) if jobs and len(jobs[-1]) > 1 and jobs[-1][1].isdigit() else None
    print(f"snakemake -n: {figures['wall_s']} s wall ({figures['cpu_s']} s CPU), peak RSS {figures['peak_rss_gib']} GiB, "
          f"{figures['jobs']} jobs, {figures['load']}", flush=True)
    return figures


def crops_path(work: Path) -> Path:
    return work / "crops.parquet"


def face_crops(work: Path, samples: Path, count: int) -> list[bytes]:
    """The pool of real crops, extracted once and kept in the work folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from facesleuth.demo.rehearsal import sample_face_crops

    path = crops_path(work)
    if path.is_file():
        crops = pq.read_table(path).column("jpeg").to_pylist()
        if len(crops) >= count:
            return crops[:count]
    crops = sample_face_crops(samples, count, frames_per_video=20)
    pq.write_table(pa.table({"jpeg": pa.array(crops, type=pa.binary())}), path)
    return crops


def step_splits(work: Path, samples: Path, fraction: float, pool: int) -> dict:
    import pandas as pd
    import pyarrow.parquet as pq

    from facesleuth.demo.rehearsal import write_train_flow_chunks

    manifest_path = work / "manifests" / "dfdc_train.parquet"
    if not manifest_path.is_file():
        raise SystemExit(f"{manifest_path} not found: run the manifests step first")
    manifest = pq.read_table(manifest_path).to_pandas()
    # a fraction of the parts' videos, whole originals with their fakes, as a smaller DFDC would be
    family = manifest["original"].where(manifest["original"].notna(), manifest["video_id"])
    families = pd.Series(family.unique()).sample(frac=fraction, random_state=0)
    subset = manifest[family.isin(set(families))].reset_index(drop=True)
    faces_dir = work / "faces" / "dfdc_train"
    subset_manifest = work / "manifests" / "dfdc_train.subset.parquet"
    subset.to_parquet(subset_manifest)
    written = write_train_flow_chunks(faces_dir, subset, face_crops(work, samples, pool), chunks=50)
    out = work / "splits" / "dfdc_train.parquet"
    figures = run_measured(child("splits", str(faces_dir), str(subset_manifest), str(out)))
    split_bytes = pq.read_table(out, columns=["jpeg"]).column("jpeg")
    jpeg_out = sum(chunk.buffers()[2].size for chunk in split_bytes.chunks)
    figures.update(videos=len(subset), faces_in=written["faces"], jpeg_in_gib=round(written["jpeg_bytes"] / GiB, 3),
                   faces_out=len(split_bytes), jpeg_out_gib=round(jpeg_out / GiB, 3),
                   peak_rss_over_jpeg_out=round(figures["peak_rss_gib"] * GiB / jpeg_out, 2))
    print(f"splits rule on {fraction:g} of DFDC train ({len(subset)} videos, {written['faces']} faces in, "
          f"{figures['faces_out']} out, {figures['jpeg_out_gib']} GiB JPEG out): {figures['wall_s']} s wall "
          f"({figures['cpu_s']} s CPU), peak RSS {figures['peak_rss_gib']} GiB = {figures['peak_rss_over_jpeg_out']} x "
          f"the JPEG bytes written, {figures['load']}", flush=True)
    meta = run_measured(child("choose-split", str(manifest_path)))
    meta["faces_in"] = len(manifest) * 10
    print(f"make_splits alone on all {meta['faces_in']} face rows (no JPEG bytes): {meta['wall_s']} s wall "
          f"({meta['cpu_s']} s CPU), peak RSS {meta['peak_rss_gib']} GiB, {meta['load']}", flush=True)
    return {"rule": figures, "choice_full_size": meta}


def child_splits(faces_dir: str, manifest: str, out: str) -> None:
    """Exactly the steps of workflow/scripts/splits.py."""
    import yaml

    from facesleuth.io import read_parquets, write_csv
    from facesleuth.train.splits import make_splits, write_split

    settings = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())["splits"]
    faces_paths = sorted(str(p) for p in Path(faces_dir).glob("[0-9][0-9][0-9].parquet"))
    status_paths = sorted(str(p) for p in Path(faces_dir).glob("*.status.parquet"))
    faces = read_parquets(faces_paths, columns=["dataset", "video_id", "face_id", "label"])
    status = read_parquets(status_paths)
    manifests = read_parquets([manifest])
    split, summary = make_splits(faces, status, settings, manifest_df=manifests)
    write_split(split, faces_paths, out)
    write_csv(summary, Path(out).with_suffix(".summary.csv"))


def child_choose_split(manifest: str) -> None:
    import pyarrow.parquet as pq
    import yaml

    from facesleuth.demo.rehearsal import train_flow_tables
    from facesleuth.train.splits import make_splits

    settings = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())["splits"]
    manifest_df = pq.read_table(manifest).to_pandas()
    faces, status = train_flow_tables(manifest_df, 10)
    faces = faces.select(["dataset", "video_id", "face_id", "label"]).to_pandas()
    started, cpu = time.perf_counter(), time.process_time()
    split, _ = make_splits(faces, status.to_pandas(), settings, manifest_df=manifest_df)
    print(f"  make_splits itself: {time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, "
          f"{len(split)} faces chosen", flush=True)


def split_for(work: Path, samples: Path, fraction: float, pool: int) -> tuple[Path, dict]:
    """A splits file of ``fraction`` of the thesis's 415,405 faces (made once)."""
    from facesleuth.demo.rehearsal import StudySize, write_study_sized_split

    size = StudySize.thesis().scaled(fraction) if fraction < 1 else StudySize.thesis()
    path = work / "splits" / f"rehearsal_{size.split_faces}.parquet"
    info = path.with_suffix(".json")
    if not info.is_file():
        totals = write_study_sized_split(path, face_crops(work, samples, pool), size)
        info.write_text(json.dumps(totals))
    return path, json.loads(info.read_text())


def step_pipeline(work: Path, samples: Path, pool: int, images: int, setups: list[str], workers: list[int]) -> list[dict]:
    split, _ = split_for(work, samples, 0.05, pool)
    rows = []
    for setup in setups:
        for count in workers:
            out = work / f"pipeline_{setup}_{count}.json"
            run_measured(child("pipeline", str(split), setup, str(count), str(images), str(out)))
            row = json.loads(out.read_text())
            rows.append(row)
            print(f"input pipeline {setup:>7}, {count} worker(s): {row['images_per_s']:7.1f} img/s, "
                  f"{row['images_per_s_per_worker']:7.1f} per worker, {row['images_per_cpu_s']:7.1f} per CPU-second "
                  f"of the workers, {row['load']}", flush=True)
    return rows


def _augmentations() -> dict:
    import yaml

    return yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())["augmentations"]


def child_pipeline(split: str, setup: str, workers: str, images: str, out: str) -> None:
    import psutil
    import torch

    from facesleuth.train.augment import build_augmentation
    from facesleuth.train.data import EpochBatchSampler, FaceDataset, make_loader

    torch.set_num_threads(1)
    workers_n, batch = int(workers), 32
    dataset = FaceDataset.from_split(split, "train", 224, build_augmentation(setup, 224, _augmentations()), seed=0)
    sampler = EpochBatchSampler(len(dataset), batch, shuffle=True, drop_last=True, seed=0)
    # pinned memory needs a GPU; here the DataLoader collates into ordinary memory
    loader = make_loader(dataset, batch_sampler=sampler, num_workers=workers_n, device="cpu", seed=0)
    me = psutil.Process()
    # The loop does nothing with the batches, so the workers never wait on it: steady state from
    # the first batch of each worker on.
    warm = workers_n + 1
    timed = 0
    started = None
    cpu_start = {}
    for step, (batch_images, _) in enumerate(loader, start=1):
        if step == warm:
            started = time.perf_counter()
            cpu_start = {p.pid: sum(p.cpu_times()[:2]) for p in me.children()}
            main_cpu = time.process_time()
        elif step > warm:
            timed += len(batch_images)
            if timed >= int(images):
                # read while the workers live: leaving the loop shuts them down
                wall = time.perf_counter() - started
                cpu = sum(sum(p.cpu_times()[:2]) - cpu_start.get(p.pid, 0.0) for p in me.children())
                break
    if workers_n == 0:
        cpu = time.process_time() - main_cpu
    Path(out).write_text(json.dumps({
        "setup": setup, "workers": workers_n, "batch": batch, "size": 224, "images": timed,
        "images_per_s": round(timed / wall, 1), "images_per_s_per_worker": round(timed / wall / max(1, workers_n), 1),
        "images_per_cpu_s": round(timed / cpu, 1), "worker_cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
        "load": load(), "pin_memory": False}))


def step_memory(work: Path, samples: Path, fraction: float, pool: int, workers: int, setup: str) -> dict:
    split, totals = split_for(work, samples, fraction, pool)
    out = work / f"memory_{fraction:g}.json"
    figures = run_measured(child("memory", str(split), str(workers), setup, str(out)))
    result = json.loads(out.read_text())
    result.update(process=figures, split_faces=totals["faces"], split_jpeg_gib=round(totals["jpeg_bytes"] / GiB, 3),
                  peak_pss_over_jpeg=round(result["peak_pss_gib"] * GiB / totals["jpeg_bytes"], 2))
    print(f"training data side, {totals['faces']} faces ({result['split_jpeg_gib']} GiB JPEG), {workers} workers, "
          f"setup {setup}, 2 epochs: PSS at the end of epoch 1 / 2: {result['epoch_end_pss_gib']} GiB, peak "
          f"{result['peak_pss_gib']} GiB = {result['peak_pss_over_jpeg']} x the JPEG bytes; {figures['wall_s']} s, "
          f"{figures['load']}", flush=True)
    return result


def _pss(process) -> int:
    import psutil

    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def child_memory(split: str, workers: str, setup: str, out: str) -> None:
    """The data side of facesleuth.train.loop.train_run: both datasets, the epoch sampler, the loader."""
    import psutil
    import torch

    from facesleuth.train.augment import build_augmentation
    from facesleuth.train.data import EpochBatchSampler, FaceDataset, make_loader

    torch.set_num_threads(1)
    me = psutil.Process()
    samples_pss: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples_pss.append((time.perf_counter(), _pss(me)))
            stop.wait(1.0)

    started = time.perf_counter()
    threading.Thread(target=sample, daemon=True).start()
    train = FaceDataset.from_split(split, "train", 224, build_augmentation(setup, 224, _augmentations()), seed=0)
    val = FaceDataset.from_split(split, "val", 224, None)
    loaded = _pss(me)
    sampler = EpochBatchSampler(len(train), 64, shuffle=True, drop_last=True, seed=0)
    ends = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        train.set_epoch(epoch)
        for _ in make_loader(train, batch_sampler=sampler, num_workers=int(workers), device="cpu", seed=epoch):
            pass
        for _ in make_loader(val, 256, num_workers=int(workers), device="cpu"):
            pass
        ends.append(_pss(me))
    stop.set()
    peak = max(p for _, p in samples_pss) if samples_pss else 0
    Path(out).write_text(json.dumps({
        "workers": int(workers), "setup": setup, "after_load_pss_gib": round(loaded / GiB, 3),
        "epoch_end_pss_gib": [round(e / GiB, 3) for e in ends], "peak_pss_gib": round(max(peak, *ends) / GiB, 3),
        "pss_trace_gib": [(round(t - started, 1), round(p / GiB, 3)) for t, p in samples_pss[:: max(1, len(samples_pss) // 60)]],
        "load": load()}))


def step_predict(work: Path, samples: Path, pool: int, faces: int, model: str) -> dict:
    out = work / "predict.json"
    crops = face_crops(work, samples, pool)
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = work / "predict_faces.parquet"
    pq.write_table(pa.table({"jpeg": pa.array([crops[i % len(crops)] for i in range(faces)], type=pa.binary()),
                             "label": pa.array([0] * faces, type=pa.int8())}), path)
    run_measured(child("predict", str(path), model, str(out)))
    result = json.loads(out.read_text())
    total = 5000 * 50
    result.update(testset_faces=total, core_hours_for_dfdc_test=round(total / result["faces_per_cpu_s"] / 3600, 2))
    print(f"prediction ({model}, CPU, 1 thread, {faces} faces): {result['faces_per_s']} faces/s, "
          f"{result['faces_per_cpu_s']} per CPU-second; 50 faces x 5,000 videos = {total} faces -> "
          f"{result['core_hours_for_dfdc_test']} core-hours (extrapolated), {result['load']}", flush=True)
    return result


def child_predict(path: str, model_name: str, out: str) -> None:
    import pyarrow.parquet as pq
    import torch

    from facesleuth.train.models import build_model
    from facesleuth.evaluate.predict import predict_faces

    torch.set_num_threads(1)
    table = pq.read_table(path)
    model = build_model(model_name, pretrained=False, dropout=0.2).eval().to(memory_format=torch.channels_last)
    predict_faces(model, {"input_size": 224}, table.slice(0, 16), batch_size=16, num_workers=0)  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    predict_faces(model, {"input_size": 224}, table, batch_size=32, num_workers=0)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    Path(out).write_text(json.dumps({"model": model_name, "faces": table.num_rows, "faces_per_s": round(table.num_rows / wall, 2),
                                     "faces_per_cpu_s": round(table.num_rows / cpu, 2), "load": load()}))


CHILDREN = {"manifest": child_manifest, "splits": child_splits, "choose-split": child_choose_split,
            "pipeline": child_pipeline, "memory": child_memory, "predict": child_predict}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        CHILDREN[argv[1]](*argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the layout and face files (default: a temporary one)")
    parser.add_argument("--fraction", type=float, default=1.0, help="size of the layout, as a fraction of the study")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--splits-fraction", type=float, default=0.1, help="share of DFDC train whose faces (with JPEG bytes) the splits step writes")
    parser.add_argument("--memory-fraction", type=float, default=0.1, help="share of the 415,405-face split the memory step trains on")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of the memory step (training.num_workers)")
    parser.add_argument("--memory-setup", default="none", help="augmentation setup of the memory step")
    parser.add_argument("--pool", type=int, default=600, help="distinct real face crops to replicate")
    parser.add_argument("--images", type=int, default=512, help="images timed per input-pipeline measurement")
    parser.add_argument("--setups", nargs="+", default=["none", "default", "coarse", "grid"])
    parser.add_argument("--pipeline-workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--predict-faces", type=int, default=256)
    parser.add_argument("--predict-model", default="efb4_ns")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from facesleuth.demo.rehearsal import StudySize
    from facesleuth.runtime import machine_info

    samples = find_samples()
    size = StudySize.thesis() if args.fraction >= 1 else StudySize.thesis().scaled(args.fraction)
    temporary = None
    if args.work is None:
        temporary = tempfile.TemporaryDirectory(prefix="facesleuth-scale-")
        args.work = Path(temporary.name)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    print(f"# scale rehearsal at {args.fraction:g} of the study in {work} | {info['cpu']}, {info['cores']} cores | {load()}", flush=True)
    results: dict = {"fraction": args.fraction, "machine": info, "load_at_start": load()}
    for step in args.steps:
        if step == "layout":
            results["layout"] = step_layout(work, size, samples)
            print(f"layout: {results['layout']['datasets']} in {results['layout']['wall_s']} s, {results['layout']['load']}", flush=True)
        elif step == "manifests":
            results["manifests"] = step_manifests(work)
        elif step == "dry-run":
            results["dry_run"] = step_dry_run(work)
        elif step == "splits":
            results["splits"] = step_splits(work, samples, args.splits_fraction, args.pool)
        elif step == "pipeline":
            results["pipeline"] = step_pipeline(work, samples, args.pool, args.images, args.setups, args.pipeline_workers)
        elif step == "memory":
            results["memory"] = step_memory(work, samples, args.memory_fraction, args.pool, args.workers, args.memory_setup)
        elif step == "predict":
            results["predict"] = step_predict(work, samples, args.pool, args.predict_faces, args.predict_model)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if temporary is not None:
        temporary.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
