"""Commands that make new images: `fit-sampler`, `sample` and `train-prior`."""

from vae_tf.cli.options import positive_int

SAMPLER_HELP = ("draw codes from the model's prior or from the run's fitted mixture "
                "(vae-tf fit-sampler); default: the prior if the model has one, else the mixture")


def add_fit_sampler(commands):
    from vae_tf.analysis.samplers import NUM_COMPONENTS

    fit_sampler = commands.add_parser(
        "fit-sampler", help="fit a Gaussian mixture to a run's training codes (ex-post sampling)")
    fit_sampler.add_argument("run_dir")
    fit_sampler.add_argument("--components", type=positive_int, default=NUM_COMPONENTS,
                             help="mixture components (default: %(default)s)")
    fit_sampler.add_argument("--seed", type=int, default=0, help="seed of the k-means initialisation")
    fit_sampler.set_defaults(handler=fit_sampler_command)


def fit_sampler_command(args):
    from vae_tf.runs.sampling import fit_sampler

    sampler, path = fit_sampler(args.run_dir, args.components, args.seed)
    print(f"wrote a {args.components}-component Gaussian mixture over "
          f"{sampler.latent_dim}-D training codes to {path}")


def add_sample(commands):
    from vae_tf.runs.sampling import SAMPLERS, TEMPERATURE

    sample = commands.add_parser("sample", help="a grid of images sampled from the prior")
    sample.add_argument("run_dir", nargs="?", help="a run directory (or use --saved-model)")
    sample.add_argument("--saved-model", default=None,
                        help="sample from an exported SavedModel version directory instead")
    sample.add_argument("-n", "--num-samples", type=positive_int, default=64)
    sample.add_argument("--label", type=int, default=None,
                        help="class to generate (CVAE, or a VQ-VAE with a conditional prior)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--sampler", choices=SAMPLERS, default=None, help=SAMPLER_HELP)
    sample.add_argument("--temperature", type=float, default=TEMPERATURE,
                        help="prior temperature, > 0 (VQ-VAE prior only; default: %(default)s)")
    sample.add_argument("--out", default="samples.png")
    sample.set_defaults(handler=sample_command)


def sample_command(args):
    from vae_tf.runs.sampling import sample_grid

    sample_grid(args.out, args.num_samples, run=args.run_dir, saved_model=args.saved_model,
                       label=args.label, seed=args.seed, sampler=args.sampler, temperature=args.temperature)
    print(f"wrote {args.out}")


def add_train_prior(commands):
    from vae_tf.models.vqvae import pixelcnn
    from vae_tf.runs import sampling

    train_prior = commands.add_parser(
        "train-prior", help="train a PixelCNN prior over a VQ-VAE run's codes, saved in the run")
    train_prior.add_argument("run_dir")
    train_prior.add_argument("--epochs", type=positive_int, default=sampling.PRIOR_EPOCHS)
    train_prior.add_argument("--conditional", action="store_true",
                             help="condition the prior on the class labels")
    train_prior.add_argument("--lr", type=float, default=sampling.PRIOR_LEARNING_RATE,
                             help="Adam learning rate (default: %(default)s)")
    train_prior.add_argument("--filters", type=positive_int, default=pixelcnn.FILTERS,
                             help="channels of the PixelCNN's gated layers (default: %(default)s)")
    train_prior.add_argument("--layers", type=positive_int, default=pixelcnn.NUM_LAYERS,
                             help="gated layers after the first (default: %(default)s)")
    train_prior.set_defaults(handler=train_prior_command)


def train_prior_command(args):
    from vae_tf.runs.sampling import train_prior

    path, metrics = train_prior(args.run_dir, args.epochs, args.conditional, args.lr, args.filters, args.layers)
    print(f"prior saved in {path}; test NLL "
          f"{metrics['prior_nll']:.3f} nats per image, {metrics['prior_bits_per_dim']:.4f} bits/dim")
