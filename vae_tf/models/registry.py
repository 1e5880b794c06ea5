"""The registry of model families: name -> family, with the options each family adds.

Each family module registers one `Family` when it is imported. A `Family` lists its
constructor options as `Option`s (name, type, default, help, valid values), the shape
a command-line or config generator reads, and builds its model from an encoder, a
decoder and those options. `vae_tf.make_model` and the CLI take their choices from here.

Example:

>>> from vae_tf.models import registry
>>> registry.names()                                   # ('ae', 'cvae', 'iwae', ...)
>>> [o.name for o in registry.get("iwae").options]     # ['train_samples', 'prior', ...]
"""

import dataclasses
from typing import Any, Callable, Optional

from vae_tf.core.priors import PRIORS, VAMP_COMPONENTS


@dataclasses.dataclass(frozen=True)
class Option:
    """One constructor option of a family.

    Args:
        name: str. Python keyword (a CLI flag is `--` + name with `-` for `_`).
        type: type. int, float, str or bool.
        default: the value used when the option is not given; None for an option the
            family derives from the others when it is not given (its model class says how).
        help: str. One sentence for `--help`.
        choices: tuple or None. The allowed values, if a fixed set.
        minimum: number or None. Smallest allowed value (inclusive).
        maximum: number or None. Largest allowed value (inclusive).
    """

    name: str
    type: type
    default: Any
    help: str
    choices: Optional[tuple] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None

    def validate(self, value):
        """Returns `value` if allowed, else raises ValueError naming the option."""
        if value is None and self.default is None:
            return None  # left to the family to derive
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise ValueError(f"{self.name} must be a {self.type.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{self.name} must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{self.name} must be <= {self.maximum}, got {value!r}")
        return value


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family as `make_model` and the CLI see it.

    Args:
        name: str. The `kind` / `--model` value, e.g. "iwae".
        summary: str. One line: what it is and when to use it.
        model_class: type. The `keras.Model` subclass.
        variational: bool. Its encoder is variational (outputs z_mean, z_log_var, z).
        conditional: bool. It needs `num_classes` and labels.
        build: callable. `build(encoder, decoder, *, likelihood, beta, seed,
            num_classes, input_shape, **options)` -> model.
        options: tuple of Option. Family-specific constructor options.
        networks: callable or None. `networks(arch, input_shape, filters, *, latent_dim,
            hidden_units, dense_units, activation, scaling, free_bits, seed, **options)` ->
            (encoder, decoder), for a family whose networks differ from `vae_tf.core.networks`'
            (VQ-VAE: a grid of vectors; Gumbel-softmax: categorical codes); None builds
            those. Defaults to None.
        archs: tuple or None. The architectures its networks come in; None: every one.
            Defaults to None.
        check: callable or None. `check(options)`, given every option's value, raises
            ValueError when they do not go together (InfoVAE: alpha + lambda >= 1).
            Defaults to None.
    """

    name: str
    summary: str
    model_class: type
    variational: bool
    conditional: bool
    build: Callable
    options: tuple = ()
    networks: Optional[Callable] = None
    archs: Optional[tuple] = None
    check: Optional[Callable] = None

    def check_arch(self, arch):
        """Raises ValueError unless the family's networks come in architecture `arch`."""
        if self.archs is not None and arch not in self.archs:
            raise ValueError(f"--model {self.name} needs --arch {' or '.join(self.archs)}, not {arch!r}")

    def resolve(self, options):
        """Returns every option's value: the given ones validated, the rest defaults."""
        known = {option.name: option for option in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(
                f"model {self.name!r} has no option {unknown[0]!r}; its options are "
                f"{sorted(known) or 'none'}"
            )
        values = {
            name: option.validate(options[name]) if name in options else option.default
            for name, option in known.items()
        }
        if self.check is not None:
            self.check(values)
        return values


PRIOR_OPTIONS = (
    Option("prior", str, PRIORS[0], "prior p(z): the standard normal or a VampPrior",
           choices=PRIORS),
    Option("prior_components", int, VAMP_COMPONENTS, "VampPrior pseudo-inputs K (with --prior vamp)",
           minimum=1),
)

_FAMILIES = {}


def register(family):
    """Adds a family; its name must be new."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def get(name):
    """Returns the family called `name`, or raises ValueError listing the known ones."""
    if name not in _FAMILIES:
        raise ValueError(f"kind must be one of {names()}, got {name!r}")
    return _FAMILIES[name]


def names():
    """Returns the registered family names, sorted."""
    return tuple(sorted(_FAMILIES))
