# Histories, metrics, predictions and face crops -> the thesis's figures (results/figures/<name>.png).
# One rule per figure (train and validation loss share theirs), so asking for one figure runs
# only what it needs. Names, thesis numbers, captions and drawings: facesleuth.report.catalog.
# (FIGURES in common.smk; the DFDC log-loss figures follow the configured setups.)


rule figure_augmentation_examples:
    input:
        split=training_split,
    output:
        png=figure_report("augmentation_examples"),
    log:
        log_path("figures", "augmentation_examples"),
    benchmark:
        bench_path("figures", "augmentation_examples")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        figure=FIGURES["augmentation_examples"].drawing,
        caption=caption_words(FIGURES["augmentation_examples"]),
        settings={
            "setups": SETUPS,
            "input_size": config["training"]["input_size"],
            "augmentations": config["augmentations"],
            "seed": config["training"]["seed"],
        },
    script:
        "../scripts/figures.py"


rule figure_losses:
    input:
        histories=loss_histories,
    output:
        train_loss=figure_report("train_loss"),
        validation_loss=figure_report("validation_loss"),
    log:
        log_path("figures", "losses"),
    benchmark:
        bench_path("figures", "losses")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        figure=FIGURES["train_loss"].drawing,
        caption=caption_words(FIGURES["train_loss"]),
        settings={"models": MODELS, "setup": package_config.loss_setup(config), "validation": VALIDATION},
    script:
        "../scripts/figures.py"


rule figure_precision_epoch_time:
    input:
        histories=precision_histories,
    output:
        png=figure_report("precision_epoch_time"),
    log:
        log_path("figures", "precision_epoch_time"),
    benchmark:
        bench_path("figures", "precision_epoch_time")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        figure=FIGURES["precision_epoch_time"].drawing,
        caption=caption_words(FIGURES["precision_epoch_time"]),
        settings={"precision_study": config.get("precision_study")},
    script:
        "../scripts/figures.py"


# Figs. 3.1, 3.2, 3.7 (DFDC) and 3.10 (Celeb-DF-v2): every grid run's metrics on one test set
# (the ROC figure draws the configured ensembles and baselines too).
for _name, _suite in (("eer", "dfdc"), ("thresholds", "dfdc"), ("dfdc_roc", "dfdc"), ("celebdf_f1", "celebdf")):

    rule:
        name:
            f"figure_{_name}"
        input:
            **(
                {"ensembles": suite_ensemble_metrics(_suite), "baselines": suite_baseline_metrics(_suite)}
                if FIGURES[_name].drawing == "dfdc_roc"
                else {}
            ),
            metrics=suite_files(_suite, "metrics"),
        output:
            png=figure_report(_name),
        log:
            log_path("figures", _name),
        benchmark:
            bench_path("figures", _name)
        conda:
            "../../envs/report.yaml"
        threads: 1
        params:
            figure=FIGURES[_name].drawing,
            caption=caption_words(FIGURES[_name]),
            settings={"models": MODELS, "setups": SETUPS, "validation": VALIDATION},
        script:
            "../scripts/figures.py"


# Figs. 3.3-3.6: DFDC log loss of every model under one setup.
for _setup in SETUPS:

    rule:
        name:
            f"figure_dfdc_logloss_{_setup}"
        input:
            metrics=setup_metrics(_setup),
        output:
            png=figure_report(f"dfdc_logloss_{_setup}"),
        log:
            log_path("figures", f"dfdc_logloss_{_setup}"),
        benchmark:
            bench_path("figures", f"dfdc_logloss_{_setup}")
        conda:
            "../../envs/report.yaml"
        threads: 1
        params:
            figure=FIGURES[f"dfdc_logloss_{_setup}"].drawing,
            caption=caption_words(FIGURES[f"dfdc_logloss_{_setup}"]),
            settings={"models": MODELS, "setup": _setup},
        script:
            "../scripts/figures.py"


# Figs. 3.8, 3.9, 3.11, 3.12: face crops of the videos the best run misclassified.
for _suite, _select_by in (("dfdc", "log_loss"), ("celebdf", "f1_test_eer")):
    for _label in ("fake", "real"):
        _name = f"{_suite}_misclassified_{_label}"

        rule:
            name:
                f"figure_{_name}"
            input:
                metrics=suite_files(_suite, "metrics"),
                videos=suite_files(_suite, "videos"),
                face_scores=suite_files(_suite, "face_scores"),
                faces=suite_files(_suite, "faces"),
            output:
                png=figure_report(_name),
            log:
                log_path("figures", _name),
            benchmark:
                bench_path("figures", _name)
            conda:
                "../../envs/report.yaml"
            threads: 1
            params:
                figure=FIGURES[_name].drawing,
                caption=caption_words(FIGURES[_name]),
                settings={"setups": SETUPS, "label": _label, "select_by": _select_by, "limit": 12},
            script:
                "../scripts/figures.py"


# Robustness suite: AUC against severity, from its table.
rule figure_robustness_auc:
    input:
        table="results/tables/robustness_auc.csv",
    output:
        png=figure_report("robustness_auc"),
    log:
        log_path("figures", "robustness_auc"),
    benchmark:
        bench_path("figures", "robustness_auc")
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        figure=FIGURES["robustness_auc"].drawing,
        caption=caption_words(FIGURES["robustness_auc"]),
        settings={"metric": "auc"},
    script:
        "../scripts/figures.py"
