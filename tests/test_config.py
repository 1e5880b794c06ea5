"""The nested run configuration: one definition per setting, validated in full, JSON
round trips, and flat config.json files from before format 2 still load."""

import dataclasses
import inspect
import json
import pathlib

import pytest

from vae_tf.config import (
    FORMAT_VERSION, SECTIONS, ConfigError, DataConfig, ModelConfig, RunConfig, RuntimeConfig,
    TrainingConfig, flag, option_fields, read_config,
)
from vae_tf.data import VALIDATION_FRACTION, load_data
from vae_tf.models.factory import make_model
from vae_tf.models import registry

BEFORE_MOVE_RUN = pathlib.Path(__file__).parent / "fixtures" / "before_move" / "run"
# config.json exactly as TrainConfig.to_dict() wrote it before format 2 (no format_version).
FLAT_CONFIG = {
    "model": "cvae", "arch": "conv", "dataset": "idx", "data_dir": "/data", "image_size": None,
    "color_mode": "rgb", "latent_dim": 16, "hidden_units": [400], "filters": [32, 64],
    "likelihood": "gaussian", "sigma": 0.1, "learn_sigma": False, "beta": 2.0, "kl_warmup_epochs": 3,
    "free_bits": 0.5, "binarize": "dynamic", "validation_fraction": 0.1, "epochs": 20, "batch_size": 64,
    "lr": 0.0005, "seed": 7, "iw_samples": 100, "strategy": "mirrored", "cpu_replicas": 2,
    "deterministic": True, "mixed_precision": False, "name": "old-run", "out": "runs",
}


def test_a_flat_config_from_before_format_2_migrates(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(FLAT_CONFIG))
    config = read_config(tmp_path)
    assert config.model == ModelConfig(kind="cvae", arch="conv", latent_dim=16, hidden_units=(400,),
                                       filters=(32, 64), likelihood="gaussian", sigma=0.1, beta=2.0,
                                       free_bits=0.5)
    # validation_fraction keeps its recorded 0.1, not today's default of 0.
    assert config.data == DataConfig(dataset="idx", data_dir="/data", binarize="dynamic",
                                     validation_fraction=0.1, batch_size=64)
    assert config.training == TrainingConfig(epochs=20, lr=0.0005, kl_warmup_epochs=3, seed=7)
    # False was the only way to say "float32" then, and stays float32 (not the new default).
    assert config.runtime == RuntimeConfig(strategy="mirrored", cpu_replicas=2, deterministic=True,
                                           mixed_precision=False)
    assert (config.name, config.out, config.run_name) == ("old-run", "runs", "old-run")
    # format 1 with its version number, as issue 23's interim format wrote it
    assert RunConfig.from_dict({"format_version": 1, **FLAT_CONFIG}) == config


def test_a_run_config_written_before_a_default_changed_keeps_its_recorded_values():
    """config.json holds every setting, so a run trained under an older default (a 10%
    validation split until the likelihood measurements, docs/guides/defaults.md) reads back
    as it was trained: its data splits, and `vae-tf calibrate`'s validation split, stay."""
    assert read_config(BEFORE_MOVE_RUN).data.validation_fraction == 0.1
    assert DataConfig().validation_fraction == 0.0


def test_json_round_trip_is_exact():
    config = RunConfig(name="r", data=DataConfig(image_size=(8, 8), dataset="folder", data_dir="x"),
                       model=ModelConfig(hidden_units=(64, 32), likelihood="gaussian", learn_sigma=True))
    written = json.loads(json.dumps(config.to_dict()))
    assert written["format_version"] == FORMAT_VERSION and set(SECTIONS) <= set(written)
    assert RunConfig.from_dict(written) == config


@pytest.mark.parametrize("values, message", [
    ({"format_version": 9}, "format_version 9 is not supported"),
    ({"format_version": FORMAT_VERSION, "model": {"depth": 3}}, "unknown config keys in section 'model': ['depth']"),
    ({"format_version": FORMAT_VERSION, "colour": 1}, "unknown config keys: ['colour']"),
    ({"lattent_dim": 3}, "unknown config keys: ['lattent_dim']"),
    ({"format_version": FORMAT_VERSION, "training": [1]}, "section 'training' must be a JSON object"),
])
def test_bad_config_files_are_named(values, message):
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict(values)
    assert message in str(error.value)


