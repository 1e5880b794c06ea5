"""tf.data pipelines from IDX files, tensorflow-datasets, image folders, generated dSprites
and tables of numeric records.

`load_data` returns batched train / validation / test datasets of `(image, label)`
pairs (images float32 in [0, 1], shape (H, W, C); a table's records float32 (F,) in raw
units; labels int32, -1 when the source has none), built as map -> cache -> shuffle ->
batch -> prefetch with the global batch size (`pipeline`). A training split read into
memory whole (IDX files, tensorflow-datasets, tables) is also offered as tensors with
batches of shuffled indices (`IndexedBatches`): the same batches.

Where the examples come from is a source (`sources`, one module each, behind a small
registry); `dsprites` generates dSprites and its RGB variants and `tabular` reads tables.
"""

from vae_tf.data.load import VALIDATION_FRACTION, DataSplits, load_data
from vae_tf.data.pipeline import BINARIZE, IndexedBatches, cache_plan, read_ahead, training_pipelines
from vae_tf.data.sources.folder import COLOR_MODES
from vae_tf.data.sources.idx import DEBIAN_FASHION_MNIST, has_idx_files, load_idx_directory, read_idx

__all__ = [
    "BINARIZE", "COLOR_MODES", "DEBIAN_FASHION_MNIST", "VALIDATION_FRACTION",
    "DataSplits", "IndexedBatches", "cache_plan", "has_idx_files", "load_data", "load_idx_directory",
    "read_ahead", "read_idx", "training_pipelines",
]
