"""tensorflow-datasets by name: every image data set it has, with `data_dir` passed through."""

import tensorflow as tf

from vae_tf.data.sources.registry import TEST_FRACTION, RawSplits, Source, register


def _builder(name, data_dir):
    """The prepared builder of `name`, or ValueError saying what to do instead."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"unknown data set {name!r}: give a tensorflow-datasets image data set, "
            f"'idx' or 'folder' (with --data-dir)"
        ) from error
    if "image" not in builder.info.features:
        raise ValueError(f"tensorflow-datasets {name!r} has no 'image' feature")
    try:
        builder.download_and_prepare()
    except Exception as error:
        hint = (
            "install the Debian package (apt-get install dataset-fashion-mnist) or pass "
            "--data-dir with its IDX files"
            if name == "fashion_mnist"
            else "pass --data-dir with the prepared data, or use --dataset idx/folder"
        )
        raise ValueError(f"cannot load {name!r} from tensorflow-datasets ({error}); {hint}") from error
    return builder


def _read(request):
    name, image_size = request.dataset, request.image_size
    builder = _builder(name, request.data_dir)
    features = builder.info.features
    has_label = "label" in features
    num_classes = features["label"].num_classes if has_label else None
    class_names = tuple(features["label"].names) if has_label else None
    # Percent slices of "train": [test (only if no test split)][validation][train].
    test_percent = 0 if "test" in builder.info.splits else int(100 * TEST_FRACTION)
    validation_percent = int(round(100 * request.validation_fraction))
    start = test_percent + validation_percent
    test_split = "test" if not test_percent else f"train[:{test_percent}%]"
    validation_split = f"train[{test_percent}%:{start}%]" if validation_percent else None
    train_split = f"train[{start}%:]"

    def convert(example):
        image = tf.cast(example["image"], tf.float32) / 255.0
        if image_size is not None:
            image = tf.image.resize(image, image_size)
        label = tf.cast(example["label"], tf.int32) if has_label else tf.constant(-1, tf.int32)
        return image, label

    def split(spec):
        return builder.as_dataset(split=spec, shuffle_files=False).map(
            convert, num_parallel_calls=tf.data.AUTOTUNE
        )

    image_shape = features["image"].shape
    if image_size is not None:
        image_shape = (*image_size, image_shape[-1])
    return RawSplits(
        split(train_split),
        split(validation_split) if validation_split else None,
        split(test_split),
        tuple(image_shape),
        num_classes,
        f"tensorflow-datasets {name!r}",
        class_names,
    )


# Asked last: it serves every name no other source does.
SOURCE = register(Source(
    name=None, help="a tensorflow-datasets image data set (fashion_mnist reads the Debian package "
                    "when installed)",
    read=_read, serves=lambda dataset, data_dir: True,
))
