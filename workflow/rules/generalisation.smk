# The generalisation matrix (thesis 3.3): every named training set other than the grid's gets
# its own split (rule splits) and the grid's rules again under results/trainsets/<name>/, so
# each run is trained, validated, and tested on every test set exactly as a grid run is.
# Adding a test set plans only its extraction, predictions and metrics.


use rule train as train_trainset with:
    input:
        split="results/splits/{trainset}.parquet",
    output:
        best="results/trainsets/{trainset}/models/{model}/{aug}/best.pt",
        history="results/trainsets/{trainset}/models/{model}/{aug}/history.csv",
        run="results/trainsets/{trainset}/models/{model}/{aug}/run.yaml",
    log:
        log_path("train", "{trainset}/{model}/{aug}"),
    benchmark:
        bench_path("train", "{trainset}/{model}/{aug}")


use rule validate as validate_trainset with:
    input:
        split="results/splits/{trainset}.parquet",
        best="results/trainsets/{trainset}/models/{model}/{aug}/best.pt",
    output:
        predictions="results/trainsets/{trainset}/models/{model}/{aug}/validation.parquet",
        faces="results/trainsets/{trainset}/models/{model}/{aug}/validation.faces.parquet",
        threshold="results/trainsets/{trainset}/models/{model}/{aug}/threshold.json",
        calibration="results/trainsets/{trainset}/models/{model}/{aug}/calibration.json",
    log:
        log_path("validate", "{trainset}/{model}/{aug}"),
    benchmark:
        bench_path("validate", "{trainset}/{model}/{aug}")


use rule predict as predict_trainset with:
    input:
        best="results/trainsets/{trainset}/models/{model}/{aug}/best.pt",
        faces=testset_faces,
        status=testset_status,
        manifest="results/manifests/{testset}.parquet",
    output:
        videos="results/trainsets/{trainset}/predictions/{testset}/{model}/{aug}.parquet",
        faces="results/trainsets/{trainset}/predictions/{testset}/{model}/{aug}.faces.parquet",
    log:
        log_path("predict", "{trainset}/{testset}/{model}/{aug}"),
    benchmark:
        bench_path("predict", "{trainset}/{testset}/{model}/{aug}")


use rule metrics as metrics_trainset with:
    input:
        predictions="results/trainsets/{trainset}/predictions/{testset}/{model}/{aug}.parquet",
        threshold="results/trainsets/{trainset}/models/{model}/{aug}/threshold.json",
        calibration="results/trainsets/{trainset}/models/{model}/{aug}/calibration.json",
    output:
        "results/trainsets/{trainset}/metrics/{testset}/{model}/{aug}.json",
    log:
        log_path("metrics", "{trainset}/{testset}/{model}/{aug}"),
    benchmark:
        bench_path("metrics", "{trainset}/{testset}/{model}/{aug}")


rule figure_generalisation_auc:
    input:
        metrics=generalisation_metrics,
    output:
        png=figure_report("generalisation_auc"),
    log:
        log_path("figures", "generalisation_auc"),
    benchmark:
        bench_path("figures", "generalisation_auc")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        figure=FIGURES["generalisation_auc"].drawing,
        caption=caption_words(FIGURES["generalisation_auc"]),
        settings={"generalisation": package_config.generalisation_settings(config)},
    script:
        "../scripts/figures.py"
