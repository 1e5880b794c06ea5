"""The configuration of one training run: the one place a setting is defined.

Nested frozen dataclasses in the style of tensorflow/models' config definitions:
`RunConfig` holds a `DataConfig`, `ModelConfig`, `TrainingConfig` and `RuntimeConfig`.
Every field is declared with `setting(...)`, which carries its help text, choices and
lower bound; `vae-tf train`'s options are generated from these fields
(`vae_tf.cli.train`) and `validate` checks a whole configuration at once, so a bad value is
refused before anything is loaded or written. `DataConfig` fields are `load_data`'s
keyword arguments and `ModelConfig` fields are `make_model`'s.

config.json stores `RunConfig.to_dict()`; flat files written before format 2 load
through `RunConfig.from_dict` too.
"""

import dataclasses
import json
import pathlib
import types
import typing

from vae_tf.analysis.evaluation import IW_SAMPLES
from vae_tf.analysis.projector import PROJECTOR_EXAMPLES
from vae_tf.core.optimizers import ADAM_EPSILON, LR_SCHEDULES
from vae_tf.core.networks import ACTIVATION, ACTIVATIONS, FILTERS, HIDDEN_UNITS
from vae_tf.data import BINARIZE, COLOR_MODES, VALIDATION_FRACTION, sources
from vae_tf.runtime.distribute import STRATEGIES
from vae_tf.core.layers import BETA, FREE_BITS
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.models.factory import ARCHS
from vae_tf.core.likelihoods import LIKELIHOODS
from vae_tf.models import registry
from vae_tf.runtime.names import check_name

FORMAT_VERSION = 2  # config.json's format; its presence marks a directory as a vae_tf run


class ConfigError(ValueError):
    """A setting, or a combination of settings, that no run accepts."""


