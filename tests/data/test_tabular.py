"""Tables of records: reading CSV/NumPy tables, feature scaling inside the model, the
per-feature Gaussian, vector-aware scores and plots, and the `vae-tf` commands on a table."""

import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import anomaly, plots
from vae_tf.core import likelihoods
from vae_tf.cli import main
from vae_tf.config import ConfigError, DataConfig, ModelConfig, RunConfig, resolved_likelihood
from vae_tf.data import load_data
from vae_tf.serving.export import SCORE_SEED, export_saved_model
from vae_tf.data.tabular import read_table

SCALES = np.array([1.0, 10.0, 1000.0, 0.01], "float32")
OFFSETS = np.array([0.0, -50.0, 5000.0, 0.3], "float32")


def raw_records(n=256, seed=0):
    """Records with features on very different scales and offsets (as raw tables have)."""
    return (np.random.default_rng(seed).normal(size=(n, 4)) * SCALES + OFFSETS).astype("float32")


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


def table_model(records, latent_dim=2, hidden=(16,), kind="vae", seed=0):
    statistics = (records.mean(axis=0), records.var(axis=0))
    return vae_tf.make_model(kind, "mlp", (records.shape[1],), latent_dim, hidden_units=hidden,
                             likelihood="feature_gaussian", feature_scaling=statistics, seed=seed)


# --- reading tables ------------------------------------------------------------------


def test_csv_reads_features_labels_and_chosen_columns(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "kind", "b", "c"],
                     [[1, "cat", 2.5, -1], [2, "dog", 3.5, 0], [4, "cat", 1e3, 2]])
    table = read_table(path, label_column="kind", columns="c,a")
    assert table.feature_names == ("c", "a")
    np.testing.assert_array_equal(table.features, [[-1, 1], [0, 2], [2, 4]])
    assert table.class_names == ("cat", "dog")
    np.testing.assert_array_equal(table.labels, [0, 1, 0])
    everything = read_table(path, label_column="kind")
    assert everything.feature_names == ("a", "b", "c") and everything.features.dtype == np.float32


