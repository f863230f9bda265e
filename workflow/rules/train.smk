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
    # Video scores on the validation split and the EER threshold chosen on them, kept in the
    # run folder so the scanner and the tables apply the same threshold.
    input:
        split=f"results/splits/{TRAINSET}.parquet",
        best="results/models/{model}/{aug}/best.pt",
    output:
        predictions="results/models/{model}/{aug}/validation.parquet",
        threshold="results/models/{model}/{aug}/threshold.json",
    log:
        log_path("validate", "{model}/{aug}"),
    benchmark:
        bench_path("validate", "{model}/{aug}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        evaluation=config["evaluation"],
    script:
        "../scripts/validate.py"
