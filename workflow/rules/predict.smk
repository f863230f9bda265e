# Trained run x test set -> face and video scores -> metrics; the same for each baseline (config baselines).


rule predict:
    input:
        best="results/models/{model}/{aug}/best.pt",
        faces=testset_faces,
        status=testset_status,
        manifest="results/manifests/{testset}.parquet",
    output:
        videos="results/predictions/{testset}/{model}/{aug}.parquet",
        faces="results/predictions/{testset}/{model}/{aug}.faces.parquet",
    log:
        log_path("predict", "{testset}/{model}/{aug}"),
    benchmark:
        bench_path("predict", "{testset}/{model}/{aug}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        gpu=EVALUATION_GPUS,
    params:
        evaluation=PREDICTION_SETTINGS,
    script:
        "../scripts/predict.py"


rule metrics:
    input:
        predictions="results/predictions/{testset}/{model}/{aug}.parquet",
        threshold="results/models/{model}/{aug}/threshold.json",
        calibration="results/models/{model}/{aug}/calibration.json",
    output:
        "results/metrics/{testset}/{model}/{aug}.json",
    log:
        log_path("metrics", "{testset}/{model}/{aug}"),
    benchmark:
        bench_path("metrics", "{testset}/{model}/{aug}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    script:
        "../scripts/metrics.py"


# A baseline (a published detector's run folder) is scored as a trained run is, on the same faces.
use rule predict as predict_baseline with:
    input:
        unpack(baseline_run),
        faces=testset_faces,
        status=testset_status,
        manifest="results/manifests/{testset}.parquet",
    output:
        videos="results/baselines/{baseline}/predictions/{testset}.parquet",
        faces="results/baselines/{baseline}/predictions/{testset}.faces.parquet",
    log:
        log_path("predict", "baselines/{baseline}/{testset}"),
    benchmark:
        bench_path("predict", "baselines/{baseline}/{testset}")


# Its metrics use its run folder's own threshold: it has no validation threshold of the study.
rule baseline_metrics:
    input:
        predictions="results/baselines/{baseline}/predictions/{testset}.parquet",
        run=lambda wildcards: BASELINE_FILES[wildcards.baseline]["run"],
    output:
        "results/baselines/{baseline}/metrics/{testset}.json",
    log:
        log_path("metrics", "baselines/{baseline}/{testset}"),
    benchmark:
        bench_path("metrics", "baselines/{baseline}/{testset}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    script:
        "../scripts/baseline_metrics.py"
