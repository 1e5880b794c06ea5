"""`python -m vae_tf ARGS` is `vae-tf ARGS`."""

from vae_tf.cli import console_main

console_main()
