"""Experiment tracking: runs, their curves, settings and results in MLflow, Weights & Biases and TensorBoard.

The workflow's files stay the record (``run.yaml``, ``history.csv``, ``threshold.json``, the metrics
JSON files); a tracker gets a copy, where researchers look for it. Config section ``tracking``
(see config/README.md) names the backends:

- ``mlflow``: an MLflow tracking store, by default ``sqlite:///results/mlflow.db`` (artefacts in
  ``results/mlartifacts``), or a server (``tracking.mlflow_uri: http://host:5000``): one server gives
  one experiment for runs trained on several cluster nodes;
- ``wandb``: Weights & Biases, offline (files in the run folder's ``wandb/``, uploaded later with
  ``wandb sync``) unless an account is configured (``WANDB_API_KEY``, ``wandb login``) or
  ``tracking.wandb_mode: online``; ``WANDB_MODE`` in the environment wins;
- ``tensorboard``: event files in the run folder's ``tensorboard/`` (``tensorboard --logdir results``).

What a trained run logs (one tracked run per run folder): ``run.yaml`` flattened to parameters;
tags for the model, setup, training set and precision; per epoch :data:`EPOCH_METRICS` (step =
epoch); after training ``best_epoch`` and ``best_val_loss``; the validation threshold and
calibration (``validation/...``, ``calibration/...``) and per test set the metrics file's numbers
(``<testset>/auc``, ``<testset>/at_threshold/validation/tp``...); ``run.yaml``, ``history.csv``,
``threshold.json`` and ``calibration.json`` as artefacts. Ensembles, the generalisation matrix and the
robustness suite log to the same experiment, one tracked run per ensemble or table row, tagged
``facesleuth.kind`` (W&B: the run's group) so a dashboard can filter and compare them.

A tracker never decides a run's fate: a backend that fails (unreachable server, missing library)
is one warning in the log and is left out for the rest of the run. Which tracked run belongs to
a run folder is kept in its ``tracking.json`` (:data:`STATE_FILE`) with what has been logged, so a
resumed run continues its tracked run and logs each epoch once, and :func:`sync_results` (the
workflow's ``onsuccess``/``onerror``, and ``facesleuth track results/``) adds only what is missing.
A run trained again from scratch (its first epochs differ from those logged) gets a new tracked run.

The settings reach training jobs through the environment variable :data:`ENV_VAR` (JSON), set by
the Snakefile, so changing them reruns no job.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import math
import netrc
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import yaml

from facesleuth.io import write_json
from facesleuth.registry import TRACKING_BACKENDS, WANDB_MODES

log = logging.getLogger("facesleuth.train.experiments")

BACKENDS = TRACKING_BACKENDS
ENV_VAR = "FACESLEUTH_TRACKING"
STATE_FILE = "tracking.json"
#: Logged per epoch (step = epoch): the history.csv columns and the learning rate.
EPOCH_METRICS = ("train_loss", "val_loss", "lr", "images_per_s", "seconds")
#: Kinds of tracked runs (tag ``facesleuth.kind``, W&B group).
KINDS = ("run", "ensemble", "generalisation", "robustness")
#: Parts of a metrics file that are not one number per test set (curves, per-tag tables, copies).
_NOT_LOGGED = frozenset({"roc", "thresholds", "errors_by_tag", "validation", "testset", "model", "aug", "trainset"})
#: Small files of a run folder kept as artefacts.
RUN_ARTEFACTS = ("run.yaml", "history.csv", "threshold.json", "calibration.json")


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` section, resolved (the MLflow store made absolute)."""

    backends: tuple[str, ...] = ()
    experiment: str = "facesleuth"
    mlflow_uri: str | None = None
    wandb_mode: str = "auto"
    wandb_entity: str | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown:
            raise ValueError(f"tracking.backends: unknown {unknown}; choose from {list(BACKENDS)}")
        if self.wandb_mode not in WANDB_MODES:
            raise ValueError(f"tracking.wandb_mode must be one of {list(WANDB_MODES)}, got {self.wandb_mode!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.backends)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, results_dir: str | os.PathLike = "results") -> "TrackingSettings":
        """From a validated config's ``tracking`` section (schema defaults filled in)."""
        from facesleuth.config import section_defaults

        values = {**section_defaults("tracking"), **dict(section or {})}
        settings = cls(
            backends=tuple(dict.fromkeys(values.get("backends") or ())),
            experiment=str(values["experiment"]),
            mlflow_uri=values.get("mlflow_uri"),
            wandb_mode=values["wandb_mode"],
            wandb_entity=values.get("wandb_entity"),
            timeout_s=float(values["timeout_s"]),
        )
        return replace(settings, mlflow_uri=resolve_mlflow_uri(settings.mlflow_uri, results_dir))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TrackingSettings":
        values = json.loads(text)
        values["backends"] = tuple(values.get("backends") or ())
        return cls(**values)

    @classmethod
    def from_env(cls) -> "TrackingSettings":
        """What the workflow exported (:data:`ENV_VAR`); none: tracking off. A broken value is a warning."""
        text = os.environ.get(ENV_VAR)
        if not text:
            return cls()
        try:
            return cls.from_json(text)
        except (ValueError, TypeError) as err:
            log.warning("%s is not valid tracking settings (%s): tracking is off for this job", ENV_VAR, err)
            return cls()


def resolve_mlflow_uri(uri: str | None, results_dir: str | os.PathLike = "results") -> str:
    """``None``: the SQLite store ``results/mlflow.db``; a plain path: a SQLite file there; a URI as given.

    Made absolute, so every job (and a cluster node sharing the file system) opens the same store.
    """
    if uri is None:
        return f"sqlite:///{(Path(results_dir) / 'mlflow.db').resolve()}"
    if "://" not in uri and not uri.startswith(("file:", "databricks")):
        return f"sqlite:///{Path(uri).resolve()}"
    return uri


def export_settings(settings: TrackingSettings) -> None:
    """Hand the settings to the jobs this process starts (the Snakefile calls it)."""
    if settings.enabled:
        os.environ[ENV_VAR] = settings.to_json()
    else:
        os.environ.pop(ENV_VAR, None)


# ---------------------------------------------------------------------------- values


def flatten(values: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested mappings as one level (``a.b``); lists and other leaves unchanged."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat


def as_params(values: Mapping[str, Any]) -> dict[str, str]:
    """Settings as tracker parameters: flattened, each value a string (lists and empties as JSON)."""
    params = {}
    for key, value in flatten(values).items():
        params[key] = value if isinstance(value, str) else json.dumps(value, default=str)
    return params


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def numbers(values: Mapping[str, Any], prefix: str = "", skip: Iterable[str] = ()) -> dict[str, float]:
    """Every number in ``values`` (nested mappings flattened with ``/``), under ``prefix/``."""
    skip = frozenset(skip)
    found: dict[str, float] = {}
    for key, value in values.items():
        if key in skip:
            continue
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            found.update(numbers(value, name))
        else:
            number = _number(value)
            if number is not None:
                found[name] = number
    return found


def testset_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """One metrics file's numbers under its test set: log loss, AUC, EER, the confusion counts at
    each threshold, the video counts and the calibrated log loss (``<testset>/...``)."""
    return numbers(record, str(record["testset"]), skip=_NOT_LOGGED)


def epoch_metrics(row: Mapping[str, Any], lr: float) -> dict[str, float]:
    values = {key: float(row[key]) for key in EPOCH_METRICS if key != "lr"}
    values["lr"] = float(lr)
    return values


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _file_stamp(path: Path) -> list[int]:
    """Size and modification time: a checkpoint is rewritten, never edited in place."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _row_digest(row: Mapping[str, Any]) -> str:
    # repr: NaN and full precision; history.csv reads back the very floats training wrote
    return _digest([repr(float(row[key])) for key in ("epoch", "train_loss", "val_loss", "seconds")])


# ---------------------------------------------------------------------------- backends


class Backend(abc.ABC):
    """One tracker's run. Each method may raise; :class:`TrackedRun` turns that into a warning."""

    name = ""

    @abc.abstractmethod
    def start(self, name: str, kind: str, tags: Mapping[str, str], where: Path, state: dict[str, Any]) -> None:
        """Open (or, from ``state``, reopen) the run; record in ``state`` what reopens it."""

    @abc.abstractmethod
    def log_params(self, params: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int | None) -> None:
        """``step``: an epoch; None: a result of the run as a whole."""

    @abc.abstractmethod
    def log_artefacts(self, paths: Sequence[Path]) -> None: ...

    @abc.abstractmethod
    def finish(self, status: str) -> None: ...


class MlflowBackend(Backend):
    name = "mlflow"

    def __init__(self, settings: TrackingSettings):
        self.settings = settings
        self.client = None
        self.run_id: str | None = None

    def _client(self):
        # An unreachable server must not hold a job for minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(self.settings.timeout_s)))
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.settings.mlflow_uri)

    def experiment_id(self, client) -> str:
        experiment = client.get_experiment_by_name(self.settings.experiment)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(self.settings.experiment, artifact_location=self._artifact_root())
        except Exception:  # created meanwhile by a job on another node
            experiment = client.get_experiment_by_name(self.settings.experiment)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _artifact_root(self) -> str | None:
        """Beside a local SQLite store (MLflow's default would be ./mlartifacts of each job's directory)."""
        uri = self.settings.mlflow_uri or ""
        if uri.startswith("sqlite:///"):
            return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        return None

    def start(self, name, kind, tags, where, state):
        self.client = client = self._client()
        if state.get("uri") == self.settings.mlflow_uri and state.get("experiment") == self.settings.experiment \
                and state.get("run_id"):
            try:
                run = client.get_run(state["run_id"])
                self.run_id = run.info.run_id
                client.update_run(self.run_id, status="RUNNING")
            except Exception as err:  # deleted from the store: a new tracked run
                log.info("tracking: MLflow run %s of %s not found (%s); starting a new one", state["run_id"], name, err)
                self.run_id = None
        if self.run_id is None:
            run = client.create_run(self.experiment_id(client), run_name=name, tags=dict(tags))
            self.run_id = run.info.run_id
            state.clear()
            state.update(uri=self.settings.mlflow_uri, experiment=self.settings.experiment, run_id=self.run_id)
        else:
            self.set_tags(tags)

    def set_tags(self, tags):
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, params):
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_metrics(self, metrics, step):
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, 0 if step is None else int(step)) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start:start + 1000])

    def log_artefacts(self, paths):
        for path in paths:
            self.client.log_artifact(self.run_id, str(path))

    def finish(self, status):
        self.client.set_terminated(self.run_id, status=status)