def setting(default, help, *, choices=None, minimum=None, flag=None, metavar=None):
    """A config field with what the command line and `validate` need to know about it.

    Args:
        default: the value when not given.
        help: str. The option's help text.
        choices: tuple or None. Allowed values (from the owning module's registry).
        minimum: number or None. Lowest allowed value (of each item, for a tuple).
        flag: str or None. The option's name; defaults to `--field-name`.
        metavar: str or tuple or None. argparse metavar.

    Returns:
        A `dataclasses.field`.
    """
    metadata = {"help": help, "choices": choices, "minimum": minimum, "flag": flag, "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are batched (`vae_tf.data.load_data`)."""

    dataset: str = setting("fashion_mnist", sources.describe())
    data_dir: str | None = setting(None, "directory of IDX files, images, or tfds data; the "
                                         "table file for --dataset tabular")
    label_column: str | None = setting(None, "--dataset tabular (CSV): the column of class labels, "
                                             "kept out of the features", metavar="NAME")
    columns: str | None = setting(None, "--dataset tabular (CSV): the feature columns, comma-separated "
                                        "(default: all but --label-column)", metavar="A,B,C")
    image_size: tuple[int, int] | None = setting(
        None, "resize images (required for --dataset folder)", minimum=1, metavar=("H", "W"))
    color_mode: str = setting("rgb", "channels for --dataset folder", choices=COLOR_MODES)
    binarize: str = setting("none", "binarize pixels: static (threshold 0.5) or dynamic "
                                    "(a fresh Bernoulli draw per epoch)", choices=BINARIZE)
    validation_fraction: float = setting(
        VALIDATION_FRACTION, "part of train held out for validation, in [0, 1): val_* curves, and "
                             "the split vae-tf calibrate thresholds on (0: train on all of it)",
        minimum=0.0)
    batch_size: int = setting(128, "global batch size", minimum=1)
    limit: int | None = setting(None, "train on a seeded random subset of N training examples "
                                      "(default: all)", minimum=1, metavar="N")
    cache: int = setting(0, "MiB of memory for keeping decoded images of streamed sources (--dataset "
                            "folder, dsprites) after the first epoch: train, then validation, then test, "
                            "each if it fits in what remains (0: decode every epoch)",
                         minimum=0, metavar="MIB")


def _families_with(name):
    """The names of the families that have option `name`."""
    return tuple(f for f in registry.names() if any(o.name == name for o in registry.get(f).options))


def family_setting(name, default=None):
    """A config field for the family option `name`, described by the registry's `Option`:
    None means the chosen family's default, and a family without the option refuses it.

    Args:
        name: str. An option of at least one family, e.g. "train_samples".
        default: str or None. Says what None means when it is not the registry's default.

    Returns:
        A `dataclasses.field` whose metadata also names the option (`family_option`).
    """
    families = _families_with(name)
    option = next(o for f in families for o in registry.get(f).options if o.name == name)
    help = f"{option.help}; --model {', '.join(families)} (default: {default or option.default})"
    field = setting(None, help, choices=option.choices, minimum=option.minimum)
    field.metadata = types.MappingProxyType({**field.metadata, "family_option": name})
    return field


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model and networks (`vae_tf.make_model`)."""

    kind: str = setting("vae", "model kind", choices=registry.names(), flag="--model")
    arch: str = setting("mlp", "encoder/decoder architecture", choices=ARCHS)
    latent_dim: int = setting(20, "size of the latent code z", minimum=1)
    hidden_units: tuple[int, ...] = setting(HIDDEN_UNITS, "MLP hidden layer widths", minimum=1)
    filters: tuple[int, ...] = setting(FILTERS, "conv encoder filters (the decoder mirrors them)",
                                       minimum=1)
    activation: str = setting(ACTIVATION, "activation of the hidden layers (mlp and conv)", choices=ACTIVATIONS)
    likelihood: str | None = setting(
        None, f"reconstruction likelihood (default: {LIKELIHOOD}; feature_gaussian, one learned sigma "
              "per feature, for --dataset tabular)", choices=tuple(LIKELIHOODS))
    sigma: float | None = setting(None, "Gaussian sigma (default 1.0); only with --likelihood gaussian")
    learn_sigma: bool = setting(False, "learn the Gaussian sigma; only with --likelihood gaussian")
    beta: float = setting(BETA, "KL weight", minimum=0.0)
    free_bits: float = setting(FREE_BITS, "per-dimension KL floor, nats", minimum=0.0)
    # The families' own options (vae_tf.models.registry); None: the family's default.
    prior: str | None = family_setting("prior")
    prior_components: int | None = family_setting("prior_components")
    train_samples: int | None = family_setting("train_samples")
    top_latent_dim: int | None = family_setting("top_latent_dim")
    top_hidden_units: int | None = family_setting("top_hidden_units")
    tc_weight: float | None = family_setting("tc_weight")
    tc_estimator: str | None = family_setting("tc_estimator")
    dataset_size: int | None = family_setting("dataset_size", "the training split's size")
    num_embeddings: int | None = family_setting("num_embeddings")
    embedding_dim: int | None = family_setting("embedding_dim")
    codebook_ema: bool | None = family_setting("codebook_ema")
    commitment: float | None = family_setting("commitment")
    mmd_weight: float | None = family_setting("mmd_weight")
    info_alpha: float | None = family_setting("info_alpha")
    info_lambda: float | None = family_setting("info_lambda")
    mmd_kernel: str | None = family_setting("mmd_kernel", "imq for wae, rbf for infovae")
    mmd_multiscale: bool | None = family_setting("mmd_multiscale", "on for wae, off for infovae")
    factor_tc_weight: float | None = family_setting("factor_tc_weight")
    discriminator_layers: int | None = family_setting("discriminator_layers")
    discriminator_units: int | None = family_setting("discriminator_units")
    discriminator_lr: float | None = family_setting("discriminator_lr")
    gumbel_categories: int | None = family_setting("gumbel_categories")
    gumbel_temperature: float | None = family_setting("gumbel_temperature")
    gumbel_temperature_min: float | None = family_setting("gumbel_temperature_min")
    gumbel_anneal_rate: float | None = family_setting("gumbel_anneal_rate")
    gumbel_anneal_every: int | None = family_setting("gumbel_anneal_every")
    gumbel_straight_through: bool | None = family_setting("gumbel_straight_through")
    capacity_max: float | None = family_setting("capacity_max")
    capacity_steps: int | None = family_setting("capacity_steps")
    capacity_weight: float | None = family_setting("capacity_weight")
    dip_type: str | None = family_setting("dip_type")
    dip_lambda_od: float | None = family_setting("dip_lambda_od")
    dip_lambda_d: float | None = family_setting("dip_lambda_d", "10 x --dip-lambda-od for --dip-type i, "
                                                                "--dip-lambda-od for ii")
    flow: str | None = family_setting("flow")
    flow_steps: int | None = family_setting("flow_steps")
    flow_hidden_units: int | None = family_setting("flow_hidden_units")

    def family_options(self):
        """The family options that were given (not None), as `make_model` keywords."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if "family_option" in f.metadata and getattr(self, f.name) is not None}

    def common_options(self):
        """The settings every family takes, as `make_model` keywords."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if "family_option" not in f.metadata}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the model is fitted and evaluated."""

    epochs: int = setting(10, "training epochs", minimum=1)
    lr: float = setting(1e-3, "Adam learning rate, > 0")
    lr_schedule: str = setting("constant", "constant: --lr throughout; staged: the IWAE paper's 3^i passes "
                                           "at --lr * 10^(-i/7), i = 0..7 (3,280 passes in all)",
                               choices=LR_SCHEDULES)
    adam_epsilon: float = setting(ADAM_EPSILON, "Adam's epsilon, > 0 (the IWAE paper's: 1e-4)")
    init_output_bias: bool = setting(
        True, "start the decoder's output biases at the logits of the training images' mean "
              "(MLP decoders, Bernoulli likelihood), as the IWAE paper's code does; "
              "--no-init-output-bias keeps the network's random initialization")
    kl_warmup_epochs: int = setting(0, "linear KL warm-up from 0 to --beta over this many epochs",
                                    minimum=0)
    seed: int = setting(0, "seed of the data order, the validation split and the sampling noise")
    iw_samples: int = setting(IW_SAMPLES, "importance samples for the test log-likelihood", minimum=1)
    curve_iw_samples: int = setting(
        0, "after epochs 1, 4, 13, 40, ... (the ends of the staged schedule's stages) and the last, "
           "the test metrics with this many importance samples go to curve.csv; 0: none",
        minimum=0, metavar="K")
    projector_examples: int = setting(
        PROJECTOR_EXAMPLES, "test examples whose latent means go to TensorBoard's Embedding Projector "
              "(logs/projector); 0 turns it off", minimum=0, metavar="N")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the computation runs; the numbers it gives do not depend on it
    beyond rounding."""

    strategy: str = setting(
        "auto", "tf.distribute strategy; auto: multi_worker with a TF_CONFIG cluster, mirrored "
                "with several GPUs, else one device", choices=STRATEGIES)
    cpu_replicas: int = setting(
        1, "split the CPU into N logical devices (for --strategy mirrored without GPUs)", minimum=1)
    deterministic: bool = setting(
        False, "deterministic ops (tf.config.experimental.enable_op_determinism): a rerun, or a "
               "resumed run, gives bit-identical weights; slower")
    checkpoint_every_steps: int = setting(
        0, "also save a checkpoint within an epoch every N training steps (at the end of "
           "the execution of steps that reaches them), for long epochs; one is saved at every "
           "epoch end, and on SIGTERM or Ctrl-C; 0: no others", minimum=0, metavar="N")
    mixed_precision: bool | None = setting(
        None, "compute in bfloat16 (CPUs with bfloat16 instructions) or float16 (GPUs), weights, "
              "code, KL and likelihood in float32: faster conv models, numbers differ slightly "
              "from float32; default: on for --arch conv on a CPU with bfloat16 instructions "
              "and no GPU, off otherwise (vae_tf.runtime.precision.policy_name)")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig, "runtime": RuntimeConfig}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything needed to repeat a run, validated in full on construction.

    Defaults follow the tutorials: an MLP VAE with 400 hidden units and a 20-D latent,
    Bernoulli likelihood, batch 128, Adam 1e-3, 10 epochs.

    Example:

    >>> config = RunConfig(name="small", model=ModelConfig(latent_dim=2),
    ...                    training=TrainingConfig(epochs=3))
    >>> config.run_name
    'small'
    """

    name: str | None = setting(None, "run name (default MODEL-ARCH-DATASET)")
    out: str = setting("runs", "runs root directory")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def __post_init__(self):
        validate(self)

    @property
    def run_name(self):
        if self.name is not None:
            return self.name
        return f"{self.model.kind}-{self.model.arch}-{self.data.dataset}"

    def to_dict(self):
        """The JSON form written as config.json (nested, with the format version)."""
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values):
        """A validated config from `to_dict()` output, or from a flat config of format 1."""
        values = dict(values)
        version = values.pop("format_version", 1)
        if version == 1:
            values = _nest(values)
        elif version != FORMAT_VERSION:
            raise ConfigError(f"config format_version {version} is not supported "
                              f"(this vae_tf reads 1 and {FORMAT_VERSION})")
        sections = {name: _build(section, values.pop(name, {}), name) for name, section in SECTIONS.items()}
        return _build(cls, values, None, sections)


