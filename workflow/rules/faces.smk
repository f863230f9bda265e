# Manifests -> face crops (JPEG bytes in Parquet) and one status row per video, per chunk.


rule extract_faces:
    input:
        manifest="results/manifests/{dataset}.parquet",
    output:
        faces="results/faces/{dataset}/{chunk}.parquet",
        status="results/faces/{dataset}/{chunk}.status.parquet",
    log:
        log_path("faces", "{dataset}/{chunk}"),
    benchmark:
        bench_path("faces", "{dataset}/{chunk}")
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        gpu=DETECTION_GPUS,
    params:
        extraction=extraction_params,
    script:
        "../scripts/extract_faces.py"


rule extraction_summary:
    input:
        manifest="results/manifests/{dataset}.parquet",
        status=dataset_status,
    output:
        status="results/faces/{dataset}/status.parquet",
        summary="results/faces/{dataset}/summary.csv",
    log:
        log_path("faces", "{dataset}/summary"),
    benchmark:
        bench_path("faces", "{dataset}/summary")
    conda:
        "../../envs/extract.yaml"
    threads: 1
    script:
        "../scripts/extraction_summary.py"
