# Shared helpers: config validation, the model x augmentation grid, input functions. Names the
# package shares with the workflow (setups, precisions, statuses) come from facesleuth.registry,
# the tables and figures from facesleuth.report.catalog, settings derived from the config from
# facesleuth.config (package_config here: ``config`` is the workflow's config dict).
import os
import re
import sys
from argparse import Namespace
from pathlib import Path

# Scripts and input functions import the package; make the checkout's src/ importable even
# where facesleuth is not installed (it normally is, with pip install -e '.[workflow]').
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (scripts, conda environments, cluster jobs) import it from here too.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.getenv("PYTHONPATH")) if p))

from facesleuth import config as package_config, registry  # noqa: E402
from facesleuth.evaluate.baselines import BaselineError, baseline_files  # noqa: E402
from facesleuth.config import validate_config, ConfigError, face_crop_settings  # noqa: E402
from facesleuth.io import FACES_SCHEMA  # noqa: E402
from facesleuth.report import catalog  # noqa: E402
from facesleuth.manifests import ManifestError, source_files  # noqa: E402
from facesleuth.runtime import chunk_names, claimed_gpus  # noqa: E402

# the schema the package ships, with the registry's setups and precisions
try:
    validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

DATASETS = config["datasets"]
MODELS = config["models"]
SETUPS = config["augmentation_setups"]
TESTSETS = config["evaluation"]["testsets"]
TRAINSET = "-".join(config["splits"]["train_datasets"])
# DFDC's own validation set (test flow) when configured, else a hold-out of the split
VALIDATION_DATASET = config["splits"].get("validation_dataset")
VALIDATION = package_config.validation_source(config)
HOLDOUT_VALIDATION = package_config.validation_source({"splits": {**config["splits"], "validation_dataset": None}})
ENSEMBLES = config.get("ensembles") or {}
# Published detectors scored as the grid's runs are (config baselines): name -> source
BASELINES = package_config.baselines(config)
# The generalisation matrix's named training sets (thesis 3.3). One made of exactly the grid's
# datasets is the grid's own split and runs; each other has its split and its run folders.
GENERALISATION = config.get("generalisation") or {}
TRAINING_SETS = GENERALISATION.get("training_sets") or {}


def is_grid_trainset(name):
    return list(TRAINING_SETS[name]["datasets"]) == list(config["splits"]["train_datasets"])


SPLIT_NAMES = [TRAINSET] + [name for name in TRAINING_SETS if not is_grid_trainset(name)]

# GPUs each job claims (resource gpu), from the device it will use: the rules declare them, so a
# rule made with `use rule ... as` claims them too; the profiles limit (local) or request (SLURM)
# them. Prediction and validation run on the training device's kind (cpu: no GPU claimed).
DETECTION_GPUS = claimed_gpus(config["extraction"]["detection"]["device"])
TRAINING_GPUS = claimed_gpus(config["training"]["device"], config["training"]["gpus"])
EVALUATION_GPUS = claimed_gpus(config["training"]["device"])


wildcard_constraints:
    dataset="|".join(DATASETS),
    testset="|".join(TESTSETS) if TESTSETS else "NO_TESTSET",
    chunk=r"\d{3}",
    trainset="|".join(map(re.escape, SPLIT_NAMES)),
    model=r"[A-Za-z0-9_.]+",
    ensemble="|".join(map(re.escape, ENSEMBLES)) if ENSEMBLES else "NO_ENSEMBLE",
    baseline="|".join(map(re.escape, BASELINES)) if BASELINES else "NO_BASELINE",
    # a grid run is named after its setup; precision-study variants add -<precision>
    aug=registry.aug_pattern(),
    # robustness suite: family_value, e.g. jpeg_70
    perturbation=rf"({'|'.join(registry.PERTURBATION_FAMILIES)})_[0-9]+(\.[0-9]+)?",


def log_path(stage, name):
    return f"logs/{stage}/{name}.log"


def bench_path(stage, name):
    return f"results/benchmarks/{stage}/{name}.tsv"


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


def split_datasets(trainset):
    """The datasets a split is made of: the grid's, or a generalisation training set's."""
    return config["splits"]["train_datasets"] if trainset == TRAINSET else TRAINING_SETS[trainset]["datasets"]


