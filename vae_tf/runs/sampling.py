"""New images from a run or a SavedModel, and what sampling needs stored in a run: a latent
mixture fitted to its codes (ex-post sampling) and a VQ-VAE's PixelCNN prior."""

import keras

from vae_tf.analysis.samplers import NUM_COMPONENTS
from vae_tf.config import check_positive
from vae_tf.models.vqvae import pixelcnn
from vae_tf.models.vqvae.prior import PRIOR_LEARNING_RATE
from vae_tf.runtime.files import atomic_write
from vae_tf.runs.runlock import run_lock
from vae_tf.runs.sources import open_run, open_with_data

SAMPLERS = ("prior", "gmm")  # where sampling and export draw latent codes from
TEMPERATURE = 1.0  # an autoregressive prior's sampling temperature: the model as trained
PRIOR_EPOCHS = 10  # `train_prior`'s: minutes on a CPU for a small run


def latent_sampler(run, choice=None, required=True):
    """The `latent_sampler` for sampler `choice` ("prior", "gmm" or None) of a run: None
    for the model's prior.

    Without a choice: the prior if the model has one, else the run's fitted mixture
    (required: an error if there is none; else None, e.g. an AE exported without one).
    """
    finished = open_run(run)
    model = finished.model
    if choice == "prior" or (choice is None and model.can_sample):
        if not model.can_sample:
            raise ValueError("--sampler prior: this model has no prior (an AE); "
                             "fit a mixture with vae-tf fit-sampler and use --sampler gmm")
        return None
    sampler = finished.latent_sampler
    if sampler is None and (required or choice == "gmm"):
        why = "" if model.can_sample else "this model has no prior (an AE) and "
        raise ValueError(f"{why}{finished.path} has no fitted latent sampler: run "
                         f"vae-tf fit-sampler {finished.path} first")
    return sampler


def fit_sampler(run, components=NUM_COMPONENTS, seed=0):
    """Fits a Gaussian mixture to a run's training codes and stores it in the run
    (`Run.latent_sampler`); returns (sampler, path).

    Args:
        run: `Run` or run directory of an unconditional model.
        components: int. Mixture components, >= 1. Defaults to `NUM_COMPONENTS`.
        seed: int. Seed of the k-means initialisation. Defaults to 0.
    """
    from vae_tf.analysis.samplers import GaussianMixtureSampler

    finished, model, data = open_with_data(run)
    if model.is_conditional:
        raise ValueError("fit-sampler needs an unconditional model: a mixture over codes "
                         "ignores the labels a conditional (CVAE) decoder needs")
    with run_lock(finished.path):
        sampler = GaussianMixtureSampler.fit_model(model, data.train, components, seed)
        return sampler, finished.write_latent_sampler(sampler)


def _progress_bar():
    """A `progress(done, total)` hook that draws a keras Progbar."""
    bar = None

    def progress(done, total):
        nonlocal bar
        bar = bar or keras.utils.Progbar(total, unit_name="position")
        bar.update(done)

    return progress


def _sampling_labels(model, label):
    """The `labels` argument of `model.sample` for `label`, after checking it applies."""
    classes = model.sample_classes
    if label is not None and classes is None:
        raise ValueError("--label needs a conditional run (CVAE, or a prior trained with --conditional)")
    if label is not None and not 0 <= label < classes:
        raise ValueError(f"--label must be in [0, {classes}), got {label}")
    return label  # None: a conditional model cycles through its classes


def check_prior_trained(model):
    """Refuses a model whose prior is trained as a second stage (VQ-VAE) before it has one."""
    if model.learns_prior and not model.can_sample:
        raise ValueError("this run has no prior yet: train one with vae-tf train-prior RUN")


