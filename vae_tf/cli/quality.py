"""`vae-tf sample-quality`: Fréchet distance, precision and recall of a run's samples."""

from vae_tf.cli.options import positive_int


def add_sample_quality(commands):
    from vae_tf.cli.sampling import SAMPLER_HELP
    from vae_tf.runs.sample_quality import NUM_SAMPLES
    from vae_tf.runs.sampling import SAMPLERS

    quality = commands.add_parser(
        "sample-quality", help="Fréchet distance, precision and recall of a run's samples against its "
                               "test images, in the features of a classifier vae_tf trains on the data set")
    quality.add_argument("run_dir")
    quality.add_argument("--sampler", choices=SAMPLERS, default=None, help=SAMPLER_HELP)
    quality.add_argument("--samples", type=positive_int, default=NUM_SAMPLES, metavar="N",
                         help="images to draw, > 3; as many test images are compared (default: %(default)s)")
    quality.add_argument("--classifier-cache", default=None, metavar="DIR",
                         help="where the data set's classifier is kept, trained on first use "
                              "(default: $XDG_CACHE_HOME/vae_tf/classifiers, i.e. ~/.cache/vae_tf/classifiers)")
    quality.add_argument("--seed", type=int, default=0, help="seed of the samples and of the test images chosen")
    quality.set_defaults(handler=sample_quality_command)


def sample_quality_command(args):
    from vae_tf.runs.sample_quality import sample_quality

    result, path = sample_quality(args.run_dir, args.samples, args.sampler, args.classifier_cache, args.seed)
    classifier = result["classifier"]
    print(f"{result['samples']} samples from the {result['sampler']} against {result['real_examples']} "
          f"test images: Fréchet distance {result['frechet_distance']:.3f}, "
          f"precision {result['precision']:.3f}, recall {result['recall']:.3f} (k = {result['k']})")
    print(f"classifier: test accuracy {classifier['test_accuracy']:.4f}, weights sha256 "
          f"{classifier['weights_sha256']} ({'trained and ' if classifier['trained_now'] else ''}"
          f"kept in {classifier['file']})")
    print(f"wrote {path}")
