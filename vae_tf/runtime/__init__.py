"""Runtime plumbing: devices, precision, distribution, files and the private Keras uses."""
