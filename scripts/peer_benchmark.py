"""vae_tf's MLP VAE against the same model in PyTorch and JAX, measured in one run.

The model of `vae-tf benchmark --config mlp`: 784-400-20 encoder with a mean and a
log-variance head, 20-400-784 decoder, Bernoulli likelihood on the grey levels
(`softplus(l) - l*x` summed over pixels), the Gaussian KL, Adam with learning rate 1e-3,
batch 128, float32, on the 60,000 Fashion-MNIST training images. Every implementation
runs in its own process, one warm-up epoch (compilation included) and then `--epochs`
timed epochs, median; the rounds interleave the implementations so that a machine whose
speed jumps between processes (README, fifth speed round) moves them all alike.

- vae_tf: the project's defaults, timed as `vae-tf benchmark` times them
  (`vae_tf.benchmarks.throughput.training_throughput`: `vae-tf train`'s input, one `model.fit`
  per epoch, the compiled loop where the machine gets it);
- torch: a PyTorch loop over in-memory tensors, fused Adam;
- jax-step: Flax and optax, one `jax.jit` step per batch, as the Flax examples write it;
- jax-scan: Flax and optax, a whole epoch as one jitted `lax.scan` over device-resident
  images, batches gathered by index inside the program (full batches only: 468 of
  469, the images trained are what is counted).

PyTorch, JAX, Flax and optax are not dependencies of vae_tf: install them in a separate
environment and name its Python with `--peer-python`, e.g.

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install jax flax optax torch==2.13.0
    .venv/bin/python scripts/peer_benchmark.py --peer-python /tmp/peers/bin/python

Each process also reports the mean training loss of its last epoch, so the table shows
that the implementations learn alike (nats per image; they differ only in noise and
initialisation).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

BATCH_SIZE = 128
LEARNING_RATE = 1e-3
PEERS = ("torch", "jax-step", "jax-scan")


def _timed_epochs(epochs, train_epoch, images_per_epoch):
    """(images/s, last loss): the median of `epochs` timed calls of `train_epoch()`
    (one epoch, returning its mean loss as a float) after a warm-up call."""
    seconds, losses = [], []
    for _ in range(1 + epochs):
        start = time.perf_counter()
        losses.append(train_epoch())
        seconds.append(time.perf_counter() - start)
    return images_per_epoch / statistics.median(seconds[1:]), losses[-1]


def run_torch(images, epochs):
    import torch
    from torch import nn

    torch.manual_seed(0)

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(784, 400)
            self.mean, self.log_var = nn.Linear(400, 20), nn.Linear(400, 20)
            self.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))

        def forward(self, x):
            h = torch.relu(self.hidden(x))
            mean, log_var = self.mean(h), self.log_var(h)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = self.decoder(z)
            nll = (nn.functional.softplus(logits) - logits * x).sum(1)
            kl = -0.5 * (1 + log_var - mean.square() - log_var.exp()).sum(1)
            return (nll + kl).mean()

    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, fused=True)
    data = torch.from_numpy(images)

    def train_epoch():
        total, order = 0.0, torch.randperm(len(data))
        for i in range(0, len(data), BATCH_SIZE):
            batch = data[order[i:i + BATCH_SIZE]]
            loss = model(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / len(data)

    rate, loss = _timed_epochs(epochs, train_epoch, len(data))
    return {"images_per_s": rate, "last_epoch_loss": loss,
            "version": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}


def _flax_vae():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class VAE(nn.Module):
        @nn.compact
        def __call__(self, x, key):
            h = nn.relu(nn.Dense(400)(x))
            mean, log_var = nn.Dense(20)(h), nn.Dense(20)(h)
            z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
            logits = nn.Dense(784)(nn.relu(nn.Dense(400)(z)))
            nll = (jax.nn.softplus(logits) - logits * x).sum(1)
            kl = -0.5 * (1 + log_var - mean**2 - jnp.exp(log_var)).sum(1)
            return (nll + kl).mean()

    return VAE()


def _jax_training(images):
    """(step, params, opt_state): a Flax VAE and optax Adam; `step` is not jitted."""
    import jax
    import jax.numpy as jnp
    import optax

    model = _flax_vae()
    key = jax.random.PRNGKey(0)
    params = model.init(key, jnp.zeros((1, 784)), key)
    optimizer = optax.adam(LEARNING_RATE)

    def step(params, opt_state, batch, key):
        loss, grads = jax.value_and_grad(model.apply)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step, params, optimizer.init(params)


def run_jax_step(images, epochs):
    import jax
    import numpy as np

    step, params, opt_state = _jax_training(images)
    step = jax.jit(step)
    rng, state = np.random.default_rng(0), [params, opt_state, jax.random.PRNGKey(1)]

    def train_epoch():
        total, order = 0.0, rng.permutation(len(images))
        for i in range(0, len(images), BATCH_SIZE):
            batch = images[order[i:i + BATCH_SIZE]]
            params, opt_state, key = state
            key, noise = jax.random.split(key)
            params, opt_state, loss = step(params, opt_state, batch, noise)
            state[:] = params, opt_state, key
            total += float(loss) * len(batch)
        return total / len(images)

    rate, loss = _timed_epochs(epochs, train_epoch, len(images))
    return {"images_per_s": rate, "last_epoch_loss": loss,
            "version": f"jax {jax.__version__}, {jax.devices()[0].platform}"}


def run_jax_scan(images, epochs):
    import jax
    import jax.numpy as jnp

    step, params, opt_state = _jax_training(images)
    steps = len(images) // BATCH_SIZE
    data = jax.device_put(images)

    @jax.jit
    def epoch(params, opt_state, key):
        order_key, noise_key = jax.random.split(key)
        order = jax.random.permutation(order_key, len(images))[:steps * BATCH_SIZE].reshape(steps, BATCH_SIZE)

        def body(carry, inputs):
            indices, noise = inputs
            params, opt_state, loss = step(*carry, jnp.take(data, indices, axis=0), noise)
            return (params, opt_state), loss

        (params, opt_state), batch_losses = jax.lax.scan(
            body, (params, opt_state), (order, jax.random.split(noise_key, steps)))
        return params, opt_state, batch_losses.mean()

    state = [params, opt_state, jax.random.PRNGKey(1)]

    def train_epoch():
        params, opt_state, key = state
        key, epoch_key = jax.random.split(key)
        params, opt_state, loss = epoch(params, opt_state, epoch_key)
        state[:] = params, opt_state, key
        return float(loss)  # waits for the epoch

    rate, loss = _timed_epochs(epochs, train_epoch, steps * BATCH_SIZE)
    return {"images_per_s": rate, "last_epoch_loss": loss,
            "version": f"jax {jax.__version__}, {jax.devices()[0].platform}"}


def run_vae_tf(images, epochs):
    from vae_tf.benchmarks.throughput import CONFIGS, IMAGE_SHAPE, matmul_gflops, training_throughput
    from vae_tf.models.factory import make_model
    import tensorflow as tf

    model = make_model(input_shape=IMAGE_SHAPE, seed=0, **CONFIGS["mlp"])
    rate = training_throughput(model, images.reshape(-1, *IMAGE_SHAPE), epochs, {})
    return {"images_per_s": rate, "last_epoch_loss": model.history.history["loss"][-1],
            "matmul_gflops": matmul_gflops(), "compiled_loop": bool(model.compiles_training_loop),
            "version": f"tensorflow {tf.__version__}"}


RUNNERS = {"vae_tf": run_vae_tf, "torch": run_torch, "jax-step": run_jax_step, "jax-scan": run_jax_scan}


def _child(name, images_path, epochs, out):
    import numpy as np

    images = np.load(images_path)
    pathlib.Path(out).write_text(json.dumps(RUNNERS[name](images, epochs)))


def _in_process(python, name, images_path, epochs):
    env = dict(os.environ)
    if name == "vae_tf":  # the checkout, not an installed copy
        env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).resolve().parent.parent),
                                            env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="peer-benchmark-") as scratch:
        out = pathlib.Path(scratch) / "result.json"
        done = subprocess.run([python, __file__, "--child", name, "--images", str(images_path),
                               "--epochs", str(epochs), "--out", str(out)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed ({python}): {done.stderr.strip().splitlines()[-3:]}")
        return json.loads(out.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", required=False, help="a Python with torch, jax, flax and optax")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--examples", type=int, default=None, help="the first N training images (all by default)")
    parser.add_argument("--only", nargs="+", choices=tuple(RUNNERS), default=tuple(RUNNERS))
    parser.add_argument("--out", help="write every round's figures to this JSON file")
    parser.add_argument("--child", choices=tuple(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.images, args.epochs, args.out)
    if any(name in PEERS for name in args.only) and not args.peer_python:
        parser.error("--peer-python is required for " + ", ".join(n for n in args.only if n in PEERS))
    if args.peer_python and not os.access(args.peer_python, os.X_OK):
        parser.error(f"--peer-python {args.peer_python}: not an executable file")

    import numpy as np
    from vae_tf.benchmarks.throughput import CONFIGS, IMAGE_SHAPE, benchmark_images, training_flops_per_image
    from vae_tf.models.factory import make_model

    images, source = benchmark_images(args.examples)
    flops = training_flops_per_image(make_model(input_shape=IMAGE_SHAPE, seed=0, **CONFIGS["mlp"]))
    rounds = []
    with tempfile.TemporaryDirectory(prefix="peer-benchmark-") as scratch:
        images_path = pathlib.Path(scratch) / "images.npy"
        np.save(images_path, images.reshape(len(images), -1).astype(np.float32))
        for r in range(args.rounds):
            results = {}
            for name in args.only:
                python = sys.executable if name == "vae_tf" else args.peer_python
                results[name] = _in_process(python, name, images_path, args.epochs)
                print(f"round {r + 1}: {name:<9} {results[name]['images_per_s']:>8,.0f} images/s", flush=True)
            rounds.append(results)

    matmul = statistics.median(r["vae_tf"]["matmul_gflops"] for r in rounds) if "vae_tf" in args.only else None
    print(f"\n{len(images):,} images of {source}, batch {BATCH_SIZE}, median of {args.epochs} epochs, "
          f"medians of {args.rounds} rounds" + (f"; matmul {matmul:.0f} GFLOP/s" if matmul else ""))
    print(f"{'implementation':<14} {'images/s':>9} {'of matmul':>9} {'vs vae_tf':>9} "
          f"{'last-epoch loss':>15}  rounds (images/s)")
    for name in args.only:
        rate = statistics.median(r[name]["images_per_s"] for r in rounds)
        share = f"{rate * flops / 1e9 / matmul:.0%}" if matmul else "-"
        versus = (f"{rate / statistics.median(r['vae_tf']['images_per_s'] for r in rounds):.2f}x"
                  if "vae_tf" in args.only else "-")
        loss = statistics.median(r[name]["last_epoch_loss"] for r in rounds)
        each = ", ".join(f"{r[name]['images_per_s']:,.0f}" for r in rounds)
        print(f"{name:<14} {rate:>9,.0f} {share:>9} {versus:>9} {loss:>15.2f}  {each}")
    print("versions: " + "; ".join(f"{name}: {rounds[0][name]['version']}" for name in args.only))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"source": source, "flops_per_image": flops,
                                                      "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
