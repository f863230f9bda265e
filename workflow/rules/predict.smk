# Trained run x test set -> face and video scores -> metrics.


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