def wandb_base_url() -> str:
    """The W&B server this process would talk to: ``WANDB_BASE_URL``, else W&B's own default."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    try:
        from wandb.sdk.lib.urls import DEFAULT_BASE_URL

        return DEFAULT_BASE_URL
    except ImportError:
        return "https://api.wandb.ai"


def wandb_mode(setting: str) -> str | None:
    """The W&B mode: ``WANDB_MODE`` if set (None: let W&B read it), else ``offline`` unless an
    account is configured (``WANDB_API_KEY`` or a ``wandb login`` entry in ~/.netrc) or asked for."""
    if os.environ.get("WANDB_MODE"):
        return None
    if setting != "auto":
        return setting
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = urllib.parse.urlparse(wandb_base_url()).hostname
    try:
        if host and netrc.netrc(os.environ.get("NETRC")).authenticators(host):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


def reachable(url: str, timeout: float) -> bool:
    """Whether a server answers at ``url`` within ``timeout`` seconds (any HTTP status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


class WandbBackend(Backend):
    name = "wandb"

    def __init__(self, settings: TrackingSettings):
        self.settings = settings
        self.run = None

    def start(self, name, kind, tags, where, state):
        import wandb

        same_project = state.get("project") == self.settings.experiment
        run_id = state.get("id") if same_project and state.get("id") else uuid.uuid4().hex[:12]
        where.mkdir(parents=True, exist_ok=True)
        mode = wandb_mode(self.settings.wandb_mode)
        options = dict(
            project=self.settings.experiment, entity=self.settings.wandb_entity, name=name, id=run_id,
            resume="allow", dir=str(where), group=kind, job_type=kind,
            tags=[f"{k}:{v}"[:64] for k, v in tags.items()], reinit="create_new",
        )
        settings = wandb.Settings(init_timeout=self.settings.timeout_s, silent=True, console="off",
                                  x_disable_stats=True)
        if mode == "online" and not reachable(wandb_base_url(), self.settings.timeout_s):
            # no network: the records go offline for `wandb sync`, rather than the run waiting
            log.warning("tracking: W&B server %s unreachable; logging %s offline instead (upload later with "
                        "wandb sync)", wandb_base_url(), name)
            mode = "offline"
        self.run = wandb.init(mode=mode, settings=settings, **options)
        self.run.define_metric("epoch")
        for key in EPOCH_METRICS:
            self.run.define_metric(key, step_metric="epoch")
        state.update(id=run_id, project=self.settings.experiment)

    def log_params(self, params):
        self.run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, metrics, step):
        if step is None:
            self.run.summary.update(dict(metrics))
        else:
            self.run.log({"epoch": int(step), **metrics})

    def log_artefacts(self, paths):
        for path in paths:
            self.run.save(str(path), base_path=str(Path(path).parent), policy="now")

    def finish(self, status):
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)