def split_faces(wildcards):
    return [f for name in split_datasets(wildcards.trainset) for f in faces_files(name)]


def split_status(wildcards):
    return [f for name in split_datasets(wildcards.trainset) for f in status_files(name)]


def split_manifests(wildcards):
    return expand("results/manifests/{dataset}.parquet", dataset=split_datasets(wildcards.trainset))


def split_settings(wildcards):
    """The grid's split settings; another training set's name its own datasets and hold out its
    own validation faces (validating it on the grid's validation dataset would tune it towards
    the data its generalisation is tested on)."""
    if wildcards.trainset == TRAINSET:
        return config["splits"]
    return {**config["splits"], "train_datasets": list(split_datasets(wildcards.trainset)), "validation_dataset": None}


def validation_of(wildcards):
    """What a run validates on: the grid's VALIDATION, or another training set's own hold-out."""
    if getattr(wildcards, "trainset", TRAINSET) == TRAINSET:
        return VALIDATION
    return HOLDOUT_VALIDATION


def validation_faces(wildcards):
    """The validation dataset's faces files (the train rule's validation loss), or none: the split's."""
    return faces_files(VALIDATION_DATASET) if VALIDATION_DATASET else []


def validation_inputs(wildcards):
    """Inputs of validate, the validation dataset's faces, status and manifest (test flow, scored
    as a test set is), or else the split's held-out faces."""
    if VALIDATION_DATASET:
        return {
            "faces": faces_files(VALIDATION_DATASET),
            "status": status_files(VALIDATION_DATASET),
            "manifest": f"results/manifests/{VALIDATION_DATASET}.parquet",
        }
    return {"split": f"results/splits/{TRAINSET}.parquet"}


