"""What this machine's CPU can do, read from /proc/cpuinfo (Linux; elsewhere unknown)."""


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags (x86 `flags`, Arm `Features`) as a set; None where
    `cpuinfo` cannot be read."""
    try:
        with open(cpuinfo) as f:
            return {
                flag
                for line in f
                if line.startswith(("flags", "Features"))
                for flag in line.split(":", 1)[1].split()
            }
    except OSError:
        return None


def cpu_has_avx512(cpuinfo="/proc/cpuinfo"):
    """True or False from the CPU flags (`avx512f`); None where they cannot be read.

    The compiled training loop (`vae_tf.models.loops.compiled_loop`) is used by default only
    on such CPUs: 1.3x faster than Keras's loop on one, while XLA was 2x slower than
    TensorFlow's kernels on an AVX2 CPU (README, Performance)."""
    flags = cpu_flags(cpuinfo)
    return None if flags is None else "avx512f" in flags
