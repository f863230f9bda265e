# Raw dataset folders -> one manifest Parquet per dataset (facesleuth.manifests).


rule manifest:
    input:
        manifest_inputs,
    output:
        "results/manifests/{dataset}.parquet",
    log:
        log_path("manifests", "{dataset}"),
    benchmark:
        bench_path("manifests", "{dataset}")
    conda:
        "../../envs/extract.yaml"
    threads: 1
    params:
        dataset=lookup(dpath="datasets/{dataset}", within=config),
    script:
        "../scripts/manifest.py"