def option_fields(config_class=RunConfig):
    """(section or None, field) for every setting of a run, in command-line order."""
    for field in dataclasses.fields(config_class):
        if field.name in SECTIONS:
            yield from ((field.name, f) for f in dataclasses.fields(SECTIONS[field.name]))
    yield from ((None, f) for f in dataclasses.fields(config_class) if f.name not in SECTIONS)


def option_dest(section, field):
    """The key of a setting among parsed options: "section.field", or "field" at the top."""
    return f"{section}.{field.name}" if section else field.name


@dataclasses.dataclass(frozen=True)
class Preset:
    """A protocol from the literature as settings: `vae-tf train --preset NAME`.

    Args:
        help: str. What the protocol is and where it comes from.
        settings: dict. Values keyed by `option_dest`; options given still win.
    """

    help: str
    settings: dict


PRESETS = {
    "iwae-paper": Preset(
        "Burda, Grosse & Salakhutdinov (2016), 'Importance Weighted Autoencoders', section 5, "
        "one stochastic layer: 784-200-200-50 tanh MLPs and a Bernoulli decoder, dynamically "
        "binarized training images (all of them: no validation split), batch 20, Adam "
        "(epsilon 1e-4) at 1e-3 with the staged schedule over 3,280 passes, test "
        "log-likelihood with K = 5,000; choose --model vae, or iwae with --train-samples 5",
        {"model.hidden_units": (200, 200), "model.latent_dim": 50, "model.activation": "tanh",
         "model.likelihood": "bernoulli", "data.binarize": "dynamic", "data.validation_fraction": 0.0,
         "data.batch_size": 20, "training.lr": 1e-3, "training.lr_schedule": "staged",
         "training.adam_epsilon": 1e-4, "training.epochs": 3280, "training.iw_samples": 5000,
         "training.curve_iw_samples": 1000}),
}


