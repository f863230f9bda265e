"""facesleuth: detect manipulated faces in video.

A reproducible Snakemake pipeline for the study in the thesis "Studying deep learning models
for manipulated face detection" (DFDC -> Celeb-DF-v2) and a scanner built on its trained runs.
All logic lives in this package; the workflow's scripts are thin wrappers around it.
"""

__version__ = "0.1.0"