def sample_run(run, num_samples, label=None, seed=0, sampler=None, temperature=TEMPERATURE, verbose=True):
    """`num_samples` images sampled from a run's model.

    Args:
        run: `Run` or run directory.
        num_samples: int. Images to draw.
        label: int or None. The class to draw (a conditional model); None cycles through them.
        seed: int. Defaults to 0.
        sampler: str or None. One of `SAMPLERS`; see `latent_sampler`.
        temperature: float > 0. An autoregressive prior's temperature (VQ-VAE). Defaults
            to `TEMPERATURE`.
        verbose: bool. A progress bar for ancestral sampling. Defaults to True.

    Returns:
        A numpy array of images (num_samples, H, W, C).
    """
    finished = open_run(run)
    model = finished.model
    check_prior_trained(model)
    latent = latent_sampler(finished, sampler)  # first: it refuses a model that cannot sample
    labels = _sampling_labels(model, label)
    options = {} if latent is None else {"latent_sampler": latent}
    if "temperature" in model.sample_options:
        check_positive("--temperature", temperature)
        options["temperature"] = temperature
    elif temperature != TEMPERATURE:
        raise ValueError("--temperature applies only to a model with an autoregressive prior (vqvae)")
    if "progress" in model.sample_options and verbose:  # ancestral sampling: one step per code position
        options["progress"] = _progress_bar()
    return model.sample(num_samples, labels=labels, seed=seed, **options)


def sample_grid(out, num_samples=64, run=None, saved_model=None, label=None, seed=0, sampler=None,
                temperature=TEMPERATURE, verbose=True):
    """Draws `num_samples` images from a run (`sample_run`) or an exported SavedModel
    version directory and writes them as a grid (8 a row) to the PNG `out`; returns its Path.

    Example:

    >>> sample_grid("samples.png", 16, run="runs/vae")
    """
    from vae_tf.analysis import plots
    from vae_tf.serving.export import sample_saved_model

    if (run is None) == (saved_model is None):
        raise ValueError("give either RUN_DIR or --saved-model DIR")
    if saved_model and sampler:
        raise ValueError("--sampler applies only to a RUN_DIR: a SavedModel samples as it was exported")
    if saved_model:
        images = sample_saved_model(saved_model, num_samples, seed, label)
    else:
        images = sample_run(run, num_samples, label, seed, sampler, temperature, verbose)
    title = f"{num_samples} samples" + ("" if label is None else f" of class {label}")
    figure = plots.image_figure(plots.image_grid(images, min(num_samples, 8)), title, "sample", "sample")
    return atomic_write(out, lambda path: plots.save_figure(figure, path))


def train_prior(run, epochs=PRIOR_EPOCHS, conditional=False, learning_rate=PRIOR_LEARNING_RATE,
                filters=pixelcnn.FILTERS, layers=pixelcnn.NUM_LAYERS):
    """Trains a PixelCNN prior over a VQ-VAE run's codes and saves it in the run's
    model.keras; the prior's test metrics join metrics.json.

    Args:
        run: `Run` or run directory of a --model vqvae run.
        epochs: int. Training epochs. Defaults to `PRIOR_EPOCHS`.
        conditional: bool. Condition the prior on the class labels. Defaults to False.
        learning_rate: float > 0. Adam's. Defaults to `PRIOR_LEARNING_RATE`.
        filters: int. Channels of the PixelCNN's gated layers. Defaults to `pixelcnn.FILTERS`.
        layers: int. Gated layers after the first. Defaults to `pixelcnn.NUM_LAYERS`.

    Returns:
        (path of model.keras, {"prior_nll", "prior_bits_per_dim"}).
    """
    from vae_tf.models.vqvae.prior import fit_prior

    finished, model, data = open_with_data(run)
    if not model.learns_prior:
        raise ValueError(f"{finished.path}: train-prior needs a --model vqvae run")
    if conditional and data.num_classes is None:
        raise ValueError(f"--conditional needs labelled data; {data.source} has no labels")
    check_positive("--lr", learning_rate)
    earlier = finished.metrics  # checked before the prior trains, not after
    with run_lock(finished.path):
        prior, metrics = fit_prior(model, data.train, data.test, epochs,
                                   num_classes=data.num_classes if conditional else None,
                                   learning_rate=learning_rate, seed=finished.config.training.seed,
                                   filters=filters, num_layers=layers)
        model.attach_prior(prior)
        path = atomic_write(finished.path / "model.keras", model.save)
        finished.write_metrics({**earlier, **metrics})
    return path, metrics