def config_from_options(options):
    """The validated RunConfig of options keyed by `option_dest` (e.g. `vars()` of what the
    parser `vae-tf train` builds from these fields parses); lists become tuples. A
    setting left out takes its value from the preset named by `options["preset"]`, if
    any, else its default.

    Example:

    >>> config_from_options({"model.latent_dim": 2, "training.epochs": 1}).model.latent_dim
    2
    >>> config_from_options({"preset": "iwae-paper"}).training.lr_schedule
    'staged'
    """
    preset = options.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"--preset must be one of {tuple(PRESETS)}, got {preset!r}")
    options = {**(PRESETS[preset].settings if preset else {}), **options}
    values = {"format_version": FORMAT_VERSION, **{section: {} for section in SECTIONS}}
    for section, field in option_fields():
        key = option_dest(section, field)
        if key in options:
            value = options[key]
            (values[section] if section else values)[field.name] = tuple(value) if isinstance(value, list) else value
    return RunConfig.from_dict(values)


def flag(field):
    """A setting's command-line option, e.g. "--latent-dim"."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def value_type(field):
    """(Python type, item type or None, tuple length or None for any) of a setting."""
    annotation = field.type
    if isinstance(annotation, types.UnionType):  # X | None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is tuple:
        items = typing.get_args(annotation)
        return tuple, items[0], None if items[-1] is Ellipsis else len(items)
    return annotation, None, None


def _build(config_class, values, section, sections=None):
    """`config_class(**values)` from JSON values (lists become tuples), naming unknown keys."""
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be a JSON object, got {values!r}")
    sections = sections or {}
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.name not in sections}
    unknown = set(values) - set(fields)
    if unknown:
        where = f" in section {section!r}" if section else ""
        raise ConfigError(f"unknown config keys{where}: {sorted(unknown)}")
    converted = {
        key: tuple(value) if value_type(fields[key])[0] is tuple and isinstance(value, list) else value
        for key, value in values.items()
    }
    return config_class(**converted, **sections)


def _nest(flat):
    """Format 1 (one flat object, `model` naming the kind) to format 2's sections."""
    nested = {section: {} for section in SECTIONS}
    where = {flag(f)[2:].replace("-", "_"): (s, f.name) for s, f in option_fields()}
    for key, value in flat.items():
        if key not in where:
            raise ConfigError(f"unknown config keys: {[key]}")
        section, name = where[key]
        (nested[section] if section else nested)[name] = value
    return nested


