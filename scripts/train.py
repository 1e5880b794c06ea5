"""Trains the tutorials' MLP VAE (784-400-20, Bernoulli) on the MNIST digits in
../shared/data/mnist and prints the held-out loss terms."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import vae_tf  # noqa: E402
from vae_tf.data import read_idx  # noqa: E402

MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[..., None].astype("float32") / 255.0
x_train, x_test = images[:9000], images[9000:]
model = vae_tf.make_model("vae", "mlp", (28, 28, 1), latent_dim=20)
model.compile()
model.fit(x_train, epochs=10, batch_size=128, validation_data=(x_test,))
print({name: round(value, 2) for name, value in model.evaluate(x_test, verbose=0, return_dict=True).items()})
