"""The one rule for run and export names: a single, plain path component."""

import re

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAME_RULE = "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_name(name, option="--name"):
    """Returns `name` if it is a plain run or export name, else raises ValueError.

    Names are a single path component matching `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`:
    no `/`, `\\`, NUL, `.` or `..`, and no leading dot (hidden names are kept for
    vae_tf's own temporary directories).

    Args:
        name: str. The name to check.
        option: str. What to call the value in the message. Defaults to "--name".

    Returns:
        `name`, unchanged.

    Example:

    >>> check_name("vae-mlp-fashion_mnist")
    'vae-mlp-fashion_mnist'
    """
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"{option} {name!r} is not a valid name: use {NAME_RULE}")
    return name