class TensorboardBackend(Backend):
    name = "tensorboard"

    def __init__(self, settings: TrackingSettings):
        self.settings = settings
        self.writer = None

    def start(self, name, kind, tags, where, state):
        from torch.utils.tensorboard import SummaryWriter

        # one folder per tracked run: a run trained again from scratch gets its own curves
        log_dir = state.setdefault("dir", str(where / "tensorboard" / time.strftime("%Y%m%d-%H%M%S")))
        self.writer = SummaryWriter(log_dir=log_dir)
        if not state.get("described"):
            self.writer.add_text("tags", "\n".join(f"- {k}: {v}" for k, v in tags.items()), 0)
        state["described"] = True

    def log_params(self, params):
        table = "| parameter | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("parameters", table, 0)

    def log_metrics(self, metrics, step):
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, 0 if step is None else int(step))
        self.writer.flush()

    def log_artefacts(self, paths):
        pass  # the event files lie in the run folder beside them

    def finish(self, status):
        self.writer.close()


BACKEND_CLASSES: dict[str, type[Backend]] = {"mlflow": MlflowBackend, "wandb": WandbBackend,
                                             "tensorboard": TensorboardBackend}


def prepare(settings: TrackingSettings) -> None:
    """Create the MLflow store and experiment once, before parallel jobs would race to (workflow onstart)."""
    if "mlflow" in settings.backends:
        try:
            backend = MlflowBackend(settings)
            backend.experiment_id(backend._client())
        except Exception as err:
            log.warning("tracking: MLflow store %s cannot be prepared (%s); jobs will try again and warn",
                        settings.mlflow_uri, err)


