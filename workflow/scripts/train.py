"""Rule train: balanced split -> one trained run (best.pt, last.pt, history.csv, run.yaml).

With training.gpus > 1 the package starts torchrun itself (one process per GPU); a killed job
resumes from the run folder's last.pt when it is rerun.
"""

from pathlib import Path

from facesleuth.runtime import setup_logging
from facesleuth.train.loop import train_or_launch

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

summary = train_or_launch(
    snakemake.input.split,  # noqa: F821
    Path(snakemake.output.best).parent,  # noqa: F821
    dict(snakemake.params.run),  # noqa: F821
    log_path=snakemake.log[0],  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    # splits.validation_dataset's faces files; none (or another training set's job): the split's hold-out
    validation_faces=list(getattr(snakemake.input, "validation", [])),  # noqa: F821
)
log.info("best epoch %s, validation loss %.4f", summary["best_epoch"], summary["best_val_loss"])
