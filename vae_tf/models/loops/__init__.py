"""Training loops: input checks, the compiled loop and the worker loop."""