# ---------------------------------------------------------------------------- a tracked run


@dataclass
class TrackedRun:
    """One tracked run in every configured backend, its state kept in ``state_path``.

    Use as a context manager: on leaving it the backends' runs end (FAILED after an exception).
    """

    settings: TrackingSettings
    state_path: Path
    name: str
    kind: str = "run"
    tags: dict[str, str] = field(default_factory=dict)
    where: Path | None = None
    backends: dict[str, Backend] = field(default_factory=dict)  # started
    active: list[str] = field(default_factory=list)  # configured and not failed
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_path = Path(self.state_path)
        self.where = Path(self.where) if self.where is not None else self.state_path.parent

    # ---------------------------------------------------------------- state

    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
            return state if isinstance(state, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            log.warning("tracking: %s unreadable (%s); starting new tracked runs", self.state_path, err)
            return {}

    def _save_state(self) -> None:
        try:
            write_json(self.state, self.state_path)
        except OSError as err:
            log.warning("tracking: cannot write %s (%s)", self.state_path, err)

    def _logged(self, backend: str) -> dict[str, Any]:
        return self.state.setdefault("logged", {}).setdefault(backend, {"epochs": 0, "params": {}, "results": {}})

    def _fail(self, backend: str, action: str, err: BaseException) -> None:
        log.warning("tracking: %s could not %s for %s (%s: %s); the run goes on without %s",
                    backend, action, self.name, type(err).__name__, err, backend)
        if backend in self.active:
            self.active.remove(backend)
        self.backends.pop(backend, None)

    def _started(self, name: str) -> Backend:
        """The backend's run, started on first use: a sync with nothing new opens no run."""
        if name not in self.backends:
            backend = BACKEND_CLASSES[name](self.settings)
            backend_state = self.state.setdefault("backends", {}).setdefault(name, {})
            previous = dict(backend_state)
            backend.start(self.name, self.kind, self.tags, self.where, backend_state)
            if previous and backend_state != previous:  # the backend opened a new run: nothing logged there yet
                self.state.get("logged", {}).pop(name, None)
            self.backends[name] = backend
        return self.backends[name]

    def _each(self, action: str, pending, call) -> None:
        """``call(name, backend)`` for every working backend for which ``pending(name)`` is true."""
        for name in list(self.active):
            try:
                if pending(name):
                    backend = self._started(name)
                    call(name, backend)
            except Exception as err:  # a tracker never fails the run
                self._fail(name, action, err)
        self._save_state()

    # ---------------------------------------------------------------- life

    def open(self, history: Sequence[Mapping[str, Any]] = ()) -> "TrackedRun":
        """Load the tracked run's state. ``history``: the epochs the run folder already holds; when
        they disagree with the epochs logged, the training is another one: new tracked runs."""
        self.state = self._load_state()
        logged = self.state.get("epoch_digests") or []
        if self.state.get("name") not in (None, self.name) or \
                [_row_digest(row) for row in list(history)[:len(logged)]] != logged:
            if self.state:
                log.info("tracking: %s was trained again from its first epoch; starting new tracked runs", self.name)
            self.state = {}
        self.state.update(name=self.name, kind=self.kind)
        self.active = list(self.settings.backends)
        return self

    def start(self) -> "TrackedRun":
        """Start every backend's run now (a training shows up in the trackers before its first epoch)."""
        self._each("start", lambda name: True, lambda name, backend: None)
        return self

    def close(self, status: str = "FINISHED") -> None:
        self._each("finish", lambda name: name in self.backends, lambda name, backend: backend.finish(status))
        self.backends.clear()

    def __enter__(self) -> "TrackedRun":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close("FINISHED" if kind is None else "FAILED")

    # ---------------------------------------------------------------- logging

    def log_params(self, params: Mapping[str, str]) -> None:
        """Parameters not logged before (a tracked parameter keeps its first value in MLflow)."""
        def new(name):
            return {k: v for k, v in params.items() if k not in self._logged(name)["params"]}

        def call(name, backend):
            known = self._logged(name)["params"]
            changed = sorted(k for k, v in params.items() if k in known and known[k] != v)
            if changed:
                log.info("tracking: %s parameters %s changed since they were logged; %s keeps the first values",
                         self.name, changed, name)
            todo = new(name)
            if todo:
                backend.log_params(todo)
                known.update(todo)
        self._each("log parameters", lambda name: bool(new(name)), call)

    def log_epochs(self, history: Sequence[Mapping[str, Any]], lr: float) -> None:
        """Every epoch of ``history`` that a backend has not logged yet, in order."""
        digests = self.state.setdefault("epoch_digests", [])
        for index, row in enumerate(history):
            if index >= len(digests):
                digests.append(_row_digest(row))
        metrics = [epoch_metrics(row, lr) for row in history]

        def call(name, backend):
            logged = self._logged(name)
            for index in range(logged["epochs"], len(history)):
                backend.log_metrics(metrics[index], int(history[index]["epoch"]))
                logged["epochs"] = index + 1
        self._each("log epochs", lambda name: self._logged(name)["epochs"] < len(history), call)

    def log_results(self, key: str, metrics: Mapping[str, float], source: Any = None) -> None:
        """Results of the run as a whole (``key`` names their source); logged again only when they change."""
        digest = _digest(source if source is not None else dict(metrics))

        def call(name, backend):
            backend.log_metrics(metrics, None)
            self._logged(name)["results"][key] = digest
        self._each("log results", lambda name: self._logged(name)["results"].get(key) != digest, call)

    def lacks(self, key: str, source: Any) -> bool:
        """Whether a backend has not logged the results ``key`` from this ``source`` yet."""
        digest = _digest(source)
        return any(self._logged(name)["results"].get(key) != digest for name in self.active)

    def log_best(self, path: str | os.PathLike, epoch: int | None = None, val_loss: float | None = None) -> None:
        """``best_epoch`` and ``best_val_loss`` of the checkpoint ``path`` (read from it unless given)."""
        path = Path(path)
        stamp = _file_stamp(path)
        if not self.lacks("best.pt", stamp):
            return
        if epoch is None:
            from facesleuth.train.checkpoint import load_checkpoint

            best = load_checkpoint(path)
            epoch, val_loss = best["epoch"], best["val_loss"]
        self.log_results("best.pt", {"best_epoch": float(epoch), "best_val_loss": float(val_loss)}, stamp)

    def log_artefacts(self, paths: Iterable[str | os.PathLike]) -> None:
        files = [Path(p) for p in paths if Path(p).is_file()]
        digests = {path: _file_digest(path) for path in files}

        def todo(name):
            results = self._logged(name)["results"]
            return [p for p in files if results.get(f"file:{p.name}") != digests[p]]

        def call(name, backend):
            paths = todo(name)
            backend.log_artefacts(paths)
            self._logged(name)["results"].update({f"file:{p.name}": digests[p] for p in paths})
        self._each("log artefacts", lambda name: bool(todo(name)), call)


# ---------------------------------------------------------------------------- run folders


def run_tags(info: Mapping[str, Any]) -> dict[str, str]:
    return {
        "facesleuth.kind": "run",
        "model": str(info.get("model")),
        "setup": str(info.get("setup")),
        "trainset": "-".join(info.get("trained_on") or []),
        "precision": str(info.get("precision")),
    }


def run_name(run_dir: str | os.PathLike, info: Mapping[str, Any]) -> str:
    """``model/run`` (the run folder's name, with a precision variant's suffix), under a
    generalisation training set's name where the run belongs to one."""
    run_dir = Path(run_dir)
    parts = run_dir.resolve().parts
    name = f"{info.get('model', run_dir.parent.name)}/{run_dir.name}"
    if len(parts) >= 5 and parts[-5] == "trainsets" and parts[-3] == "models":
        return f"{parts[-4]}/{name}"
    return name


def training_run(run_dir: str | os.PathLike, info: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
                 settings: TrackingSettings | None = None) -> TrackedRun | None:
    """The tracked run of a training job (settings from :data:`ENV_VAR`); None when tracking is off."""
    settings = settings if settings is not None else TrackingSettings.from_env()
    if not settings.enabled:
        return None
    run_dir = Path(run_dir)
    tracked = TrackedRun(settings, run_dir / STATE_FILE, run_name(run_dir, info), "run", run_tags(info), run_dir)
    tracked.open(history).start()
    tracked.log_params(as_params(info))
    tracked.log_epochs(history, float(info["lr"]))
    return tracked


def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    return pd.read_csv(path).to_dict(orient="records")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.warning("tracking: %s unreadable (%s); left out", path, err)
        return None


def run_metrics_files(run_dir: Path) -> list[Path]:
    """The metrics files of a run folder's run: ``<results>/metrics/<testset>/<model>/<run>.json``
    (a generalisation training set's under its ``results/trainsets/<name>/``)."""
    root = run_dir.parent.parent.parent
    return sorted(root.glob(f"metrics/*/{run_dir.parent.name}/{run_dir.name}.json"))


def sync_run_folder(run_dir: str | os.PathLike, settings: TrackingSettings) -> bool:
    """Log what a finished (or partly finished) run folder holds and its tracked run lacks."""
    run_dir = Path(run_dir)
    if not (run_dir / "history.csv").exists():  # training has not finished an epoch (or is being rerun)
        return False
    try:
        info = yaml.safe_load((run_dir / "run.yaml").read_text()) or {}
        history = read_history(run_dir / "history.csv")
    except (OSError, ValueError, yaml.YAMLError) as err:
        log.warning("tracking: %s cannot be read (%s); left out", run_dir, err)
        return False
    tracked = TrackedRun(settings, run_dir / STATE_FILE, run_name(run_dir, info), "run", run_tags(info), run_dir)
    with tracked.open(history):
        tracked.log_params(as_params(info))
        tracked.log_epochs(history, float(info.get("lr", math.nan)))
        if (run_dir / "best.pt").exists():
            tracked.log_best(run_dir / "best.pt")
        for name, prefix in (("threshold.json", "validation"), ("calibration.json", "calibration")):
            record = _read_json(run_dir / name) if (run_dir / name).exists() else None
            if record is not None:
                tracked.log_results(name, numbers(record, prefix), record)
        for path in run_metrics_files(run_dir):
            record = _read_json(path)
            if record is not None and "testset" in record:
                tracked.log_results(f"metrics:{record['testset']}", testset_metrics(record), record)
        tracked.log_artefacts(run_dir / name for name in RUN_ARTEFACTS)
    return True


# ---------------------------------------------------------------------------- studies


def _study_run(settings: TrackingSettings, results: Path, kind: str, name: str, tags: Mapping[str, str]) -> TrackedRun:
    where = results / "tracking" / kind / name.replace("/", "__")
    return TrackedRun(settings, where / STATE_FILE, f"{kind}/{name}", kind, {"facesleuth.kind": kind, **tags}, where)


def sync_ensembles(results: Path, settings: TrackingSettings) -> int:
    count = 0
    for spec_path in sorted(results.glob("ensembles/*/ensemble.yaml")):
        folder = spec_path.parent
        spec = yaml.safe_load(spec_path.read_text()) or {}
        with _study_run(settings, results, "ensemble", folder.name, {"method": str(spec.get("method"))}).open() as run:
            run.log_params(as_params(spec))
            for name, prefix in (("threshold.json", "validation"), ("calibration.json", "calibration")):
                record = _read_json(folder / name) if (folder / name).exists() else None
                if record is not None:
                    run.log_results(name, numbers(record, prefix), record)
            for path in sorted(folder.glob("metrics/*.json")):
                record = _read_json(path)
                if record is not None:
                    record.setdefault("testset", path.stem)
                    run.log_results(f"metrics:{path.stem}", testset_metrics(record), record)
            run.log_artefacts([spec_path, folder / "threshold.json", folder / "calibration.json"])
        count += 1
    return count


def _table(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        log.warning("tracking: %s unreadable (%s); left out", path, err)
        return None


def sync_generalisation(results: Path, settings: TrackingSettings) -> int:
    """One tracked run per row of the generalisation matrix: ``auc/<testset>``."""
    table = _table(results / "tables" / "generalisation_auc.csv")
    if table is None:
        return 0
    keys = ["trainset", "model", "aug"]
    # a baseline's row (config baselines) also names its kind and what its authors trained it on
    testsets = [c for c in table.columns if c not in (*keys, "name", "kind", "trained_on")]
    for row in table.to_dict(orient="records"):
        name = "/".join(str(row[k]) for k in keys)
        tags = {"trainset": str(row["trainset"]), "model": str(row["model"]), "setup": str(row["aug"])}
        with _study_run(settings, results, "generalisation", name, tags).open() as run:
            metrics = {f"auc/{t}": float(row[t]) for t in testsets}
            run.log_results("generalisation_auc", metrics)
    return len(table)


def sync_robustness(results: Path, settings: TrackingSettings) -> int:
    """One tracked run per test set and run of the robustness suite: ``auc/<perturbation>``, ``logloss/<perturbation>``."""
    tables = {metric: _table(results / "tables" / f"robustness_{metric}.csv") for metric in ("auc", "logloss")}
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for metric, table in tables.items():
        if table is None:
            continue
        for row in table.to_dict(orient="records"):
            cells = rows.setdefault((str(row["testset"]), str(row["run"])), {})
            cells.update({f"{metric}/{k}": float(v) for k, v in row.items() if k not in ("testset", "run")})
    for (testset, run_id), metrics in rows.items():
        model, _, setup = run_id.partition("/")
        tags = {"testset": testset, "model": model, "setup": setup}
        with _study_run(settings, results, "robustness", f"{testset}/{run_id}", tags).open() as run:
            run.log_results("robustness", metrics)
    return len(rows)


def run_folders(results: str | os.PathLike) -> list[Path]:
    results = Path(results)
    found = [*results.glob("models/*/*/run.yaml"), *results.glob("trainsets/*/models/*/*/run.yaml")]
    return sorted(path.parent for path in found)


def sync_results(results: str | os.PathLike, settings: TrackingSettings) -> dict[str, int]:
    """Bring the trackers up to date with ``results/``: every run folder, ensemble, generalisation
    row and robustness row; returns how many of each. Never raises for a tracker's sake."""
    results = Path(results)
    counts = {kind: 0 for kind in KINDS}
    if not settings.enabled:
        return counts
    folders = run_folders(results)
    for index, run_dir in enumerate(folders, start=1):
        log.info("tracking: run %d/%d %s", index, len(folders), run_dir)
        counts["run"] += bool(sync_run_folder(run_dir, settings))
    counts["ensemble"] = sync_ensembles(results, settings)
    counts["generalisation"] = sync_generalisation(results, settings)
    counts["robustness"] = sync_robustness(results, settings)
    log.info("tracking: %s in %s (%s)", ", ".join(f"{n} {k}" for k, n in counts.items()), settings.experiment,
             ", ".join(settings.backends))
    return counts


def sync_quietly(results: str | os.PathLike, settings: TrackingSettings, log_file: str | os.PathLike | None = None) -> None:
    """:func:`sync_results` for the workflow's onsuccess/onerror: progress on stderr (and in
    ``log_file``), any failure a warning."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a"))
    package = logging.getLogger("facesleuth")
    level = package.level
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        sync_results(results, settings)
    except Exception as err:
        log.warning("tracking: logging the study's results failed (%s: %s); the results are unchanged",
                    type(err).__name__, err)
    finally:
        for handler in handlers:
            package.removeHandler(handler)
            handler.close()
        package.setLevel(level)
