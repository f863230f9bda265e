# Balanced split -> one trained run per model x augmentation setup (and precision variant).


rule train:
    input:
        split=f"results/splits/{TRAINSET}.parquet",
    output:
        best="results/models/{model}/{aug}/best.pt",
        history="results/models/{model}/{aug}/history.csv",
        run="results/models/{model}/{aug}/run.yaml",
    log:
        log_path("train", "{model}/{aug}"),
    benchmark:
        bench_path("train", "{model}/{aug}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=16000,
    params:
        run=run_settings,
    script:
        "../scripts/train.py"


rule validate:
    # Face and video scores on the validation split, the EER threshold and the calibration
    # temperature chosen on them, kept in the run folder so the scanner and the tables apply the
    # same (the face scores let the scanner choose them again for another aggregation).
    input:
        split=f"results/splits/{TRAINSET}.parquet",
        best="results/models/{model}/{aug}/best.pt",
    output:
        predictions="results/models/{model}/{aug}/validation.parquet",
        faces="results/models/{model}/{aug}/validation.faces.parquet",
        threshold="results/models/{model}/{aug}/threshold.json",
        calibration="results/models/{model}/{aug}/calibration.json",
    log:
        log_path("validate", "{model}/{aug}"),
    benchmark:
        bench_path("validate", "{model}/{aug}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        evaluation=PREDICTION_SETTINGS,
    script:
        "../scripts/validate.py"
