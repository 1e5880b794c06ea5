"""A training run and what is done with it afterwards, one function per command.

`training` (config -> data -> model -> fit -> evaluation -> plots), `run` (its directory),
`runlock`, `checkpoints`, `preemption`, `callbacks`; then, on a finished run: `artefacts` (evaluate,
plot, encode), `exporting`, `sampling` (latent mixture, samples, VQ-VAE prior), `scoring`
(anomaly score tables, calibration), `ood`, `disentanglement`, `sample_quality` (with
the feature classifier's cache, `classifier_cache`); `sources` says which examples they read.
"""
