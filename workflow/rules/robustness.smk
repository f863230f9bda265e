# The robustness suite (config robustness): each test set x perturbation is perturbed chunk by
# chunk into temporary lossless videos, extracted once with the test set's own settings (the
# faces are kept, the videos deleted), and scored by each selected run. Tables robustness_auc
# and robustness_logloss (tables.smk) and the figure robustness_auc (figures.smk) gather them.


rule perturb_videos:
    input:
        manifest="results/manifests/{testset}.parquet",
    output:
        videos=temp(directory("results/robustness/videos/{testset}/{perturbation}/{chunk}")),
        manifest="results/robustness/manifests/{testset}/{perturbation}/{chunk}.parquet",
    log:
        log_path("robustness", "perturb/{testset}/{perturbation}/{chunk}"),
    benchmark:
        bench_path("robustness", "perturb/{testset}/{perturbation}/{chunk}")
    conda:
        "../../envs/extract.yaml"
    threads: 1
    params:
        chunks=perturbed_chunks,
        seed=robustness_seed,
    script:
        "../scripts/perturb_videos.py"


rule extract_perturbed_faces:
    input:
        manifest="results/robustness/manifests/{testset}/{perturbation}/{chunk}.parquet",
        videos="results/robustness/videos/{testset}/{perturbation}/{chunk}",
    output:
        faces="results/robustness/faces/{testset}/{perturbation}/{chunk}.parquet",
        status="results/robustness/faces/{testset}/{perturbation}/{chunk}.status.parquet",
    log:
        log_path("robustness", "faces/{testset}/{perturbation}/{chunk}"),
    benchmark:
        bench_path("robustness", "faces/{testset}/{perturbation}/{chunk}")
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        gpu=DETECTION_GPUS,
    params:
        extraction=perturbed_extraction_params,
    script:
        "../scripts/extract_faces.py"


rule predict_perturbed:
    input:
        best="results/models/{model}/{aug}/best.pt",
        faces=perturbed_faces,
        status=perturbed_status,
        manifest="results/manifests/{testset}.parquet",
    output:
        videos="results/robustness/predictions/{testset}/{perturbation}/{model}/{aug}.parquet",
        faces="results/robustness/predictions/{testset}/{perturbation}/{model}/{aug}.faces.parquet",
    log:
        log_path("robustness", "predict/{testset}/{perturbation}/{model}/{aug}"),
    benchmark:
        bench_path("robustness", "predict/{testset}/{perturbation}/{model}/{aug}")
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


use rule predict_perturbed as predict_perturbed_baseline with:
    input:
        unpack(baseline_run),
        faces=perturbed_faces,
        status=perturbed_status,
        manifest="results/manifests/{testset}.parquet",
    output:
        videos="results/baselines/{baseline}/robustness/{testset}/{perturbation}.parquet",
        faces="results/baselines/{baseline}/robustness/{testset}/{perturbation}.faces.parquet",
    log:
        log_path("robustness", "predict/{testset}/{perturbation}/baselines/{baseline}"),
    benchmark:
        bench_path("robustness", "predict/{testset}/{perturbation}/baselines/{baseline}")
