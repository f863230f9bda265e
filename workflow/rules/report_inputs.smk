# Input functions and output helpers of the table_* and figure_* rules (tables.smk,
# figures.smk), kept apart from the rules as common.smk keeps the others'.


def dfdc_metrics(wildcards):
    return metrics_files(config["evaluation"]["dfdc_testset"])


def celebdf_metrics(wildcards):
    return metrics_files(config["evaluation"]["celebdf_testset"])


def precision_histories(wildcards):
    return [f"{run}/history.csv" for run in precision_runs()]


def precision_metrics(wildcards):
    return metrics_files(config["evaluation"]["dfdc_testset"], precision_runs())


def table_report(name, ext):
    return report(
        f"results/tables/{name}.{ext}",
        caption=f"../report/tables/{name}.rst",
        category="Tables",
        labels={"table": TABLES[name], "name": name, "format": ext},
    )


def loss_setup():
    """Figs. 2.13-2.14 show the default setup, or the first configured one without it."""
    return "default" if "default" in SETUPS else SETUPS[0]


def loss_histories(wildcards):
    return expand("results/models/{model}/{aug}/history.csv", model=MODELS, aug=loss_setup())


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
        caption=f"../report/figures/{name}.rst",
        category="Figures",
        labels={"figure": FIGURES[name], "name": name},
    )
