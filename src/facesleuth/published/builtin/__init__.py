"""The detectors shipped inside the package: MesoNet's four published checkpoints (Apache-2.0,
LICENSE and NOTICE in each folder), as run folders made by ``facesleuth weights import``, and the
ensemble the scanner and the service use when no ``--model`` is given (:data:`DEFAULT_RUN`).

The default is Meso-4 DF + Meso-4 F2F, their P(fake) averaged: one model per kind of
manipulation MesoNet was trained on (face swap, reenactment); benchmarks/README.md compares
it with each model alone on the sample videos.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILTIN_RUNS: dict[str, Path] = {name: HERE / name for name in
                                 ("Meso4_DF", "Meso4_F2F", "MesoInception_DF", "MesoInception_F2F")}
DEFAULT_RUN = HERE / "default"
DEFAULT_MEMBERS = ("Meso4_DF", "Meso4_F2F")
DEFAULT_METHOD = "mean_probability"
