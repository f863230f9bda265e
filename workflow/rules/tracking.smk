# Experiment tracking (config tracking, facesleuth.train.experiments). The settings reach the training
# jobs through an environment variable, not params, so changing them reruns no job; the study's
# results (run folders, ensembles, generalisation matrix, robustness suite) are logged when the
# workflow ends, successfully or not.
from facesleuth.train import experiments  # noqa: E402

TRACKING = experiments.TrackingSettings.from_config(config.get("tracking"), "results")
experiments.export_settings(TRACKING)


onstart:
    if TRACKING.enabled:
        experiments.prepare(TRACKING)


onsuccess:
    if TRACKING.enabled:
        experiments.sync_quietly("results", TRACKING, log_path("tracking", "results"))


onerror:
    if TRACKING.enabled:
        experiments.sync_quietly("results", TRACKING, log_path("tracking", "results"))
