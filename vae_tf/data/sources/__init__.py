"""Data sources behind a small registry (`registry`): one module per source.

Importing this package registers them; `registry.find` asks the named ones first, then
those that serve other names in this order (IDX files, then tensorflow-datasets).
"""

# isort: off  (registration order)
from vae_tf.data.sources import idx, folder, dsprites, tabular, tfds  # noqa: F401
# isort: on
from vae_tf.data.sources.registry import (Request, Source, check, describe, factor_sampler, find, names,
                                          register)

__all__ = ["Request", "Source", "check", "describe", "factor_sampler", "find", "names", "register"]
