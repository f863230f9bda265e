# The embedded demo dataset: DFDC-, DFDC-test- and Celeb-DF-v2-style folders generated from
# public-domain photos shipped inside the dependencies (see facesleuth.demo).


rule demo_dataset:
    output:
        demo_flag(),
    log:
        log_path("demo", "demo_dataset"),
    benchmark:
        bench_path("demo", "demo_dataset")
    conda:
        "../../envs/extract.yaml"
    threads: 2  # train parts and test sets in parallel processes (fewer where fewer cores)
    params:
        demo=config["demo"],
    script:
        "../scripts/demo_dataset.py"