def run_settings(wildcards):
    """Training settings of one run: the grid's, or a precision-study variant's."""
    setup, _, precision = wildcards.aug.partition("-")
    settings = dict(config["training"])
    if registry.AUGMENTATION_SETUPS[setup].train_set is None:
        # the sbi section concerns sbi runs only: changing it must not rerun the others
        settings.pop("sbi", None)
    if precision:
        settings["precision"] = precision
        settings["batch_size"] = config["precision_study"]["runs"][precision]
    return {
        "model": wildcards.model,
        "setup": setup,
        "training": settings,
        "augmentations": config["augmentations"] if registry.AUGMENTATION_SETUPS[setup].augments else {},
        "validation": validation_of(wildcards),
        # the frames its training faces were cut from (extraction.train_flow), for run.yaml
        "frames": {key: config["extraction"]["train_flow"][key] for key in ("frame_policy", "max_frame_offset")},
        # the detection and crop settings its training faces were extracted with, for run.yaml and the scanner
        "face_crops": face_crop_settings(config["extraction"]["detection"]),
        # marks the run (run.yaml, and every scan of it) as trained on the embedded demo's synthetic faces
        "trained_on_demo": bool(config["demo"]["enabled"]),
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

# What scoring faces and videos depends on: rules get only these as params, so settings of the
# studies (evaluation.aggregations, calibration...) rerun nothing but the studies.
PREDICTION_SETTINGS = {
    key: config["evaluation"].get(key) for key in ("aggregation", "no_face_score", "batch_size", "backend")
}


def metrics_files(testset, runs=None):
    runs = grid_runs() if runs is None else runs
    return [f"results/metrics/{testset}/{run.removeprefix('results/models/')}.json" for run in runs]


def prediction_files(testset, runs=None):
    runs = grid_runs() if runs is None else runs
    return [f"results/predictions/{testset}/{run.removeprefix('results/models/')}.parquet" for run in runs]


# ---------------------------------------------------------------- robustness suite


def perturbed_chunks(wildcards):
    return DATASETS[wildcards.testset]["chunks"]


def robustness_seed(wildcards):
    return config["robustness"]["seed"]


def perturbed_extraction_params(wildcards):
    """The test set's own extraction settings: a perturbed copy is extracted as the clean one is."""
    return extraction_params(Namespace(dataset=wildcards.testset))


def perturbed_faces_files(testset, perturbation, suffix=".parquet"):
    return expand(
        "results/robustness/faces/{testset}/{perturbation}/{chunk}{suffix}",
        testset=testset,
        perturbation=perturbation,
        chunk=chunks_of(testset),
        suffix=suffix,
    )


def perturbed_faces(wildcards):
    return perturbed_faces_files(wildcards.testset, wildcards.perturbation)


def perturbed_status(wildcards):
    return perturbed_faces_files(wildcards.testset, wildcards.perturbation, ".status.parquet")


def robustness_prediction_files():
    """Video predictions of every robustness cell (config.robustness_cells order): the clean
    test set's own, or the perturbed copy's."""
    files = []
    for cell in package_config.robustness_cells(config):
        testset, run, perturbation = cell["testset"], cell["run"], cell["perturbation"]
        if cell.get("baseline"):
            files.append(baseline_prediction_file(cell["baseline"], testset, perturbation))
        elif perturbation == registry.CLEAN:
            files.append(f"results/predictions/{testset}/{run}.parquet")
        else:
            files.append(f"results/robustness/predictions/{testset}/{perturbation}/{run}.parquet")
    return files


# ---------------------------------------------------------------- generalisation (thesis 3.3)


def generalisation_metrics_file(trainset, model, setup, testset):
    if is_grid_trainset(trainset):
        return f"results/metrics/{testset}/{model}/{setup}.json"
    return f"results/trainsets/{trainset}/metrics/{testset}/{model}/{setup}.json"


# ---------------------------------------------------------------- ensembles (thesis 3.3)
# results/ensembles/<name>/ holds ensemble.yaml (members, method), the validation scores,
# threshold.json and calibration.json chosen on them, and predictions/ and metrics/ per test set.


def ensemble_runs(name):
    return [f"results/models/{run}" for run in ENSEMBLES[name]["runs"]]


def ensemble_metrics_files(testset):
    return [f"results/ensembles/{name}/metrics/{testset}.json" for name in ENSEMBLES]


def ensemble_targets():
    """Every ensemble folder (the scanner's --model) with its metrics on every test set."""
    return [f"results/ensembles/{name}/ensemble.yaml" for name in ENSEMBLES] + [
        f for testset in TESTSETS for f in ensemble_metrics_files(testset)
    ]


# ---------------------------------------------------------------- baselines (config baselines)
# results/baselines/<name>/ holds a published detector's predictions and metrics per test set,
# and its predictions on the robustness suite's perturbed copies. Its run folder (built in, or a
# path) is resolved while planning, so a wrong source fails before any job.

try:
    BASELINE_FILES = {name: baseline_files(source, Path.cwd()) for name, source in BASELINES.items()}
except BaselineError as err:
    raise WorkflowError(str(err)) from None


def baseline_run(wildcards):
    """The baseline's run.yaml and weights: a changed run folder rescored."""
    files = BASELINE_FILES[wildcards.baseline]
    return {"best": files["run"], "weights": files["weights"]}


def baseline_prediction_file(name, testset, perturbation=registry.CLEAN):
    if perturbation == registry.CLEAN:
        return f"results/baselines/{name}/predictions/{testset}.parquet"
    return f"results/baselines/{name}/robustness/{testset}/{perturbation}.parquet"


def baseline_metrics_files(testset):
    return [f"results/baselines/{name}/metrics/{testset}.json" for name in BASELINES]


def baseline_targets():
    return [f for testset in TESTSETS for f in baseline_metrics_files(testset)]


# ---------------------------------------------------------------- tables and figures
# Named after the thesis's tables and figures (facesleuth.report.catalog); each table is a CSV plus
# a Markdown copy. Report captions are the package's static caption files; the words they take
# from the config reach them as each rule's param ``caption``.

FIGURES = catalog.figures(SETUPS)


def caption_words(spec):
    """The ``caption`` param of a table's or figure's rule (its report caption's config words)."""
    return catalog.caption_words(spec, VALIDATION)


def all_tables():
    return expand("results/tables/{name}.{ext}", name=catalog.wanted_tables(config), ext=["csv", "md"])


def all_figures():
    return expand("results/figures/{name}.png", name=catalog.wanted_figures(config))
