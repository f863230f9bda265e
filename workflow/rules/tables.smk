# Metrics, histories and models -> the thesis's tables (results/tables/<name>.csv + .md).
# One rule per table, so `snakemake results/tables/<name>.csv` runs only what that table needs.
# Names and thesis numbers: TABLES in common.smk.


include: "report_inputs.smk"


rule table_params:
    output:
        csv=table_report("params", "csv"),
        md=table_report("params", "md"),
    params:
        table="params",
        settings={"models": MODELS, "dropout": config["training"]["dropout"]},
    log:
        log_path("tables", "params"),
    benchmark:
        bench_path("tables", "params")
    threads: 1
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/tables.py"


rule table_precision:
    input:
        histories=precision_histories,
        metrics=precision_metrics,
    output:
        csv=table_report("precision", "csv"),
        md=table_report("precision", "md"),
    params:
        table="precision",
        settings={"precision_study": config.get("precision_study")},
    log:
        log_path("tables", "precision"),
    benchmark:
        bench_path("tables", "precision")
    threads: 1
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/tables.py"


rule table_dfdc_logloss:
    input:
        metrics=dfdc_metrics,
    output:
        csv=table_report("dfdc_logloss", "csv"),
        md=table_report("dfdc_logloss", "md"),
    params:
        table="dfdc_logloss",
        settings={"models": MODELS, "setups": SETUPS},
    log:
        log_path("tables", "dfdc_logloss"),
    benchmark:
        bench_path("tables", "dfdc_logloss")
    threads: 1
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/tables.py"


# Tables 3.2-3.5: the same inputs, one rule each so every table has its own caption.
for _label in ("fake", "real"):
    for _kind in ("distractor", "augmenter"):
        _name = f"dfdc_{_label}_errors_by_{_kind}"

        rule:
            name:
                f"table_{_name}"
            input:
                metrics=dfdc_metrics,
            output:
                csv=table_report(_name, "csv"),
                md=table_report(_name, "md"),
            params:
                table=_name,
                settings={"models": MODELS, "setups": SETUPS},
            log:
                log_path("tables", _name),
            benchmark:
                bench_path("tables", _name)
            threads: 1
            conda:
                "../../envs/report.yaml"
            script:
                "../scripts/tables.py"


rule table_celebdf_sensitivity_specificity:
    input:
        metrics=celebdf_metrics,
    output:
        csv=table_report("celebdf_sensitivity_specificity", "csv"),
        md=table_report("celebdf_sensitivity_specificity", "md"),
    params:
        table="celebdf_sensitivity_specificity",
        settings={"models": MODELS, "setups": SETUPS},
    log:
        log_path("tables", "celebdf_sensitivity_specificity"),
    benchmark:
        bench_path("tables", "celebdf_sensitivity_specificity")
    threads: 1
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/tables.py"


rule table_celebdf_f1:
    input:
        metrics=celebdf_metrics,
    output:
        csv=table_report("celebdf_f1", "csv"),
        md=table_report("celebdf_f1", "md"),
    params:
        table="celebdf_f1",
        settings={"models": MODELS, "setups": SETUPS},
    log:
        log_path("tables", "celebdf_f1"),
    benchmark:
        bench_path("tables", "celebdf_f1")
    threads: 1
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/tables.py"
