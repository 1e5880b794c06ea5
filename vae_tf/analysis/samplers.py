"""Ex-post density sampling: a Gaussian mixture fitted to a trained model's latent codes.

Ghosh, Sajjadi, Vergari, Black & Schölkopf, "From Variational to Deterministic
Autoencoders", ICLR 2020, sec. 4: after training, fit a density (a 10-component
Gaussian mixture in the paper) to the codes of the training set and decode draws from
it. This makes a deterministic AE generative and often improves a VAE's samples,
whose aggregate posterior rarely matches N(0, I). The EM fit is scikit-learn's
`GaussianMixture`; the fitted mixture is stored as plain arrays in an `.npz` file
(no pickle; a run writes its own, `vae_tf.runs.run.Run.write_latent_sampler`) and samples both in numpy and in TensorFlow with stateless ops, so an
exported `sample` signature can use it.

Example:

>>> sampler = GaussianMixtureSampler.fit_model(ae, x_train, num_components=10)
>>> sampler.save("runs/ae/latent_gmm.npz")
>>> images = ae.sample(16, seed=0, latent_sampler=sampler)
"""

import pathlib

import numpy as np
from keras import ops

from vae_tf.analysis.evaluation import latent_features
from vae_tf.core.layers import draw_categorical, draw_normal, split_seed

NUM_COMPONENTS = 10  # mixture components unless the caller says (the paper's)

_KEYS = ("weights", "means", "covariances")


class GaussianMixtureSampler:
    """A Gaussian mixture over latent codes, with full covariances.

    Args:
        weights: array (K,). Mixture weights, positive, summing to 1.
        means: array (K, D). Component means.
        covariances: array (K, D, D). Component covariances, symmetric positive definite.

    Example:

    >>> sampler = GaussianMixtureSampler.fit(codes, num_components=10, seed=0)
    >>> z = sampler.sample_numpy(100, seed=1)
    """

    def __init__(self, weights, means, covariances):
        weights, means, covariances = (np.asarray(a, "float64") for a in (weights, means, covariances))
        if weights.ndim != 1 or len(weights) < 1:
            raise ValueError(f"weights must be a non-empty vector, got shape {weights.shape}")
        k = len(weights)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means must have shape ({k}, latent_dim), got {means.shape}")
        d = means.shape[1]
        if covariances.shape != (k, d, d):
            raise ValueError(f"covariances must have shape ({k}, {d}, {d}), got {covariances.shape}")
        for name, array in (("weights", weights), ("means", means), ("covariances", covariances)):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][0]}")
        if np.any(weights <= 0) or not np.isclose(weights.sum(), 1.0, atol=1e-6):
            raise ValueError(f"weights must be positive and sum to 1, got sum {weights.sum()}")
        try:
            self.cholesky = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError as error:
            raise ValueError("covariances must be symmetric positive definite") from error
        self.weights, self.means, self.covariances = weights / weights.sum(), means, covariances

    @property
    def num_components(self):
        return len(self.weights)

    @property
    def latent_dim(self):
        return self.means.shape[1]

    @classmethod
    def fit(cls, codes, num_components=NUM_COMPONENTS, seed=0, max_iter=200, reg_covar=1e-6):
        """Fits the mixture to latent codes with scikit-learn's EM.

        Args:
            codes: array (N, D). Latent codes, N >= num_components.
            num_components: int. K, >= 1. Defaults to `NUM_COMPONENTS` (the paper's).
            seed: int. Seeds the k-means initialisation. Defaults to 0.
            max_iter: int. Most EM iterations. Defaults to 200.
            reg_covar: float. Added to covariance diagonals for stability. Defaults to 1e-6.

        Returns:
            A fitted `GaussianMixtureSampler`.
        """
        from sklearn.mixture import GaussianMixture

        codes = np.asarray(codes, "float64")
        if codes.ndim != 2:
            raise ValueError(f"codes must have shape (N, latent_dim), got {codes.shape}")
        if not isinstance(num_components, int) or num_components < 1:
            raise ValueError(f"num_components must be an integer >= 1, got {num_components}")
        if len(codes) < num_components:
            raise ValueError(f"need at least num_components={num_components} codes, got {len(codes)}")
        if not np.all(np.isfinite(codes)):
            raise ValueError("codes contain NaN or infinite values")
        mixture = GaussianMixture(num_components, covariance_type="full", max_iter=max_iter,
                                  reg_covar=reg_covar, random_state=seed).fit(codes)
        return cls(mixture.weights_, mixture.means_, mixture.covariances_)

    @classmethod
    def fit_model(cls, model, data, num_components=NUM_COMPONENTS, seed=0):
        """Fits the mixture to `model`'s latent means (`model.mean_code`) of `data`.

        Args:
            model: a vae_tf model. data: what `vae_tf.analysis.evaluation.iterate_batches` takes.
            num_components: int. Defaults to `NUM_COMPONENTS`. seed: int. Defaults to 0.
        """
        codes, _ = latent_features(model, data)
        return cls.fit(codes, num_components, seed)

    def sample_numpy(self, num_samples, seed=0):
        """Returns `num_samples` draws as a float32 numpy array (num_samples, D); same seed, same draws."""
        rng = np.random.default_rng(seed)
        chosen = rng.choice(self.num_components, size=num_samples, p=self.weights)
        noise = rng.standard_normal((num_samples, self.latent_dim))
        z = self.means[chosen] + np.einsum("nij,nj->ni", self.cholesky[chosen], noise)
        return z.astype("float32")

    def sample(self, num_samples, seed=None):
        """Draws in TensorFlow ops, shape (num_samples, D): the latent-sampler interface.

        Args:
            num_samples: int or scalar int tensor.
            seed: None, int, `keras.random.SeedGenerator`, or a stateless seed pair
                or tensor (exported graphs); an int or stateless seed repeats the draws.
        """
        component_seed, noise_seed = split_seed(seed)
        chosen = draw_categorical(np.log(self.weights).astype("float32"), num_samples, component_seed)
        means = ops.take(ops.convert_to_tensor(self.means.astype("float32")), chosen, axis=0)
        cholesky = ops.take(ops.convert_to_tensor(self.cholesky.astype("float32")), chosen, axis=0)
        noise = draw_normal((num_samples, self.latent_dim), noise_seed)
        return means + ops.einsum("nij,nj->ni", cholesky, noise)

    def write_npz(self, file):
        """Writes the mixture's arrays, as `.npz` (no pickle), to an open binary file or a path."""
        np.savez(file, weights=self.weights, means=self.means, covariances=self.covariances)

    def save(self, path, overwrite=False):
        """Writes the mixture as arrays in an `.npz` file (no pickle). A run stores its
        mixture atomically through `vae_tf.runs.run.Run.write_latent_sampler`.

        Args:
            path: str or Path. The file, ending in ".npz".
            overwrite: bool. Replace an existing file. Defaults to False.
        """
        path = pathlib.Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path must end in .npz, got {path}")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"directory {path.parent} does not exist")
        with open(path, "wb" if overwrite else "xb") as f:
            self.write_npz(f)

    @classmethod
    def load(cls, path):
        """Reads a mixture written by `save`; refuses pickled or incomplete files."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no latent sampler file {path}")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                missing = [key for key in _KEYS if key not in arrays.files]
                if missing:
                    raise ValueError(f"{path} is not a latent sampler file: it lacks {missing}")
                return cls(*(arrays[key] for key in _KEYS))
        except (OSError, ValueError) as error:
            if str(path) in str(error):
                raise
            raise ValueError(f"{path} is not a readable latent sampler file: {error}") from error
