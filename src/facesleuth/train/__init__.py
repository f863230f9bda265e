"""Stage 2: faces -> splits -> trained runs. Splits, backbones, augmentation, data loading, the training loop."""