def test_read_config_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text('{"epochs": 0}')
    with pytest.raises(ValueError, match=r"config.json: not a valid run configuration \(--epochs must be >= 1"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a valid run configuration"):
        read_config(tmp_path)


@pytest.mark.parametrize("changes, message", [
    ({"model": ModelConfig(latent_dim=2.5)}, "--latent-dim must be int, got 2.5"),
    ({"model": ModelConfig(latent_dim=True)}, "--latent-dim must be int, got True"),
    ({"model": ModelConfig(hidden_units=[32])}, "--hidden-units must be one or more values, got [32]"),
    ({"data": DataConfig(image_size=(8,), dataset="folder", data_dir="x")}, "--image-size must be 2 values"),
    ({"model": ModelConfig(kind="gan")}, f"--model must be one of {', '.join(registry.names())}, got 'gan'"),
    ({"runtime": RuntimeConfig(strategy="magic")}, "--strategy must be one of auto, default"),
    ({"data": DataConfig(binarize="sometimes")}, "--binarize must be one of none, static, dynamic"),
    ({"training": TrainingConfig(lr=-1.0)}, "--lr must be > 0, got -1.0"),
    ({"model": ModelConfig(beta=-0.5)}, "--beta must be >= 0.0, got -0.5"),
    ({"name": ".."}, "--name '..' is not a valid name"),
    ({"data": DataConfig(dataset="a/b")}, "the default run name MODEL-ARCH-DATASET (pass --name)"),
])
def test_the_python_api_is_validated_like_the_command_line(changes, message):
    with pytest.raises(ConfigError) as error:
        RunConfig(**changes)
    assert message in str(error.value)


def test_every_setting_is_one_option_with_help():
    flags = [flag(field) for _, field in option_fields()]
    assert len(flags) == len(set(flags))
    for section, config_class in SECTIONS.items():
        assert {f.name for s, f in option_fields() if s == section} == {f.name for f in dataclasses.fields(config_class)}
    assert all(field.metadata["help"] for _, field in option_fields())


def test_sections_are_the_keyword_arguments_of_load_data_and_make_model():
    assert {f.name for f in dataclasses.fields(DataConfig)} <= set(inspect.signature(load_data).parameters)
    # ... with the same defaults: `vae-tf train` and `load_data` split the data alike.
    parameters = inspect.signature(load_data).parameters
    assert {f.name: f.default for f in dataclasses.fields(DataConfig)} == \
        {f.name: parameters[f.name].default for f in dataclasses.fields(DataConfig)}
    assert DataConfig().validation_fraction == VALIDATION_FRACTION == 0.0  # train on all of it
    fields = dataclasses.fields(ModelConfig)
    common = {f.name for f in fields if "family_option" not in f.metadata}
    assert common <= set(inspect.signature(make_model).parameters)
    family_options = {o.name for kind in registry.names() for o in registry.get(kind).options}
    assert {f.name for f in fields if "family_option" in f.metadata} == family_options  # make_model's **options


def test_configs_are_frozen_and_replace_validates_again():
    config = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "x"
    assert dataclasses.replace(config, name="x").run_name == "x"
    with pytest.raises(ConfigError, match="--epochs must be >= 1"):
        dataclasses.replace(config, training=TrainingConfig(epochs=0))


def test_the_run_defaults_are_make_models_and_the_commands_read_them():
    """Each default is defined once: a ModelConfig builds what make_model builds by default,
    and the other commands' options default to the library's constants."""
    from vae_tf.analysis import anomaly, evaluation, projector, samplers
    from vae_tf.cli import build_parser

    defaults = {name: p.default for name, p in inspect.signature(make_model).parameters.items()}
    model = ModelConfig()
    for name in ("hidden_units", "filters", "beta", "free_bits"):
        assert getattr(model, name) == defaults[name], name
    assert RunConfig().training.iw_samples == evaluation.IW_SAMPLES
    assert RunConfig().training.projector_examples == projector.PROJECTOR_EXAMPLES
    commands = build_parser()._subparsers._group_actions[0].choices
    option = {(command, a.dest): a.default for command, p in commands.items() for a in p._actions}
    assert option["evaluate", "iw_samples"] == option["calibrate", "iw_samples"] == evaluation.IW_SAMPLES
    assert option["plot", "projector_examples"] == projector.PROJECTOR_EXAMPLES
    assert option["fit-sampler", "components"] == samplers.NUM_COMPONENTS
    assert option["calibrate", "fpr"] == anomaly.FPR


def test_a_familys_architecture_rule_is_checked_once_for_configs_and_make_model():
    message = "--model vqvae needs --arch conv, not 'mlp'"
    with pytest.raises(ConfigError, match=message):
        RunConfig(model=ModelConfig(kind="vqvae", arch="mlp"))
    with pytest.raises(ValueError, match=message):
        make_model("vqvae", "mlp", (28, 28, 1), 2)


def test_options_parsed_by_the_train_command_build_the_config():
    from vae_tf.config import config_from_options

    config = config_from_options({"model.latent_dim": 3, "model.hidden_units": [8, 8], "name": "n"})
    assert (config.model.latent_dim, config.model.hidden_units, config.name) == (3, (8, 8), "n")
    assert config.training == TrainingConfig()  # what is not given keeps its default
    with pytest.raises(ConfigError, match="--lr must be > 0, got 0.0"):
        config_from_options({"training.lr": 0.0})
