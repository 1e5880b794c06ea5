"""`vae-tf benchmark`: training throughput, serving latency, memory."""

from vae_tf.cli.options import non_negative_int, positive_int


def add_benchmark(commands):
    from vae_tf.benchmarks import suite
    from vae_tf.benchmarks.large_images import FILE_COUNTS
    from vae_tf.benchmarks.throughput import CONFIGS

    bench = commands.add_parser("benchmark", help="training throughput, serving latency, memory")
    bench.add_argument("--epochs", type=positive_int, default=suite.EPOCHS, help="timed epochs per configuration")
    bench.add_argument("--examples", type=positive_int, default=None,
                       help="train on the first N images (default: all 60,000)")
    bench.add_argument("--config", choices=(*CONFIGS, suite.LARGE), nargs="+", default=list(CONFIGS),
                       help="large: a conv VAE on 250x250x3 JPEG files written to a temporary folder, "
                            "run once per --large-files count in its own process")
    bench.add_argument("--serving-calls", type=positive_int, default=suite.SERVING_CALLS)
    bench.add_argument("--repeats", type=positive_int, default=1,
                       help="rounds of each configuration's variants (each in its own process); "
                            "the table gives the medians (default: %(default)s)")
    bench.add_argument("--large-files", type=positive_int, nargs="+", default=list(FILE_COUNTS), metavar="N",
                       help=f"JPEG file counts for --config large (default: {' '.join(map(str, FILE_COUNTS))})")
    bench.add_argument("--cache", type=non_negative_int, default=0, metavar="MIB",
                       help="--config large: MiB for caching decoded images (default: 0, stream)")
    bench.add_argument("--scaling", action="store_true",
                       help="instead: two single-core workers on 127.0.0.1 (MultiWorkerMirroredStrategy) "
                            "against one single-core process, for each of --config mlp/conv")
    bench.add_argument("--out", default=None, help="also write the results as JSON")
    bench.set_defaults(handler=benchmark_command)


def benchmark_command(args):
    from vae_tf.benchmarks.suite import run_benchmarks

    _, tables = run_benchmarks(args.config, args.epochs, args.examples, args.serving_calls, args.repeats,
                               args.large_files, args.cache, args.scaling, args.out)
    for table in tables:
        print(table)
    if args.out:
        print(f"results written to {args.out}")
