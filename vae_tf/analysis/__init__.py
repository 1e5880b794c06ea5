"""What a trained model tells: likelihoods, anomaly scores, disentanglement, samplers, plots, the projector."""
