# Raw dataset folders -> one manifest Parquet per dataset (facesleuth.manifests).


rule manifest:
    input:
        manifest_inputs,
    output:
        "results/manifests/{dataset}.parquet",
    params:
        dataset=lookup(dpath="datasets/{dataset}", within=config),
    log:
        log_path("manifests", "{dataset}"),
    benchmark:
        bench_path("manifests", "{dataset}")
    threads: 1
    conda:
        "../../envs/extract.yaml"
    script:
        "../scripts/manifest.py"
