"""Stage 3: runs -> predictions -> metrics. Prediction, metrics, calibration, ensembles, studies, robustness."""