@pytest.mark.parametrize("rows, message", [
    ([[1, 2], [3, "abc"]], "row 3, column 'b': 'abc' is not a number"),
    ([[1, 2], ["", 4]], "row 3, column 'a': empty cell (missing value)"),
    ([[1, 2], [3, 4, 5]], "row 3 has 3 cells, but the header has 2"),
    ([[1, "nan"]], "row 2, column 'b': 'nan' is not a finite number"),
    ([], "header only, no records"),
])
def test_bad_csv_names_the_row_and_column(tmp_path, rows, message):
    path = write_csv(tmp_path / "bad.csv", ["a", "b"], rows)
    with pytest.raises(ValueError) as error:
        read_table(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_unknown_columns_are_named(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b"], [[1, 2], [2, 3]])
    with pytest.raises(ValueError, match="no column 'z'"):
        read_table(path, columns="a,z")
    with pytest.raises(ValueError, match="no column 'label'"):
        read_table(path, label_column="label")


def test_constant_columns_are_dropped_with_a_warning(tmp_path, caplog):
    path = write_csv(tmp_path / "t.csv", ["a", "same", "b"], [[1, 7, 2], [2, 7, 5], [3, 7, 1]])
    with caplog.at_level(logging.WARNING, logger="vae_tf.data.tabular"):
        table = read_table(path)
    assert table.feature_names == ("a", "b")
    assert "dropped constant columns ['same']" in caplog.text


def test_npy_and_npz_tables(tmp_path):
    records = raw_records(20)
    np.save(tmp_path / "x.npy", records)
    np.savez(tmp_path / "x.npz", features=records, labels=np.arange(20) % 3)
    from_npy, from_npz = read_table(tmp_path / "x.npy"), read_table(tmp_path / "x.npz")
    np.testing.assert_array_equal(from_npy.features, records)
    assert from_npy.labels is None and from_npz.labels.tolist() == (np.arange(20) % 3).tolist()
    np.save(tmp_path / "bad.npy", records[:, :, None])
    with pytest.raises(ValueError, match="must be a 2-D numeric array"):
        read_table(tmp_path / "bad.npy")


def test_load_data_splits_a_table_and_keeps_training_statistics(tmp_path):
    records = raw_records(100)
    np.save(tmp_path / "x.npy", records)
    splits = load_data("tabular", str(tmp_path / "x.npy"), batch_size=16, validation_fraction=0.25)
    counts = {name: sum(len(x) for x, _ in getattr(splits, name)) for name in ("train", "validation", "test")}
    assert counts == {"train": 60, "validation": 20, "test": 20}
    assert splits.image_shape == (4,) and splits.feature_names[0] == "feature_0"
    train = np.concatenate([x.numpy() for x, _ in splits.train])
    mean, variance = splits.feature_statistics
    np.testing.assert_allclose(mean, train.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(variance, train.var(axis=0), rtol=1e-3)


# --- configuration ---------------------------------------------------------------------


def test_tabular_configuration_rules(tmp_path):
    table = RunConfig(data=DataConfig(dataset="tabular", data_dir="t.csv", label_column="y"))
    assert resolved_likelihood(table) == "feature_gaussian"
    assert resolved_likelihood(RunConfig()) == "bernoulli"
    for data, model, message in [
        (DataConfig(dataset="tabular"), ModelConfig(), "needs --data-dir"),
        (DataConfig(dataset="tabular", data_dir="t.csv"), ModelConfig(likelihood="bernoulli"),
         "bernoulli needs values in [0, 1]"),
        (DataConfig(dataset="tabular", data_dir="t.csv"), ModelConfig(arch="conv"), "needs --arch mlp"),
        (DataConfig(dataset="tabular", data_dir="t.csv", binarize="static"), ModelConfig(),
         "--binarize applies to images"),
        (DataConfig(label_column="y"), ModelConfig(), "--label-column applies only to --dataset tabular"),
        (DataConfig(), ModelConfig(likelihood="feature_gaussian"), "applies only to --dataset tabular"),
        (DataConfig(dataset="tabular", data_dir="t.csv", columns="a,,b"), ModelConfig(), "comma-separated"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            RunConfig(data=data, model=model)


# --- the model ------------------------------------------------------------------------


def test_scaling_round_trip_keras_file_and_saved_model_score_raw_records(tmp_path):
    records = raw_records()
    model = table_model(records)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(records, epochs=3, batch_size=64, verbose=0)
    assert [layer.name for layer in model.encoder.layers][:2] == ["features", "standardize"]
    probe = records[:16]
    expected = model.per_example_terms(probe, seed=SCORE_SEED)["neg_elbo"].numpy()
    # The reconstruction is in raw units: the inverse scaling sits at the decoder output.
    reconstruction = np.asarray(model.reconstruct(probe))
    assert np.all(np.abs(reconstruction.mean(axis=0) - OFFSETS) < 3 * SCALES)

    model.save(tmp_path / "table.keras")
    reloaded = keras.saving.load_model(tmp_path / "table.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.per_example_terms(probe, seed=SCORE_SEED)["neg_elbo"], expected,
                               rtol=1e-5)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "sm", name="table")))
    score = served.signatures["score"]
    assert list(score.structured_input_signature[1]) == ["features"]
    np.testing.assert_allclose(score(features=tf.constant(probe))["neg_elbo"], expected, rtol=1e-4)
    decoded = served.signatures["decode"](z=tf.zeros((2, 2)))
    assert decoded["features"].shape == (2, 4)


def test_learned_per_feature_sigma_converges_to_the_true_noise():
    """Linear-Gaussian table x = w z + b + e, z ~ N(0, 1), e_j ~ N(0, sigma_j^2) (one-factor
    analysis): the maximum-likelihood noise of each feature is its true sigma_j, and with a
    1-D latent the Gaussian posterior is exact, so the ELBO's optimum is that maximum."""
    rng = np.random.default_rng(0)
    true_sigma = np.array([0.2, 0.6, 0.5, 2.0, 2.0, 8.0])
    weights = np.array([[1.0, -2.0, 3.0, 5.0, -8.0, 20.0]])
    z = rng.normal(size=(3000, 1))
    records = (z @ weights + 10.0 + rng.normal(size=(3000, 6)) * true_sigma).astype("float32")
    model = table_model(records, latent_dim=1, hidden=(32,))
    assert np.allclose(model.likelihood.sigma, records.std(axis=0), rtol=1e-3)  # starts at the spread
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(records, epochs=20, batch_size=100, verbose=0)
    learned = np.asarray(model.likelihood.sigma)
    np.testing.assert_allclose(learned, true_sigma, rtol=0.15)


def test_manifold_outliers_are_found_with_auroc_above_0_9():
    """Records on a 2-D manifold in 20-D against off-manifold records of the same spread."""
    rng = np.random.default_rng(1)
    lift = rng.normal(size=(4, 20))

    def on_manifold(n):
        t = rng.uniform(-1.5, 1.5, size=(n, 2))
        curved = np.column_stack([t, np.sin(2 * t[:, :1]) * t[:, 1:], t[:, :1] ** 2])
        return curved @ lift + 0.05 * rng.normal(size=(n, 20))

    train = on_manifold(3000).astype("float32")
    normal = on_manifold(300).astype("float32")
    outliers = (rng.normal(size=(300, 20)) * train.std(axis=0) + train.mean(axis=0)).astype("float32")
    model = table_model(train, latent_dim=2, hidden=(64, 32))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(train, epochs=30, batch_size=100, verbose=0)
    scores = anomaly.score(model, np.concatenate([normal, outliers]), ["neg_elbo", "reconstruction"])
    for name, values in scores.items():
        report = anomaly.roc_report(values[:300], values[300:])
        assert report["auroc"] >= 0.9, (name, report)


def test_feature_gaussian_nll_is_the_closed_form():
    likelihood = likelihoods.FeatureGaussian(2, sigma=[0.5, 3.0])
    x, mean = np.array([[1.0, -2.0]], "float32"), np.array([[0.0, 1.0]], "float32")
    expected = sum(0.5 * ((a - m) / s) ** 2 + np.log(s) + 0.5 * np.log(2 * np.pi)
                   for a, m, s in zip(x[0], mean[0], (0.5, 3.0)))
    np.testing.assert_allclose(likelihood.negative_log_likelihood(x, mean), [expected], rtol=1e-6)
    with pytest.raises(ValueError, match="every sigma must be > 0"):
        likelihoods.FeatureGaussian(2, sigma=[1.0, 0.0])


def test_vector_scores_exclude_complexity_and_take_raw_records():
    records = raw_records(32)
    model = table_model(records)
    assert model.input_name == "features"
    assert "complexity" not in anomaly.available_methods(model)
    assert anomaly.default_method(table_model(records, kind="ae")) == "reconstruction"
    with pytest.raises(ValueError, match="compresses images as PNG and does not apply to records"):
        anomaly.score(model, records, ["complexity"])
    scores = anomaly.score(model, records, ["iw_nll", "regret"], iw_samples=4, regret_steps=2)
    assert scores["iw_nll"].shape == (32,) and np.isfinite(scores["regret"]).all()
    with pytest.raises(ValueError, match=r"features have shape \(3,\) per record"):
        anomaly.score(model, records[:, :3])
    with pytest.raises(ValueError, match=r"features have shape \(3,\) per example"):
        model.predict(records[:, :3])


def test_threshold_report_counts_flags():
    report = anomaly.threshold_report([0.1, 0.2, 0.3, 0.5], [0.4, 0.6, 0.05], threshold=0.35)
    assert report == {"threshold": 0.35, "precision": 2 / 3, "recall": 2 / 3,
                      "false_positive_rate": 0.25, "flagged_out": 2, "flagged_in": 1}
    assert anomaly.threshold_report([0.1], [0.2], threshold=1.0)["precision"] is None


def test_plots_of_a_table_are_the_latent_scatter_and_training_curves(tmp_path):
    records = raw_records(64)
    model = table_model(records)
    z = np.asarray(model.encode(records)["z_mean"])
    history = {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5]}
    paths = plots.save_all(model, records, np.arange(64) % 2, history, tmp_path, z=z)
    assert sorted(p.stem for p in map(type(tmp_path), paths)) == ["latent_scatter", "training_curves"]


# --- the command line -------------------------------------------------------------------


def test_bad_csv_fails_training_and_writes_nothing(tmp_path, capsys):
    bad = write_csv(tmp_path / "bad.csv", ["a", "b"], [[1, 2], [3, "x"]])
    out = tmp_path / "runs"
    assert main(["train", "--dataset", "tabular", "--data-dir", str(bad), "--out", str(out),
                 "--epochs", "1"]) == 2
    assert "row 3, column 'b': 'x' is not a number" in capsys.readouterr().err
    assert not out.exists()


def test_train_score_ood_and_export_on_a_table(tmp_path, capsys):
    rng = np.random.default_rng(0)
    normal = raw_records(300)
    header = ["a", "b", "c", "d", "const", "group"]
    rows = [[*r, 1, "x" if i % 2 else "y"] for i, r in enumerate(normal.tolist())]
    write_csv(tmp_path / "normal.csv", header, rows)
    odd = normal[:40] + 5 * SCALES * rng.choice([-1, 1], size=(40, 4))
    write_csv(tmp_path / "odd.csv", ["d", "c", "b", "a"], odd[:, ::-1].tolist())  # other column order
    runs, sm = tmp_path / "runs", tmp_path / "sm"
    assert main(["train", "--dataset", "tabular", "--data-dir", str(tmp_path / "normal.csv"),
                 "--label-column", "group", "--latent-dim", "2", "--hidden-units", "16", "--epochs", "3",
                 "--batch-size", "32", "--iw-samples", "4", "--projector-examples", "0", "--name", "t",
                 "--validation-fraction", "0.1", "--out", str(runs), "--no-export"]) == 0  # calibrate needs it
    run = runs / "t"
    assert sorted(p.stem for p in (run / "plots").glob("*.png")) == ["latent_scatter", "training_curves"]
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["label_column"] == "group" and config["model"]["likelihood"] is None
    assert main(["evaluate", str(run), "--iw-samples", "4"]) == 0
    assert "iw_log_likelihood" in json.loads((run / "metrics.json").read_text())
    assert main(["encode", str(run), "--out", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (60, 2)  # the 20% test split of 300 records
    assert np.load(tmp_path / "z_labels.npy").max() == 1  # "x", "y" -> 0, 1
    assert main(["fit-sampler", str(run), "--components", "2"]) == 0
    assert main(["calibrate", str(run), "--score", "reconstruction", "--fpr", "0.1"]) == 0
    assert main(["score", str(run), "--dataset", "tabular", "--data-dir", str(tmp_path / "odd.csv"),
                 "--score", "reconstruction", "--out", str(tmp_path / "odd_scores.csv")]) == 0
    lines = (tmp_path / "odd_scores.csv").read_text().splitlines()
    assert lines[0] == "index,reconstruction,anomaly" and len(lines) == 41
    assert main(["ood", str(run), "--dataset", "tabular", "--data-dir", str(tmp_path / "odd.csv"),
                 "--score", "reconstruction", "--out", str(tmp_path / "ood.json")]) == 0
    report = json.loads((tmp_path / "ood.json").read_text())
    assert report["scores"]["reconstruction"]["auroc"] > 0.9
    assert report["calibrated"]["score"] == "reconstruction" and report["calibrated"]["recall"] > 0.5
    assert main(["score", str(run), "--score", "complexity", "--out", str(tmp_path / "c.csv")]) == 2
    assert "does not apply to records of a table" in capsys.readouterr().err
    assert main(["export", str(run), "--saved-models", str(sm)]) == 0
    served = tf.saved_model.load(str(sm / "t" / "1"))  # exported once calibrated
    flags = served.signatures["anomaly"](features=tf.constant(odd.astype("float32")))
    assert flags["is_anomaly"].numpy().mean() > 0.5