def _check_field(section, field, value):
    """Type, choices and lower bound of one setting."""
    name = flag(field)
    python_type, item_type, length = value_type(field)
    optional = isinstance(field.type, types.UnionType)
    if value is None:
        if not optional:
            raise ConfigError(f"{name} must be given, got None")
        return
    items = value if python_type is tuple else (value,)
    item_type = item_type or python_type
    if python_type is tuple and (not isinstance(value, tuple) or (length and len(value) != length)
                                 or not value):
        count = f"{length}" if length else "one or more"
        raise ConfigError(f"{name} must be {count} values, got {value!r}")
    for item in items:
        numeric = item_type in (int, float)
        ok = isinstance(item, item_type) and not (numeric and isinstance(item, bool))
        if item_type is float:
            ok = isinstance(item, (int, float)) and not isinstance(item, bool)
        if not ok:
            raise ConfigError(f"{name} must be {item_type.__name__}, got {value!r}")
        if field.metadata.get("choices") and item not in field.metadata["choices"]:
            raise ConfigError(f"{name} must be one of {', '.join(field.metadata['choices'])}, got {item!r}")
        minimum = field.metadata.get("minimum")
        if minimum is not None and not item >= minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")


def validate(config):
    """Checks every setting of `config` and their combinations; raises ConfigError naming
    the option and value.

    Args:
        config: RunConfig.
    """
    for section, field in option_fields():
        holder = getattr(config, section) if section else config
        _check_field(section, field, getattr(holder, field.name))
    data, model, training = config.data, config.model, config.training
    if not config.out:
        raise ConfigError("--out must name a directory, got ''")
    check_positive("--lr", training.lr)
    check_positive("--adam-epsilon", training.adam_epsilon)
    if not data.validation_fraction < 1:
        raise ConfigError(f"--validation-fraction must be in [0, 1), got {data.validation_fraction!r}")
    likelihood = resolved_likelihood(config)
    if likelihood != "gaussian" and (model.sigma is not None or model.learn_sigma):
        option = "--sigma" if model.sigma is not None else "--learn-sigma"
        raise ConfigError(f"{option} applies only to --likelihood gaussian, not {likelihood!r}")
    if model.sigma is not None:
        check_positive("--sigma", model.sigma)
    if not is_variational_kind(model.kind) and (model.beta != BETA or model.free_bits):
        option = "--beta" if model.beta != BETA else "--free-bits"
        raise ConfigError(f"{option} applies only to variational models, not --model {model.kind}")
    _check_family_options(model)
    if registry.get(model.kind).networks is not None and model.activation != ACTIVATION:
        raise ConfigError(f"--activation: --model {model.kind} builds its own networks, "
                          f"which take only {ACTIVATION!r}, got {model.activation!r}")
    try:
        sources.check(data.dataset, data.data_dir, data.image_size, data.binarize,
                      label_column=data.label_column, columns=data.columns)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    _check_tabular(config)
    if is_conditional_kind(model.kind) and data.dataset == "folder":
        folder = pathlib.Path(data.data_dir)
        if folder.is_dir() and not any(p.is_dir() for p in folder.iterdir()):
            raise ConfigError(f"--model {model.kind} needs labelled data, but --data-dir {folder} "
                              "has no class sub-folders")
    default_name = "the default run name MODEL-ARCH-DATASET (pass --name)"
    try:
        check_name(config.run_name, default_name if config.name is None else "--name")
    except ValueError as error:
        raise ConfigError(str(error)) from None


