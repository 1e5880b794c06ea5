"""A training run: configuration to data, model, fit, evaluation, plots and export; its directory, lock, checkpoints and callbacks."""
