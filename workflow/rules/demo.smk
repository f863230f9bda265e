# The embedded demo dataset: DFDC-, DFDC-test- and Celeb-DF-v2-style folders generated from
# public-domain photos shipped inside the dependencies (see facesleuth.demo).


rule demo_dataset:
    output:
        demo_flag(),
    params:
        demo=config["demo"],
    log:
        log_path("demo", "demo_dataset"),
    benchmark:
        bench_path("demo", "demo_dataset")
    threads: 2  # train parts and test sets in parallel processes (fewer where fewer cores)
    conda:
        "../../envs/extract.yaml"
    script:
        "../scripts/demo_dataset.py"
