# Shared helpers: config validation, the model x augmentation grid, input functions.
import os
import re
import sys
from pathlib import Path

# Scripts and input functions import the package; make the checkout's src/ importable even
# where facesleuth is not installed (it normally is, with pip install -e .).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (scripts, conda environments, cluster jobs) import it from here too.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.getenv("PYTHONPATH")) if p))

from facesleuth.config import validate_config, ConfigError  # noqa: E402
from facesleuth.io import FACES_SCHEMA  # noqa: E402
from facesleuth.manifests import ManifestError, source_files  # noqa: E402
from facesleuth.runtime import chunk_names  # noqa: E402

try:
    validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None

DATASETS = config["datasets"]
MODELS = config["models"]
SETUPS = config["augmentation_setups"]
TESTSETS = config["evaluation"]["testsets"]
TRAINSET = "-".join(config["splits"]["train_datasets"])
PRECISIONS = ["fp16", "bf16", "fp32"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    testset="|".join(TESTSETS) if TESTSETS else "NO_TESTSET",
    chunk=r"\d{3}",
    trainset=re.escape(TRAINSET),
    model=r"[A-Za-z0-9_.]+",
    # a grid run is named after its setup; precision-study variants add -<precision>
    aug=r"(none|default|coarse|grid)(-(fp16|bf16|fp32))?",


def log_path(stage, name):
    return f"logs/{stage}/{name}.log"


def bench_path(stage, name):
    return f"benchmarks/{stage}/{name}.tsv"


# ---------------------------------------------------------------- demo and manifests


def demo_flag():
    return f"{config['demo']['out']}/demo.json"


def manifest_inputs(wildcards):
    """The demo must exist before its manifests are read; a real dataset's labels files are
    inputs, so editing them reruns its manifest (and a wrong root fails while planning)."""
    if config["demo"]["enabled"]:
        return [demo_flag()]
    try:
        return [str(path) for path in source_files(wildcards.dataset, DATASETS[wildcards.dataset])]
    except ManifestError as err:
        raise WorkflowError(str(err)) from None


# ---------------------------------------------------------------- faces


def chunks_of(dataset):
    return chunk_names(DATASETS[dataset]["chunks"])


def faces_files(dataset):
    return expand("results/faces/{dataset}/{chunk}.parquet", dataset=dataset, chunk=chunks_of(dataset))


def status_files(dataset):
    return expand("results/faces/{dataset}/{chunk}.status.parquet", dataset=dataset, chunk=chunks_of(dataset))


def extraction_params(wildcards):
    """Only the settings of the dataset's own flow, so changing the other flow reruns nothing.
    The faces table's columns are a parameter too: Snakemake reruns a script on changed
    params, not on changed package code, so faces cached before a column was added (e.g. the
    landmarks) are extracted again instead of lacking it."""
    flow = DATASETS[wildcards.dataset]["flow"]
    return {
        "faces_columns": FACES_SCHEMA.names,
        "flow": flow,
        "detection": config["extraction"]["detection"],
        "flow_settings": config["extraction"][f"{flow}_flow"],
        "chunks": DATASETS[wildcards.dataset]["chunks"],
    }


def dataset_faces(wildcards):
    return faces_files(wildcards.dataset)


def dataset_status(wildcards):
    return status_files(wildcards.dataset)


def testset_faces(wildcards):
    return faces_files(wildcards.testset)


def testset_status(wildcards):
    return status_files(wildcards.testset)


def extraction_summaries():
    return expand("results/faces/{dataset}/summary.csv", dataset=list(DATASETS))


# ---------------------------------------------------------------- splits and training


def split_faces(wildcards):
    return [f for name in config["splits"]["train_datasets"] for f in faces_files(name)]


def split_status(wildcards):
    return [f for name in config["splits"]["train_datasets"] for f in status_files(name)]


def run_settings(wildcards):
    """Training settings of one run: the grid's, or a precision-study variant's."""
    setup, _, precision = wildcards.aug.partition("-")
    settings = dict(config["training"])
    if precision:
        settings["precision"] = precision
        settings["batch_size"] = config["precision_study"]["runs"][precision]
    return {
        "model": wildcards.model,
        "setup": setup,
        "training": settings,
        "augmentations": config["augmentations"] if setup != "none" else {},
    }


def precision_run(precision):
    """Run folder name of the precision study at ``precision`` (the grid's run when identical)."""
    study = config["precision_study"]
    training = config["training"]
    if precision == training["precision"] and study["runs"][precision] == training["batch_size"]:
        return study["augmentation"]
    return f"{study['augmentation']}-{precision}"


def precision_runs():
    study = config.get("precision_study")
    if not study:
        return []
    return [f"results/models/{study['model']}/{precision_run(p)}" for p in study["runs"]]


def grid_runs():
    return expand("results/models/{model}/{aug}", model=MODELS, aug=SETUPS)


# ---------------------------------------------------------------- predictions and metrics


def metrics_files(testset, runs=None):
    runs = grid_runs() if runs is None else runs
    return [f"results/metrics/{testset}/{run.removeprefix('results/models/')}.json" for run in runs]


def prediction_files(testset, runs=None):
    runs = grid_runs() if runs is None else runs
    return [f"results/predictions/{testset}/{run.removeprefix('results/models/')}.parquet" for run in runs]


# ---------------------------------------------------------------- tables and figures
# Named after the thesis's tables and figures; each table is a CSV plus a Markdown copy.

TABLES = {
    "params": "Table 2.1",
    "precision": "Table 2.3",
    "dfdc_logloss": "Table 3.1",
    "dfdc_fake_errors_by_distractor": "Table 3.2",
    "dfdc_real_errors_by_distractor": "Table 3.3",
    "dfdc_fake_errors_by_augmenter": "Table 3.4",
    "dfdc_real_errors_by_augmenter": "Table 3.5",
    "celebdf_sensitivity_specificity": "Table 3.6",
    "celebdf_f1": "Table 3.7",
}

FIGURES = {
    "augmentation_examples": "Fig. 2.12",
    "train_loss": "Fig. 2.13",
    "validation_loss": "Fig. 2.14",
    "precision_epoch_time": "Fig. 2.15",
    "eer": "Fig. 3.1",
    "thresholds": "Fig. 3.2",
    "dfdc_logloss_none": "Fig. 3.3",
    "dfdc_logloss_default": "Fig. 3.4",
    "dfdc_logloss_grid": "Fig. 3.5",
    "dfdc_logloss_coarse": "Fig. 3.6",
    "dfdc_roc": "Fig. 3.7",
    "dfdc_misclassified_fake": "Fig. 3.8",
    "dfdc_misclassified_real": "Fig. 3.9",
    "celebdf_f1": "Fig. 3.10",
    "celebdf_misclassified_fake": "Fig. 3.11",
    "celebdf_misclassified_real": "Fig. 3.12",
}


def wanted_tables():
    """Tables whose inputs this config provides (no DFDC test set, no DFDC tables)."""
    evaluation = config["evaluation"]
    names = ["params"]
    if config.get("precision_study") and evaluation["dfdc_testset"]:
        names.append("precision")
    if evaluation["dfdc_testset"]:
        names += [n for n in TABLES if n.startswith("dfdc_")]
    if evaluation["celebdf_testset"]:
        names += [n for n in TABLES if n.startswith("celebdf_")]
    return names


def wanted_figures():
    evaluation = config["evaluation"]
    names = ["augmentation_examples", "train_loss", "validation_loss"]
    if config.get("precision_study"):
        names.append("precision_epoch_time")
    if evaluation["dfdc_testset"]:
        names += ["eer", "thresholds", "dfdc_roc", "dfdc_misclassified_fake", "dfdc_misclassified_real"]
        names += [f"dfdc_logloss_{setup}" for setup in SETUPS]
    if evaluation["celebdf_testset"]:
        names += [n for n in FIGURES if n.startswith("celebdf_")]
    return names


def all_tables():
    return expand("results/tables/{name}.{ext}", name=wanted_tables(), ext=["csv", "md"])


def all_figures():
    return expand("results/figures/{name}.png", name=wanted_figures())
