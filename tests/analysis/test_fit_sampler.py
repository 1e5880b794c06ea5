"""Ex-post density sampling from the command line: `vae-tf fit-sampler`, `sample --sampler`,
and the exported `sample` signature, end to end on the small_dir fixture with tiny settings."""

import numpy as np
import pytest
from PIL import Image

from vae_tf.cli import main
from vae_tf.serving.export import sample_saved_model
from vae_tf.runs.run import SAMPLER_FILE, Run
from vae_tf.analysis.samplers import GaussianMixtureSampler


@pytest.fixture(scope="module")
def tiny(tiny_run):
    return [*tiny_run, "--latent-dim", "3"]


@pytest.fixture(scope="module")
def ae_run(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("fit_sampler")
    assert main(["train", *tiny, "--model", "ae", "--name", "ae", "--out", str(root)]) == 0
    return root / "ae"


def test_fit_sampler_stores_a_mixture_of_the_training_codes(ae_run, capsys):
    assert main(["fit-sampler", str(ae_run), "--components", "4", "--seed", "1"]) == 0
    assert "4-component" in capsys.readouterr().out
    stored = GaussianMixtureSampler.load(ae_run / SAMPLER_FILE)
    assert stored.num_components == 4 and stored.latent_dim == 3
    assert not [p for p in ae_run.iterdir() if p.name.startswith(".")]  # no temporary left
    # The mixture's mean is the mean of the training codes (EM keeps the first moment).
    from vae_tf.analysis.evaluation import latent_features
    from vae_tf.runs.training import load_config_data

    run = Run(ae_run)
    codes, _ = latent_features(run.model, load_config_data(run.config).train)
    np.testing.assert_allclose(stored.weights @ stored.means, codes.mean(axis=0), atol=1e-3)


def test_an_ae_samples_from_its_mixture_in_the_cli_plots_and_export(ae_run, tmp_path, capsys):
    if not (ae_run / SAMPLER_FILE).is_file():
        assert main(["fit-sampler", str(ae_run), "--components", "4"]) == 0
    for argv in ([], ["--sampler", "gmm"]):  # without --sampler an AE uses its mixture
        out = tmp_path / f"s{len(argv)}.png"
        assert main(["sample", str(ae_run), "-n", "4", "--out", str(out), *argv]) == 0
        assert Image.open(out).size[0] > 0
    assert main(["sample", str(ae_run), "--sampler", "prior", "--out", str(tmp_path / "p.png")]) == 2
    assert "no prior" in capsys.readouterr().err

    assert main(["plot", str(ae_run)]) == 0
    assert (ae_run / "plots" / "samples_gmm.png").is_file()
    assert not (ae_run / "plots" / "samples.png").exists()

    assert main(["export", str(ae_run), "--saved-models", str(tmp_path / "sm")]) == 0
    images = sample_saved_model(tmp_path / "sm" / "ae" / "1", 5, seed=3)
    sampler = Run(ae_run).latent_sampler
    expected = Run(ae_run).model.decode(sampler.sample(5, seed=np.array([3, 0])), None)
    np.testing.assert_allclose(images, np.asarray(expected), atol=1e-5)


def test_without_a_fitted_mixture_gmm_is_refused_and_an_ae_exports_no_sample(tiny, tmp_path, capsys):
    assert main(["train", *tiny, "--model", "ae", "--name", "bare", "--out", str(tmp_path)]) == 0
    run = tmp_path / "bare"
    assert main(["sample", str(run), "--sampler", "gmm", "--out", str(tmp_path / "s.png")]) == 2
    assert "vae-tf fit-sampler" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()
    assert main(["export", str(run), "--saved-models", str(tmp_path / "sm")]) == 0
    with pytest.raises(ValueError, match="no 'sample' signature"):
        sample_saved_model(tmp_path / "sm" / "bare" / "1", 2)
    assert main(["export", str(run), "--sampler", "gmm", "--saved-models", str(tmp_path / "sm")]) == 2
    assert "no fitted latent sampler" in capsys.readouterr().err


def test_a_vae_keeps_its_prior_unless_gmm_is_asked_for(tiny, tmp_path):
    assert main(["train", *tiny, "--name", "v", "--out", str(tmp_path)]) == 0
    run = tmp_path / "v"
    assert main(["fit-sampler", str(run), "--components", "2"]) == 0
    outs = {}
    for choice in ("prior", "gmm"):
        outs[choice] = tmp_path / f"{choice}.png"
        assert main(["sample", str(run), "--sampler", choice, "--out", str(outs[choice])]) == 0
    default = tmp_path / "default.png"
    assert main(["sample", str(run), "--out", str(default)]) == 0
    pixels = {k: np.asarray(Image.open(p)) for k, p in {**outs, "default": default}.items()}
    assert np.array_equal(pixels["default"], pixels["prior"])
    assert not np.array_equal(pixels["gmm"], pixels["prior"])


def test_fit_sampler_refuses_bad_input(tmp_path, capsys):
    assert main(["fit-sampler", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit-sampler", str(tmp_path), "--components", "0"])
    assert main(["sample", "--saved-model", str(tmp_path), "--sampler", "gmm"]) == 2
    assert "--sampler applies only to a RUN_DIR" in capsys.readouterr().err
