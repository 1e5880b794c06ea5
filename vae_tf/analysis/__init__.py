"""What a trained model tells: likelihoods, anomaly scores, disentanglement, sample quality
(and its feature classifier), samplers, plots, the projector."""
