"""Stage 4: metrics -> tables and figures of the thesis."""
