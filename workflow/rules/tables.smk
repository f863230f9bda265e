# Metrics, histories and models -> the thesis's tables (results/tables/<name>.csv + .md).
# One rule per table, so `snakemake results/tables/<name>.csv` runs only what that table needs.
# The rules are made from facesleuth.report.catalog.TABLES: a new table is an entry there, its
# builder and its caption file.


for _table in catalog.TABLES.values():

    rule:
        name:
            f"table_{_table.name}"
        input:
            **report_inputs(_table),
        output:
            csv=table_report(_table.name, "csv"),
            md=table_report(_table.name, "md"),
        log:
            log_path("tables", _table.name),
        benchmark:
            bench_path("tables", _table.name)
        conda:
            "../../envs/report.yaml"
        threads: 1
        params:
            table=_table.name,
            settings=_table.rule_settings(config),
            caption=caption_words(_table),
        script:
            "../scripts/tables.py"
