"""The families' own options as config fields and `vae-tf train` flags (vae_tf.config)."""

import dataclasses
import json

import pytest

from vae_tf.cli import build_parser, main
from vae_tf.config import ConfigError, ModelConfig, RunConfig, read_config
from vae_tf.models import registry
from vae_tf.runs.training import build_model, load_config_data



def registry_options():
    return {o.name: o for f in registry.names() for o in registry.get(f).options}


def test_every_family_option_is_a_config_field_described_by_the_registry():
    fields = {f.name: f for f in dataclasses.fields(ModelConfig) if "family_option" in f.metadata}
    assert set(fields) == set(registry_options())
    for name, option in registry_options().items():
        field = fields[name]
        assert field.default is None and option.help in field.metadata["help"]
        assert field.metadata["choices"] == option.choices
        assert field.metadata["minimum"] == option.minimum
        assert option.type.__name__ in str(field.type)


def train_args(*argv):
    parser = build_parser()._subparsers._group_actions[0].choices["train"]
    return parser.parse_args(list(argv))


def config_of(*argv):
    from vae_tf.config import config_from_options

    return config_from_options(vars(train_args(*argv)))


def test_the_documented_commands_parse_to_the_options_make_model_gets():
    assert config_of("--model", "iwae", "--train-samples", "5").model.family_options() == {"train_samples": 5}
    vamp = config_of("--prior", "vamp", "--prior-components", "500").model
    assert vamp.family_options() == {"prior": "vamp", "prior_components": 500}
    assert config_of("--model", "tcvae", "--tc-weight", "6").model.family_options() == {"tc_weight": 6.0}
    assert config_of("--model", "vae").model.family_options() == {}
    assert config_of("--model", "wae", "--mmd-weight", "10", "--mmd-kernel", "imq").model.family_options() == {
        "mmd_weight": 10.0, "mmd_kernel": "imq"}
    info = config_of("--model", "infovae", "--info-alpha", "0", "--info-lambda", "1000").model
    assert info.family_options() == {"info_alpha": 0.0, "info_lambda": 1000.0}
    choices = {a.dest: a.choices for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    assert tuple(choices["model.prior"]) == ("standard", "vamp")


@pytest.mark.parametrize("model, message", [
    (dict(kind="vae", train_samples=5), "--train-samples applies only to --model hvae, iwae, not --model vae"),
    (dict(kind="iwae", tc_weight=2.0), "--tc-weight applies only to --model tcvae"),
    (dict(kind="ae", prior="vamp"), "--prior applies only to --model iwae, tcvae, vae"),
    (dict(kind="cvae", prior_components=10), "--prior-components applies only to --model iwae"),
    (dict(kind="vae", prior_components=10), "--prior-components applies only to --prior vamp"),
    (dict(kind="iwae", train_samples=0), "--train-samples must be >= 1"),
    (dict(kind="tcvae", tc_estimator="naive"), "--tc-estimator must be one of mss, mws"),
    (dict(kind="tcvae", dataset_size=1), "--dataset-size must be >= 2"),
    (dict(kind="vae", mmd_weight=1.0), "--mmd-weight applies only to --model wae, not --model vae"),
    (dict(kind="wae", info_alpha=1.0), "--info-alpha applies only to --model infovae"),
    (dict(kind="iwae", mmd_kernel="rbf"), "--mmd-kernel applies only to --model infovae, wae"),
    (dict(kind="wae", beta=2.0), "--beta applies only to variational models, not --model wae"),
    (dict(kind="infovae", info_alpha=1.5), "--info-alpha: info_alpha must be <= 1"),
    (dict(kind="infovae", info_alpha=0.0, info_lambda=0.5), "--info-lambda must be >= 1"),  # with --info-alpha
])
def test_an_option_of_another_family_or_out_of_range_is_one_clear_error(model, message):
    with pytest.raises(ConfigError, match=message.replace("-", r"\-")):
        RunConfig(model=ModelConfig(**model))


def test_cli_refuses_a_foreign_option_before_writing(tmp_path, capsys):
    assert main(["train", "--model", "vae", "--train-samples", "5", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "vae-tf: error: --train-samples applies only to --model hvae, iwae, not --model vae"
    assert not (tmp_path / "r").exists()


def test_build_model_passes_the_options_and_the_training_size(small_config):
    config = small_config(model="tcvae", tc_weight=2.0, tc_estimator="mws")
    data = load_config_data(config)
    tcvae = build_model(config, data)
    assert float(tcvae.tc_weight.numpy()) == 2.0 and tcvae.estimator == "mws"
    assert tcvae.dataset_size == 7200  # 8,000 training images (conftest) less 10% validation
    given = build_model(small_config(model="tcvae", dataset_size=123), data)
    assert given.dataset_size == 123
    iwae = build_model(small_config(model="iwae", train_samples=3, prior="vamp", prior_components=4), data)
    assert iwae.train_samples == 3 and iwae.prior.num_components == 4


def test_a_config_json_without_the_family_options_still_loads(tmp_path):
    values = RunConfig().to_dict()
    for name in registry_options():
        del values["model"][name]
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert read_config(tmp_path) == RunConfig()
    (tmp_path / "config.json").write_text(json.dumps({"model": "iwae", "latent_dim": 3}))  # format 1
    old = read_config(tmp_path)
    assert old.model.kind == "iwae" and old.model.train_samples is None


def test_a_preset_sets_what_the_command_line_leaves_out():
    """--preset iwae-paper: the paper's settings replace the defaults; options given win,
    even when they equal the default (here --batch-size 128)."""
    config = config_of("--preset", "iwae-paper", "--model", "iwae", "--train-samples", "5",
                       "--batch-size", "128")
    assert (config.model.hidden_units, config.model.latent_dim, config.model.activation) == ((200, 200), 50, "tanh")
    assert (config.data.binarize, config.data.validation_fraction) == ("dynamic", 0.0)
    assert (config.training.lr_schedule, config.training.adam_epsilon, config.training.epochs) == ("staged", 1e-4, 3280)
    assert config.training.iw_samples == 5000 and config.model.train_samples == 5
    assert config.data.batch_size == 128
    assert config_of("--batch-size", "64").training.lr_schedule == "constant"  # no preset: the defaults
