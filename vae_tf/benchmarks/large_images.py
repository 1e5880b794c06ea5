"""The large-image benchmark: a conv VAE on 250×250×3 JPEG files streamed from a folder.

The benchmark writes the JPEG files itself (smooth synthetic pictures, so they compress
like photographs) into a temporary directory, loads them with
`load_data("folder", ...)` as `vae-tf train --dataset folder` does, and reports in one
process the training images/s, the images/s of the same input pipeline iterated without
training, and the process's peak resident memory. Each file count runs in its own
process because peak RSS is per process: equal figures for 1,000 and 2,000 files show
that memory does not grow with the number of files.
"""

import logging
import os
import pathlib
import tempfile
import time

import numpy as np

log = logging.getLogger(__name__)

IMAGE_SIZE = (250, 250)
BATCH_SIZE = 32
STEPS_PER_EPOCH = 4
FILE_COUNTS = (1000, 2000)
# Three stride-2 convolutions take 250×250 to 32×32×128 before the latent heads.
MODEL = dict(kind="vae", arch="conv", latent_dim=64, filters=(32, 64, 128))
_JPEG_QUALITY = 90


def write_jpegs(directory, count, seed=0):
    """Writes `count` 250×250 RGB JPEG files: a smooth random colour field with an ellipse.

    Args:
        directory: str or Path. An existing directory to write into.
        count: int. Number of files.
        seed: int. Seed of the pictures. Defaults to 0.

    Returns:
        The total size of the files in bytes.
    """
    from PIL import Image, ImageDraw

    rng, total = np.random.default_rng(seed), 0
    height, width = IMAGE_SIZE
    for index in range(count):
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        x0, y0 = rng.integers(0, width // 2, 2)
        size = rng.integers(width // 8, width // 2, 2)
        ImageDraw.Draw(picture).ellipse((x0, y0, x0 + size[0], y0 + size[1]),
                                        fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        path = pathlib.Path(directory) / f"{index:05d}.jpg"
        picture.save(path, quality=_JPEG_QUALITY)
        total += path.stat().st_size
    return total


def _pipeline_pass(dataset):
    """(images, images/s) of one full pass over `dataset`; the first batch, which starts
    the pipeline, is counted but not timed."""
    iterator = iter(dataset)
    first = int(next(iterator)[0].shape[0])
    images, start = 0, time.perf_counter()
    for batch, _ in iterator:
        images += int(batch.shape[0])
    if not images:
        raise ValueError(f"the pipeline rate needs at least two batches of {BATCH_SIZE} training "
                         f"images, got {first} images: use more --large-files")
    return first + images, images / (time.perf_counter() - start)


def measure(files, epochs=3, cache=0, steps=STEPS_PER_EPOCH):
    """Trains the conv VAE on `files` generated JPEG files in this process.

    Args:
        files: int. Number of JPEG files to write (80% of them form the training split).
        epochs: int. Timed training epochs of `steps` batches, after one warm-up epoch.
            Defaults to 3.
        cache: int. `load_data`'s cache budget in MiB. Defaults to 0 (stream every epoch).
        steps: int. Batches per timed epoch. Defaults to 4.

    Returns:
        A JSON-ready dict: `images_per_s` (training, median epoch, in `vae-tf train`'s
        default dtype policy, `policy`), `pipeline_images_per_s`
        (one pass of the training pipeline without training), their ratio, `peak_rss_mib`,
        the number of files and training images, their size on disk and the cached splits.
    """
    import keras

    from vae_tf.benchmarks.throughput import EpochTimer, peak_rss_mib
    from vae_tf.data import load_data
    from vae_tf.models.factory import make_model
    from vae_tf.runtime.precision import dtype_policy, policy_name

    with tempfile.TemporaryDirectory(prefix="vae-tf-large-") as folder:
        start = time.perf_counter()
        jpeg_bytes = write_jpegs(folder, files)
        log.info("large: wrote %d JPEG files (%.1f MiB) in %.1f s", files, jpeg_bytes / 2**20,
                 time.perf_counter() - start)
        splits = load_data("folder", data_dir=folder, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
                           validation_fraction=0.0, cache=cache)
        train_images, pipeline = _pipeline_pass(splits.train)
        policy = policy_name(None, convolutional=True)  # vae-tf train's default for it
        with dtype_policy(policy):
            model = make_model(input_shape=(*IMAGE_SIZE, 3), seed=0, **MODEL)
        # One step per execution so that an epoch can be a few batches (a conv step is
        # long enough that more steps per execution gain nothing).
        model.compile(steps_per_execution=1)
        timer = EpochTimer()
        model.fit(splits.train.repeat(), epochs=1 + epochs, steps_per_epoch=steps, callbacks=[timer],
                  verbose=0)
        training = steps * BATCH_SIZE / float(np.median(timer.seconds[1:]))
        keras.backend.clear_session()
    return {
        "files": files,
        "train_images": train_images,
        "jpeg_mib": jpeg_bytes / 2**20,
        "cache_mib": cache,
        "cached": list(splits.cached),
        "policy": policy,
        "images_per_s": training,
        "pipeline_images_per_s": pipeline,
        "pipeline_ratio": pipeline / training,
        "peak_rss_mib": peak_rss_mib(),
        "load_average": os.getloadavg(),
    }


def run(file_counts=FILE_COUNTS, epochs=3, cache=0, steps=STEPS_PER_EPOCH):
    """`measure` once per file count, each in a fresh Python process (peak RSS is per process).

    Args:
        file_counts: tuple of int. Numbers of files to compare. Defaults to (1000, 2000).
        epochs, cache, steps: as in `measure`.

    Returns:
        A JSON-ready dict: the image size, batch, model and a list of `measure` results.
    """
    from vae_tf.benchmarks.throughput import in_fresh_process

    runs = []
    for files in file_counts:
        log.info("large: %d files in a new process", files)
        runs.append(in_fresh_process("vae_tf.benchmarks.large_images:measure", files=files, epochs=epochs, cache=cache,
                                     steps=steps))
    return {"image_shape": [*IMAGE_SIZE, 3], "batch_size": BATCH_SIZE, "steps_per_epoch": steps,
            "timed_epochs": epochs, "model": MODEL, "runs": runs}


def format_table(results):
    """The results as a plain-text table."""
    shape = "×".join(str(s) for s in results["image_shape"])
    lines = [f"large: conv VAE {results['model']['filters']}, latent {results['model']['latent_dim']}, "
             f"on {shape} JPEG files, batch {results['batch_size']}, median of "
             f"{results['timed_epochs']} epochs of {results['steps_per_epoch']} batches",
             f"{'files':>6} {'JPEG MiB':>8} {'cached':>14} {'train img/s':>11} {'pipeline img/s':>14} "
             f"{'ratio':>6} {'peak RSS':>9} {'load':>5}  dtype policy"]
    for r in results["runs"]:
        lines.append(f"{r['files']:>6} {r['jpeg_mib']:>8.1f} {', '.join(r['cached']) or 'nothing':>14} "
                     f"{r['images_per_s']:>11.1f} {r['pipeline_images_per_s']:>14.0f} "
                     f"{r['pipeline_ratio']:>5.1f}x {r['peak_rss_mib']:>5.0f} MiB {r['load_average'][0]:>5.2f}  "
                     f"{r['policy']}")
    return "\n".join(lines)

