# Input functions and output helpers of the table_* and figure_* rules (tables.smk,
# figures.smk), kept apart from the rules as common.smk keeps the others'. Included once, from
# the Snakefile, before both.


def dfdc_metrics(wildcards):
    return metrics_files(config["evaluation"]["dfdc_testset"])


def celebdf_metrics(wildcards):
    return metrics_files(config["evaluation"]["celebdf_testset"])


def precision_histories(wildcards):
    return [f"{run}/history.csv" for run in precision_runs()]


def precision_metrics(wildcards):
    return metrics_files(config["evaluation"]["dfdc_testset"], precision_runs())


def robustness_predictions(wildcards):
    return robustness_prediction_files()


def suite_ensemble_metrics(suite):
    """Input function: the configured ensembles' metrics on the ``suite`` test set (none configured: none)."""

    def inputs(wildcards):
        return ensemble_metrics_files(config["evaluation"][f"{suite}_testset"])

    return inputs


def suite_baseline_metrics(suite):
    """Input function: the configured baselines' metrics on the ``suite`` test set (none configured: none)."""

    def inputs(wildcards):
        return baseline_metrics_files(config["evaluation"][f"{suite}_testset"])

    return inputs


def all_baseline_metrics(wildcards):
    return [f for testset in TESTSETS for f in baseline_metrics_files(testset)]


def generalisation_baseline_metrics(wildcards):
    """The baselines' metrics on the generalisation matrix's test sets (a row each, whatever the training set)."""
    testsets = package_config.generalisation_settings(config)["testsets"]
    return [f"results/baselines/{name}/metrics/{testset}.json" for name in BASELINES for testset in testsets]


def calibration_metrics(wildcards):
    return [f for testset in package_config.calibration_testsets(config) for f in metrics_files(testset)]


def calibration_ensemble_metrics(wildcards):
    return [f for testset in package_config.calibration_testsets(config) for f in ensemble_metrics_files(testset)]


def all_metrics(wildcards):
    return [f for testset in TESTSETS for f in metrics_files(testset)]


def all_ensemble_metrics(wildcards):
    return [f for testset in TESTSETS for f in ensemble_metrics_files(testset)]


def aggregation_studies(wildcards):
    return expand("results/aggregations/{testset}.json", testset=TESTSETS)


def generalisation_metrics(wildcards):
    """Every cell's metrics, in the order of package_config.generalisation_settings(config)["cells"]."""
    return [generalisation_metrics_file(*cell) for cell in package_config.generalisation_settings(config)["cells"]]


# The kinds of input a catalogued table names (facesleuth.report.catalog.TableSpec.inputs).
REPORT_INPUTS = {
    "dfdc_metrics": dfdc_metrics,
    "celebdf_metrics": celebdf_metrics,
    "precision_histories": precision_histories,
    "precision_metrics": precision_metrics,
    "robustness_predictions": robustness_predictions,
    "dfdc_ensemble_metrics": suite_ensemble_metrics("dfdc"),
    "celebdf_ensemble_metrics": suite_ensemble_metrics("celebdf"),
    "dfdc_baseline_metrics": suite_baseline_metrics("dfdc"),
    "celebdf_baseline_metrics": suite_baseline_metrics("celebdf"),
    "all_baseline_metrics": all_baseline_metrics,
    "generalisation_baseline_metrics": generalisation_baseline_metrics,
    "calibration_metrics": calibration_metrics,
    "calibration_ensemble_metrics": calibration_ensemble_metrics,
    "all_metrics": all_metrics,
    "all_ensemble_metrics": all_ensemble_metrics,
    "aggregation_studies": aggregation_studies,
    "generalisation_metrics": generalisation_metrics,
}


def report_inputs(table):
    """Named input functions of a catalogued table."""
    return {name: REPORT_INPUTS[kind] for name, kind in table.inputs.items()}


def table_report(name, ext):
    return report(
        f"results/tables/{name}.{ext}",
        caption=str(catalog.TABLES[name].caption_file()),
        category="Tables",
        labels={"table": catalog.TABLES[name].number or "not in the thesis", "name": name, "format": ext},
    )


def loss_histories(wildcards):
    return expand("results/models/{model}/{aug}/history.csv", model=MODELS, aug=package_config.loss_setup(config))


def training_split(wildcards):
    return f"results/splits/{TRAINSET}.parquet"


def setup_metrics(setup):
    """Input function: the DFDC metrics of every model under ``setup``."""

    def inputs(wildcards):
        runs = expand("results/models/{model}/{aug}", model=MODELS, aug=setup)
        return metrics_files(config["evaluation"]["dfdc_testset"], runs)

    return inputs


def suite_files(suite, what):
    """Input function: ``what`` (metrics, videos, face_scores, faces) of the ``suite`` test set."""

    def inputs(wildcards):
        testset = config["evaluation"][f"{suite}_testset"]
        if what == "metrics":
            return metrics_files(testset)
        if what == "videos":
            return prediction_files(testset)
        if what == "face_scores":
            return [p.removesuffix(".parquet") + ".faces.parquet" for p in prediction_files(testset)]
        return faces_files(testset)

    return inputs


def figure_report(name):
    return report(
        f"results/figures/{name}.png",
        caption=str(FIGURES[name].caption_file()),
        category="Figures",
        labels={"figure": FIGURES[name].number or "not in the thesis", "name": name},
    )
