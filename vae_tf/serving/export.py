"""SavedModel export for serving: named signatures, TF Serving layout, atomic writes.

`export_saved_model` writes `export_root/NAME/VERSION/`, a SavedModel that loads with
plain `tf.saved_model.load` (no vae_tf, no Keras objects) and serves the signatures the
model gives (`model.export_signatures`, e.g. `vae_tf.models.signatures`), each taking
named inputs and returning a dict of named outputs, and bounds `sample`'s `num_samples`
by `MAX_SAMPLES`. Every family but the VQ-VAE serves:

    serving_default, reconstruct   images [, labels] -> reconstructions, z_mean, z_log_var (AE: z)
    encode                         images [, labels] -> z_mean, z_log_var (AE: z)
    decode                         z [, labels]      -> images
    sample (with a prior or a latent sampler)  num_samples, seed [, labels] -> images
    score                          images [, labels] -> neg_elbo (AE: reconstruction NLL)
    anomaly (a calibrated run)     images [, labels] -> score, is_anomaly

A model of a table's records (`model.input_name == "features"`) names `images`
`features` throughout: float32 (None, F) raw, unscaled records in, records out.

A VQ-VAE serves encode (images -> integer codes), decode (codes -> images),
reconstruct, score and, with a prior, sample (`VQVAE.export_signatures`).
"""

import logging
import os
import pathlib
import shutil

import keras
import tensorflow as tf

from vae_tf.models.signatures import SCORE_SEED  # noqa: F401  (the `score` signature's seed, named here for servers)
from vae_tf.testing.faults import kill_point
from vae_tf.runtime.files import temporary_directory, writing
from vae_tf.runtime.names import check_name
from vae_tf.runtime.precision import float32_copy

log = logging.getLogger(__name__)

MAX_SAMPLES = 10_000  # largest num_samples the `sample` signature accepts
EXPORT_ROOT = "saved_models"  # the default root of the TF Serving layout


def _next_version(model_dir):
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def bounded_sample(function, specs):
    """The model's `sample` signature function, refusing num_samples outside
    [1, MAX_SAMPLES] before it draws anything."""

    def bounded(num_samples):
        with tf.control_dependencies([
            tf.debugging.assert_positive(num_samples, message="num_samples must be >= 1"),
            tf.debugging.assert_less_equal(num_samples, MAX_SAMPLES,
                                           message=f"num_samples must be <= {MAX_SAMPLES}"),
        ]):
            return tf.identity(num_samples)

    if len(specs) == 3:  # conditional: num_samples, seed, labels
        def sample(num_samples, seed, labels):
            return function(bounded(num_samples), seed, labels)
    else:
        def sample(num_samples, seed):
            return function(bounded(num_samples), seed)
    return sample


def anomaly_signature(model, record):
    """The `anomaly` signature of a calibrated run: (function, input specs).

    Args:
        model: a vae_tf model.
        record: dict. A `vae_tf.analysis.anomaly.calibrate` record (score name, threshold, options).

    Returns:
        A function images [, labels] -> {"score", "is_anomaly"} computing the calibrated
        score in TensorFlow ops (`vae_tf.analysis.anomaly.score_graph`), and its input specs.
    """
    from vae_tf.analysis.anomaly import score_graph

    anomaly_score = score_graph(model, record)  # refuses a score a graph cannot compute
    threshold = float(record["threshold"])
    image_shape = tuple(model.image_shape)
    specs = [tf.TensorSpec((None, *image_shape), tf.float32, name=model.input_name)]
    if model.is_conditional:
        specs.append(tf.TensorSpec((None,), tf.int32, name="labels"))

    def flag_anomalies(images, labels=None):
        values = anomaly_score(tf.ensure_shape(images, (None, *image_shape)), labels)
        return {"score": values, "is_anomaly": values > threshold}

    return flag_anomalies, specs


def _write_tflite_decoder(saved_model_dir, path):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["decode"])
    path.write_bytes(converter.convert())


