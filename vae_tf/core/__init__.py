"""Building blocks: layers, likelihoods, priors, networks and optimizers."""
