"""The benchmarks `vae-tf benchmark` runs, chosen by configuration name, with their tables."""

from vae_tf.benchmarks import large_images, scaling, throughput

LARGE = "large"  # the configuration of `large_images`, beside throughput's CONFIGS
EPOCHS = 3  # timed epochs per configuration
SERVING_CALLS = 1000  # batch-1 calls per signature for the latency percentiles


def run_benchmarks(configs=tuple(throughput.CONFIGS), epochs=EPOCHS, examples=None,
                   serving_calls=SERVING_CALLS, repeats=1, large_files=large_images.FILE_COUNTS,
                   cache=0, scale=False, out=None):
    """Runs the benchmarks of `configs` and returns (results, plain-text tables).

    Args:
        configs: names from `throughput.CONFIGS`, and `LARGE` for `large_images`.
        epochs: int. Timed epochs per configuration. Defaults to `EPOCHS`.
        examples: int or None. Train on the first N images; None: all (`scaling.EXAMPLES`
            with `scale`).
        serving_calls: int. Defaults to `SERVING_CALLS`.
        repeats: int. Rounds of each configuration's variants. Defaults to 1.
        large_files: tuple of int. JPEG file counts of `LARGE`. Defaults to
            `large_images.FILE_COUNTS`.
        cache: int. MiB for caching decoded images in `LARGE`. Defaults to 0.
        scale: bool. Instead: two single-core workers against one (`scaling`) for each of
            the throughput configurations. Defaults to False.
        out: str, Path or None. Also write the results there as JSON. Defaults to None.
    """
    from vae_tf.runtime.files import write_json

    small = [name for name in configs if name in throughput.CONFIGS]
    if scale and LARGE in configs:
        raise ValueError("--scaling measures --config mlp and conv, not large")
    tables = []
    if scale:
        results = {"scaling": [scaling.run(name, examples or scaling.EXAMPLES, epochs) for name in small]}
        tables.append(scaling.format_table(results["scaling"]))
    else:
        results = throughput.run(epochs, examples, small, serving_calls, repeats) if small else {}
        if small:
            tables.append(throughput.format_table(results))
        if LARGE in configs:
            results[LARGE] = large_images.run(large_files, epochs, cache)
            tables.append(large_images.format_table(results[LARGE]))
    if out:
        write_json(out, results)
    return results, tables