def check_positive(option, value):
    """Raises ConfigError naming `option` unless `value` > 0 (a rate, a scale, a temperature)."""
    if not value > 0:
        raise ConfigError(f"{option} must be > 0, got {value!r}")


def resolved_likelihood(config):
    """The likelihood a run uses: --likelihood, else feature_gaussian for a table and
    bernoulli for images."""
    if config.model.likelihood is not None:
        return config.model.likelihood
    return "feature_gaussian" if config.data.dataset == "tabular" else LIKELIHOOD


def _check_tabular(config):
    """Settings of --dataset tabular, and the table-only settings elsewhere."""
    data, model = config.data, config.model
    tabular = data.dataset == "tabular"
    if not tabular:
        if model.likelihood == "feature_gaussian":
            raise ConfigError("--likelihood feature_gaussian applies only to --dataset tabular")
        return
    if model.arch != "mlp":
        raise ConfigError(f"--dataset tabular needs --arch mlp (records are vectors), not {model.arch!r}")
    if resolved_likelihood(config) == "bernoulli":
        raise ConfigError("--dataset tabular takes --likelihood feature_gaussian (the default) or "
                          "gaussian; bernoulli needs values in [0, 1]")
    if data.columns is not None:
        from vae_tf.data.tabular import parse_columns

        try:
            parse_columns(data.columns)
        except ValueError as error:
            raise ConfigError(str(error)) from None


def _check_family_options(model):
    """Each given family option belongs to --model's family and is within its bounds."""
    family = registry.get(model.kind)
    known = {option.name: option for option in family.options}
    for name, value in model.family_options().items():
        option_flag = "--" + name.replace("_", "-")
        if name not in known:
            raise ConfigError(f"{option_flag} applies only to --model {', '.join(_families_with(name))}, "
                              f"not --model {model.kind}")
        try:
            known[name].validate(value)
        except ValueError as error:
            raise ConfigError(f"{option_flag}: {error}") from None
    if model.prior_components is not None and (model.prior or known["prior"].default) != "vamp":
        raise ConfigError("--prior-components applies only to --prior vamp")
    try:
        family.resolve(model.family_options())  # the family's own check of options together
    except ValueError as error:
        message = str(error)
        for option in family.options:
            message = message.replace(option.name, "--" + option.name.replace("_", "-"))
        raise ConfigError(message) from None
    try:
        family.check_arch(model.arch)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def is_variational_kind(kind):
    """Whether models of family `kind` have a KL term, as the family registry says."""
    return registry.get(kind).variational


def is_conditional_kind(kind):
    """Whether models of family `kind` need labels, as the family registry says."""
    return registry.get(kind).conditional


def read_config(run_dir):
    """The RunConfig in `run_dir/config.json` (either format), validated.

    Raises:
        FileNotFoundError: no config.json.
        ValueError: the file is not a valid vae_tf configuration.
    """
    path = pathlib.Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json)")
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ConfigError("not a JSON object")
        return RunConfig.from_dict(values)
    except (json.JSONDecodeError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a valid run configuration ({error})") from error
