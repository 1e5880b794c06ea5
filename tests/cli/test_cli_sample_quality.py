"""`vae-tf sample-quality` end to end on tiny runs of the small_dir fixture, with a tiny
classifier (the command's is fixed; these tests shrink it to stay fast)."""

import json

import pytest

from vae_tf.analysis.feature_classifier import ClassifierSpec
from vae_tf.cli import main
from vae_tf.runs import classifier_cache
from vae_tf.runs.sample_quality import QUALITY_FILE, sample_quality

TINY_SPEC = ClassifierSpec(filters=(4,), feature_units=8, epochs=1, batch_size=256)


@pytest.fixture(autouse=True)
def tiny_classifier(monkeypatch):
    monkeypatch.setattr(classifier_cache, "ClassifierSpec", lambda: TINY_SPEC)


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    assert main(["train", *tiny_run, "--name", "vae", "--out", str(root)]) == 0
    return root / "vae"


def test_sample_quality_prints_and_stores_the_measures_and_reuses_the_classifier(run, tmp_path, capsys):
    cache = tmp_path / "classifiers"
    argv = ["sample-quality", str(run), "--samples", "60", "--classifier-cache", str(cache)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "60 samples from the prior against 60 test images: Fréchet distance" in out
    assert "trained and kept in" in out and "weights sha256" in out
    result = json.loads((run / QUALITY_FILE).read_text())["prior"]
    assert result["samples"] == result["real_examples"] == 60
    assert result["frechet_distance"] > 0 and 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert result["classifier"]["architecture"]["feature_units"] == 8
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".keras"]

    assert main([*argv, "--seed", "1"]) == 0  # the classifier again: read, not trained
    assert "trained and" not in capsys.readouterr().out
    again = json.loads((run / QUALITY_FILE).read_text())["prior"]
    assert again["classifier"]["weights_sha256"] == result["classifier"]["weights_sha256"]
    assert again["seed"] == 1 and again["frechet_distance"] != result["frechet_distance"]


def test_the_fitted_mixture_is_measured_beside_the_prior(run, tmp_path, capsys):
    argv = ["sample-quality", str(run), "--sampler", "gmm", "--samples", "20", "--classifier-cache", str(tmp_path)]
    if not (run / "latent_gmm.npz").exists():
        assert main(argv) == 2
        assert "no fitted latent sampler: run vae-tf fit-sampler" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())  # refused before any classifier was trained
        assert main(["fit-sampler", str(run), "--components", "2"]) == 0
    assert main(argv) == 0
    assert "20 samples from the gmm" in capsys.readouterr().out
    assert {"gmm"} <= set(json.loads((run / QUALITY_FILE).read_text()))


@pytest.mark.slow
def test_the_same_seed_gives_the_same_figures(run, tmp_path):
    first, _ = sample_quality(run, 30, classifier_cache=tmp_path, verbose=False)
    second, _ = sample_quality(run, 30, classifier_cache=tmp_path, verbose=False)
    for key in ("frechet_distance", "precision", "recall"):
        assert first[key] == second[key]


def test_too_few_samples_are_one_line_errors(run, tmp_path, capsys):
    assert main(["sample-quality", str(run), "--samples", "3", "--classifier-cache", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("vae-tf: error: --samples must be an integer > 3 (the k of precision "
                                       "and recall), got 3\n")
    with pytest.raises(SystemExit):
        main(["sample-quality", str(run), "--samples", "0"])
    assert "argument --samples: must be an integer >= 1, got 0" in capsys.readouterr().err
