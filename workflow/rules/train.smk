# Balanced split -> one trained run per model x augmentation setup (and precision variant).
# Validation (loss per epoch, best epoch, EER threshold): splits.validation_dataset's test-flow
# faces when configured (DFDC's validation set, as in the thesis), else the split's hold-out.


rule train:
    input:
        split=f"results/splits/{TRAINSET}.parquet",
        validation=validation_faces,
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
        gpu=TRAINING_GPUS,
    params:
        run=run_settings,
    script:
        "../scripts/train.py"


rule validate:
    # Face and video scores on the validation data (splits.validation_dataset's test-flow faces,
    # or the split's hold-out), the EER threshold and the calibration temperature chosen on them,
    # kept in the run folder so the scanner and the tables apply the same (the face scores let
    # the scanner choose them again for another aggregation).
    input:
        unpack(validation_inputs),
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
    resources:
        gpu=EVALUATION_GPUS,
    params:
        evaluation=PREDICTION_SETTINGS,
        validation=validation_of,
    script:
        "../scripts/validate.py"
