# Train-flow faces -> balanced train/validation split, by video (and identity), no leaks.


rule splits:
    input:
        faces=split_faces,
        status=split_status,
        # group and original of each video (status and faces do not carry them)
        manifests=split_manifests,
    output:
        split="results/splits/{trainset}.parquet",
        summary="results/splits/{trainset}.summary.csv",
    log:
        log_path("splits", "{trainset}"),
    benchmark:
        bench_path("splits", "{trainset}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        splits=split_settings,
    script:
        "../scripts/splits.py"