def export_saved_model(model, export_root=EXPORT_ROOT, name=None, version=None, tflite=False,
                       latent_sampler=None, anomaly=None):
    """Exports `model` as a servable SavedModel at `export_root/NAME/VERSION/`.

    The version is written into a temporary directory beside the target and renamed
    into place only when complete, so a failure never leaves a partial version; an
    existing version is never overwritten. A mixed-precision model is exported in
    float32 (`vae_tf.runtime.precision.float32_copy`), so its outputs differ from the model's
    own by the bfloat16 rounding it no longer does.

    Args:
        model: a vae_tf model of any family.
        export_root: str or Path. Root of the TF Serving layout. Defaults to `EXPORT_ROOT`.
        name: str or None. Model name, one plain path component (`vae_tf.runtime.names.check_name`);
            defaults to `model.name`.
        version: int or None. Version number >= 1; defaults to one more than the highest.
        tflite: bool. Also write `decoder.tflite`, the decode signature for TFLite.
        latent_sampler: object or None. Draws latent codes for the `sample` signature
            with `sample(num_samples, seed)` in TensorFlow ops (e.g. a fitted
            `vae_tf.analysis.samplers.GaussianMixtureSampler`); None uses the model's prior, and
            a model without one (an AE) then has no `sample` signature.
        anomaly: dict or None. A `vae_tf.analysis.anomaly.calibrate` record (as `vae-tf calibrate`
            stores it in a run); adds the `anomaly` signature, images [, labels] ->
            `score` (float) and `is_anomaly` (bool) per example. Its score must run in a
            graph (`vae_tf.analysis.anomaly.is_exportable`). Defaults to None (no signature).

    Returns:
        The Path of the written version directory.

    Example:

    >>> path = export_saved_model(model, "saved_models", name="fashion_vae")
    >>> served = tf.saved_model.load(str(path))
    >>> served.signatures["decode"](z=tf.zeros((1, 20)))["images"]
    """
    name = check_name(model.name if name is None else name, "name")
    model_dir = pathlib.Path(export_root) / name
    if version is None:
        version = _next_version(model_dir) if model_dir.is_dir() else 1
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be an integer >= 1, got {version}")
    target = model_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists: SavedModel versions are never overwritten")
    model = float32_copy(model)
    signatures = model.export_signatures(latent_sampler)  # refuses bad requests before writing
    if "sample" in signatures:
        function, specs = signatures["sample"]
        signatures["sample"] = (bounded_sample(function, specs), specs)
    if anomaly is not None:
        signatures["anomaly"] = anomaly_signature(model, anomaly)
    model_dir.mkdir(parents=True, exist_ok=True)

    archive = keras.export.ExportArchive()
    archive.track(model)
    for signature, (function, specs) in signatures.items():
        archive.add_endpoint(signature, function, input_signature=specs)

    temporary = temporary_directory(model_dir, prefix=f".{version}.partial-")
    try:
        with writing(target):
            archive.write_out(str(temporary), verbose=False)
            if tflite:
                _write_tflite_decoder(temporary, temporary / "decoder.tflite")
        kill_point("export")
        os.rename(temporary, target)  # atomic; fails rather than replace an existing version
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    log.debug("exported %s to %s", name, target)
    return target


def sample_saved_model(saved_model_dir, num_samples, seed=0, label=None):
    """Draws images from an exported SavedModel's `sample` signature, without vae_tf models.

    A SavedModel is a program: load only ones you trust (README, Security).

    Args:
        saved_model_dir: str or Path. A version directory, e.g. saved_models/NAME/1.
        num_samples: int. Images to draw, 1 to `MAX_SAMPLES`.
        seed: int. Seed of the prior noise. Defaults to 0.
        label: int or None. Class to generate; required for (and only for) a
            conditional model.

    Returns:
        float32 numpy images, (num_samples, H, W, C).

    Example:

    >>> images = sample_saved_model("saved_models/vae-mlp-fashion_mnist/1", 16)
    """
    saved_model_dir = pathlib.Path(saved_model_dir)
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{saved_model_dir}: not a SavedModel directory (no saved_model.pb)")
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ValueError(f"-n must be in [1, {MAX_SAMPLES}], got {num_samples}")
    signatures = tf.saved_model.load(str(saved_model_dir)).signatures
    if "sample" not in signatures:
        raise ValueError(f"{saved_model_dir} has no 'sample' signature (an AE cannot sample)")
    inputs = {"num_samples": tf.constant(num_samples), "seed": tf.constant(seed)}
    conditional = "labels" in signatures["sample"].structured_input_signature[1]
    if conditional != (label is not None):
        raise ValueError("--label is required for a conditional SavedModel and only for one")
    if conditional:
        inputs["labels"] = tf.fill([num_samples], label)
    return signatures["sample"](**inputs)["images"].numpy()
