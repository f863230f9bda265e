# Train-flow faces -> balanced train/validation split, by video (and identity), no leaks.


rule splits:
    input:
        faces=split_faces,
        status=split_status,
        # group and original of each video (status and faces do not carry them)
        manifests=expand("results/manifests/{dataset}.parquet", dataset=config["splits"]["train_datasets"]),
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
        splits=config["splits"],
    script:
        "../scripts/splits.py"
