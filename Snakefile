# facesleuth: the study of thesis.txt as a workflow. This file is a table of contents only;
# the rules live in workflow/rules/, the logic in src/facesleuth/.
from snakemake.utils import min_version

min_version("9.0")


# The embedded demo is the default; --configfile config/thesis.yaml replaces it rather than
# being merged into it (Snakemake merges every configfile it reads, and demo settings such as
# demo.enabled must not leak into the study).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/manifests.smk"
include: "workflow/rules/faces.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/robustness.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/report_inputs.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/generalisation.smk"
include: "workflow/rules/tracking.smk"


rule all:
    default_target: True
    input:
        all_tables(),
        all_figures(),
        extraction_summaries(),
        ensemble_targets(),
        baseline_targets(),
