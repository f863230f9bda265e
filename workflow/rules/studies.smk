# Studies beyond the thesis (its discussion, 3.3), each made from outputs the grid already has,
# so adding one reruns only its own jobs: the aggregation study re-aggregates the stored face
# scores; an ensemble joins its members' stored video scores. (Calibration needs no rule of its
# own: validate fits each run's temperature, metrics applies it.)


rule aggregation_study:
    # every grid run's face scores on one test set -> video log loss and AUC per aggregation
    input:
        face_scores=lambda wildcards: [
            path.removesuffix(".parquet") + ".faces.parquet" for path in prediction_files(wildcards.testset)
        ],
        status=testset_status,
        manifest="results/manifests/{testset}.parquet",
    output:
        "results/aggregations/{testset}.json",
    log:
        log_path("aggregations", "{testset}"),
    benchmark:
        bench_path("aggregations", "{testset}")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        aggregations=config["evaluation"]["aggregations"],
        no_face_score=PREDICTION_SETTINGS["no_face_score"],
    script:
        "../scripts/aggregation_study.py"


rule ensemble_validate:
    # the members' validation video scores joined -> the ensemble's threshold and temperature
    input:
        validation=lambda wildcards: [f"{run}/validation.parquet" for run in ensemble_runs(wildcards.ensemble)],
    output:
        spec="results/ensembles/{ensemble}/ensemble.yaml",
        predictions="results/ensembles/{ensemble}/validation.parquet",
        threshold="results/ensembles/{ensemble}/threshold.json",
        calibration="results/ensembles/{ensemble}/calibration.json",
    log:
        log_path("ensembles", "{ensemble}/validate"),
    benchmark:
        bench_path("ensembles", "{ensemble}/validate")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        runs=lambda wildcards: ensemble_runs(wildcards.ensemble),
        method=lambda wildcards: ENSEMBLES[wildcards.ensemble]["method"],
        aggregation=PREDICTION_SETTINGS["aggregation"],
        # ensembles join grid runs, which validate on VALIDATION
        validation=VALIDATION,
    script:
        "../scripts/ensemble_validate.py"


rule ensemble_test:
    # the members' video scores on one test set joined -> the ensemble's predictions and metrics
    input:
        predictions=lambda wildcards: prediction_files(wildcards.testset, ensemble_runs(wildcards.ensemble)),
        threshold="results/ensembles/{ensemble}/threshold.json",
        calibration="results/ensembles/{ensemble}/calibration.json",
    output:
        predictions="results/ensembles/{ensemble}/predictions/{testset}.parquet",
        metrics="results/ensembles/{ensemble}/metrics/{testset}.json",
    log:
        log_path("ensembles", "{ensemble}/{testset}"),
    benchmark:
        bench_path("ensembles", "{ensemble}/{testset}")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        runs=lambda wildcards: ENSEMBLES[wildcards.ensemble]["runs"],
        method=lambda wildcards: ENSEMBLES[wildcards.ensemble]["method"],
    script:
        "../scripts/ensemble_test.py"
