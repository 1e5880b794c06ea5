import io
import json
import math

import numpy as np
import pytest
import keras
import tensorflow as tf
from PIL import Image

import vae_tf
from vae_tf.analysis import anomaly, evaluation, plots
from vae_tf.data import read_idx

FASHION_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def fashion():
    """64 Fashion-MNIST test images, uint8 (64, 28, 28)."""
    return read_idx(FASHION_TEST)[:64]


@pytest.fixture(scope="module")
def tiny_vae():
    return vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, hidden_units=(32,), seed=0)


@pytest.fixture(scope="module")
def tiny_ae():
    return vae_tf.make_model("ae", "mlp", (28, 28, 1), 4, hidden_units=(32,))


# --- ROC math, against references computed by hand ---------------------------------


def test_identical_score_sets_give_chance():
    scores = np.array([0.3, 1.0, 2.5, 2.5, 7.0])
    report = anomaly.roc_report(scores, scores)
    # Every in/out pair is either a tie (1/2) or one win per loss: P = 1/2.
    assert report["auroc"] == 0.5
    # At the threshold that flags all positives, all negatives are flagged too.
    assert report["fpr_at_95_tpr"] == 1.0


def test_perfectly_separated_sets():
    report = anomaly.roc_report([1.0, 2.0, 3.0], [3.5, 4.0])
    assert report == {"auroc": 1.0, "auprc": 1.0, "fpr_at_95_tpr": 0.0}
    reversed_report = anomaly.roc_report([3.5, 4.0], [1.0, 2.0, 3.0])
    assert reversed_report["auroc"] == 0.0
    assert reversed_report["fpr_at_95_tpr"] == 1.0


def test_small_example_with_a_tie():
    # in = {1, 2, 3}, out = {2, 4}. Pairs (out, in): 2 beats 1, ties 2 (1/2), loses to 3;
    # 4 beats all three: AUROC = (1 + 0.5 + 3) / 6 = 0.75.
    # Thresholds t = 4: precision 1/1, recall 1/2; t = 3: recall unchanged; t = 2:
    # flagged {2, 3, 2, 4}, precision 2/4, recall 1. AP = 0.5 * 1 + 0.5 * 0.5 = 0.75.
    # TPR >= 95% first at t = 2, where 2 of the 3 in-scores (2 and 3) are flagged.
    report = anomaly.roc_report([1.0, 2.0, 3.0], [2.0, 4.0])
    assert report["auroc"] == pytest.approx(0.75)
    assert report["auprc"] == pytest.approx(0.75)
    assert report["fpr_at_95_tpr"] == pytest.approx(2 / 3)


def test_auroc_equals_the_pairwise_count_on_tied_data():
    rng = np.random.default_rng(0)
    normal = rng.integers(0, 6, size=200).astype(float)  # many ties
    odd = rng.integers(2, 9, size=150).astype(float)
    pairs = odd[:, None] - normal[None, :]
    by_pairs = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    assert anomaly.roc_report(normal, odd)["auroc"] == pytest.approx(by_pairs, abs=1e-12)


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(anomaly.average_ranks([10, 20, 20, 5, 20]), [2, 4, 4, 1, 4])


# --- calibration --------------------------------------------------------------------


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.2])
def test_threshold_flags_the_requested_fraction(fpr):
    scores = np.random.default_rng(1).normal(size=1000)
    record = anomaly.calibrate(scores, fpr=fpr, name="complexity")
    assert anomaly.is_anomaly(scores, record).sum() == round(fpr * 1000)
    assert json.loads(json.dumps(record)) == record
    assert record["score"] == "complexity" and record["num_examples"] == 1000
    # Fresh data from the same distribution: the same fraction, up to the sampling
    # error of a quantile of 1000 calibration scores (sd sqrt(fpr (1 - fpr) / 1000)).
    fresh = np.random.default_rng(2).normal(size=100_000)
    tolerance = 4 * math.sqrt(fpr * (1 - fpr) / 1000)
    assert anomaly.is_anomaly(fresh, record["threshold"]).mean() == pytest.approx(fpr, abs=tolerance)


def test_is_anomaly_picks_the_calibrated_score_from_a_dict():
    record = anomaly.calibrate(np.arange(100.0), fpr=0.1, name="regret")
    assert record["threshold"] == 89.0  # 90 ... 99 lie above it: 10 of 100
    flags = anomaly.is_anomaly({"neg_elbo": np.zeros(3), "regret": np.array([0.0, 89.0, 89.5])}, record)
    np.testing.assert_array_equal(flags, [False, False, True])
    with pytest.raises(ValueError, match="'regret'"):
        anomaly.is_anomaly({"neg_elbo": np.zeros(3)}, record)


@pytest.mark.parametrize("fpr", [0.0, 1.0, -0.1])
def test_calibrate_rejects_a_bad_fpr(fpr):
    with pytest.raises(ValueError, match="fpr must be in"):
        anomaly.calibrate(np.arange(10.0), fpr=fpr)


# --- scores -------------------------------------------------------------------------


def png_nats_by_hand(image_uint8):
    """Bytes of one PNG from TensorFlow's encoder (the one a SavedModel can run), in nats."""
    return len(tf.io.encode_png(image_uint8[..., None], compression=9).numpy()) * 8 * math.log(2)


def test_png_length_is_a_png_file_of_the_image(fashion):
    nats = np.asarray(anomaly.png_nats(fashion[:16, ..., None] / 255.0))
    for image, length in zip(fashion[:16], nats):
        encoded = tf.io.encode_png(image[..., None], compression=9).numpy()
        decoded = np.asarray(Image.open(io.BytesIO(encoded)))
        np.testing.assert_array_equal(decoded, image)  # lossless
        assert length == pytest.approx(len(encoded) * 8 * math.log(2), rel=1e-6)
        # PIL's encoder (other filter choices) agrees to a few percent.
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=9)
        assert len(encoded) == pytest.approx(buffer.tell(), rel=0.05)


def test_complexity_is_iw_nll_minus_png_length(tiny_vae, fashion):
    images = fashion[:16]
    complexity = anomaly.score(tiny_vae, images, methods="complexity", iw_samples=8)["complexity"]
    iw_nll = -evaluation.log_likelihoods(tiny_vae, images.astype("float32")[..., None] / 255,
                                         num_samples=8)
    png = np.array([png_nats_by_hand(image) for image in images])
    np.testing.assert_allclose(complexity, iw_nll - png, rtol=1e-6, atol=1e-3)


def test_ae_complexity_is_reconstruction_minus_png_length(tiny_ae, fashion):
    images = fashion[:8]
    scores = anomaly.score(tiny_ae, images)
    assert set(scores) == {"reconstruction", "complexity"}
    # The AE's own loss term: -log p(x | decoder(encoder(x))).
    direct = tiny_ae.per_example_terms(tf.constant(images[..., None] / 255, "float32"))["reconstruction"]
    np.testing.assert_allclose(scores["reconstruction"], direct, rtol=1e-6)
    png = np.array([png_nats_by_hand(image) for image in images])
    np.testing.assert_allclose(scores["complexity"], np.asarray(direct) - png, rtol=1e-6, atol=1e-3)


def test_neg_elbo_matches_evaluation(tiny_vae, fashion):
    images = fashion.astype("float32")[..., None] / 255
    scores = anomaly.score(tiny_vae, images, methods=["neg_elbo"], seed=3)["neg_elbo"]
    assert scores.shape == (64,)
    assert scores.mean() == pytest.approx(evaluation.elbo(tiny_vae, images, seed=3)["neg_elbo"], rel=1e-5)


def test_uint8_float_and_datasets_give_the_same_scores(tiny_vae, fashion):
    images = fashion[:20]
    floats = images.astype("float32")[..., None] / 255
    methods = ["neg_elbo", "reconstruction", "iw_nll"]
    reference = anomaly.score(tiny_vae, floats, methods=methods, iw_samples=4, batch_size=8)
    labels = np.arange(20)
    for data in (
        images,  # uint8 without the channel axis
        tf.data.Dataset.from_tensor_slices(floats).batch(8),
        tf.data.Dataset.from_tensor_slices((floats, labels)).batch(8),
        tf.data.Dataset.from_tensor_slices(floats),  # single images
    ):
        scores = anomaly.score(tiny_vae, data, methods=methods, iw_samples=4, batch_size=8)
        for method in methods:
            np.testing.assert_allclose(scores[method], reference[method], rtol=1e-5)


def test_a_scorer_traces_each_graph_once_for_chunks_of_any_size(tiny_vae, fashion):
    scorer = anomaly.Scorer(tiny_vae, iw_samples=4, batch_size=16, regret_steps=2)
    chunks = (fashion[:5], fashion[5:18], fashion[18:58])  # batches of 5; 13; 16, 16, 8
    parts = [scorer(chunk) for chunk in chunks]
    counts = {name: graph.graph.experimental_get_tracing_count()
              for name, graph in scorer.graphs.items()}
    assert set(counts) == {"log_likelihood", "neg_elbo", "reconstruction", "png", "regret"}
    assert all(count == 1 for count in counts.values()), counts
    # Chunking does not change the scores that draw no fresh noise (up to float32 rounding
    # of regret, a difference of two ~500-nat -ELBOs summed in batch-dependent order).
    whole = anomaly.score(tiny_vae, fashion[:58], ["reconstruction", "complexity", "regret"],
                          iw_samples=4, batch_size=16, regret_steps=2)
    for method in ("reconstruction", "regret"):
        np.testing.assert_allclose(np.concatenate([p[method] for p in parts]), whole[method],
                                   rtol=1e-5, atol=1e-3)


def test_log_likelihood_graph_traces_once_for_any_batch_size(tiny_vae, fashion):
    log_p = evaluation.log_likelihood_graph(tiny_vae, num_samples=10, batch_size=16, max_decoded=48)
    x = tf.constant(fashion[:16, ..., None] / 255, "float32")
    estimates = [log_p(x[:size]) for size in (16, 3, 11)]  # K = 10 in chunks of 3 draws
    assert log_p.graph.experimental_get_tracing_count() == 1
    assert [e.shape[0] for e in estimates] == [16, 3, 11]
    # The graph is the estimator: log mean exp of the K weights, recomputed here eagerly
    # with the same draws (a fresh seed generator advanced chunk by chunk).
    fresh = evaluation.log_likelihood_graph(tiny_vae, num_samples=10, batch_size=16, max_decoded=48)
    codes = tiny_vae.encode(x)
    seed = keras.random.SeedGenerator(0)
    log_w = np.concatenate([tiny_vae.log_importance_weights(x, codes, num_samples=k, seed=seed)
                            for k in (3, 3, 3, 1)])
    by_hand = np.log(np.mean(np.exp(log_w - log_w.max(0)), axis=0)) + log_w.max(0)
    np.testing.assert_allclose(fresh(x), by_hand, rtol=1e-5)


def off_posterior_vae(linear_gaussian_vae, mean_shift, variance_scale, sigma=0.5):
    """`linear_gaussian_vae` with w fixed and b = 0, whose encoder is the exact posterior with
    its mean shifted by `mean_shift` and its variance scaled by `variance_scale`.
    Returns (model, function giving KL(encoder's q || exact posterior) per example)."""
    model = linear_gaussian_vae(sigma)
    encoder, decoder = model.encoder, model.decoder
    w = np.array([1.0, -0.5, 0.8])
    decoder.get_layer("dense_out").set_weights([w[None, :], np.zeros(3)])
    posterior_var = 1.0 / (1.0 + w @ w / sigma**2)
    gain = posterior_var * w / sigma**2
    encoder.get_layer("z_mean").set_weights([gain[:, None], np.array([mean_shift])])
    encoder.get_layer("z_log_var").set_weights(
        [np.zeros((3, 1)), np.array([math.log(variance_scale * posterior_var)])])
    # KL(N(m + d, s v) || N(m, v)) = (s - 1 - log s + d^2 / v) / 2, the same for every x.
    kl = 0.5 * (variance_scale - 1 - math.log(variance_scale) + mean_shift**2 / posterior_var)
    return model, kl


def test_regret_recovers_the_encoders_gap_to_the_exact_posterior(linear_gaussian_vae):
    # -ELBO(q) = -log p(x) + KL(q || p(z|x)); the per-example fit reaches the exact
    # posterior, so the regret of an encoder off by (shift, scale) is that KL.
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")  # images in [0, 1]
    for shift, scale, in ((0.0, 1.0), (0.3, 1.0), (0.0, 4.0)):
        model, kl = off_posterior_vae(linear_gaussian_vae, shift, scale)
        regret = anomaly.score(
            model, x, methods="regret", regret_steps=300, regret_draws=4096,
            regret_learning_rate=0.05,
        )["regret"]
        # Monte Carlo noise of the 4096 shared draws: about 0.02 per example.
        np.testing.assert_allclose(regret, kl, atol=0.06)
        assert regret.mean() == pytest.approx(kl, abs=0.02)


def test_regret_uses_the_models_prior_density(fashion):
    # With a VampPrior the KL of -ELBO is log q(z|x) - log p_vamp(z) at the shared draws,
    # not the N(0, I) formula: recompute the encoder's -ELBO by hand from the prior.
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 3, hidden_units=(16,), seed=0,
                              prior="vamp", prior_components=5)
    # Posteriors away from the origin, so that the VampPrior (a mixture of them) is far
    # from N(0, I): small initial weights leave every posterior near N(0, I).
    model.encoder.get_layer("z_mean").bias.assign(np.full(3, 1.5, "float32"))
    x = tf.constant(fashion[:4, ..., None] / 255, "float32")
    eps = anomaly.regret_noise(model, 2, seed=1)
    before, after = anomaly.regret_terms(model, x, None, eps, steps=3, learning_rate=0.1)
    codes = model.encode(x)
    mean, log_var = codes["z_mean"].numpy(), codes["z_log_var"].numpy()
    z = mean[None] + np.exp(0.5 * log_var)[None] * eps.numpy()  # (2, 4, 3)
    nll = np.stack([model.likelihood.negative_log_likelihood(x, model.decoder(zi)).numpy() for zi in z])
    log_q = vae_tf.core.priors.gaussian_log_prob(z, mean[None], log_var[None]).numpy()
    by_hand = (nll + log_q - model.prior.log_prob(z).numpy()).mean(axis=0)
    np.testing.assert_allclose(before.numpy(), by_hand, rtol=1e-5)
    standard_kl = 0.5 * (np.exp(log_var) + mean**2 - 1 - log_var).sum(-1)
    assert not np.allclose(by_hand, nll.mean(0) + standard_kl, rtol=1e-3)
    assert np.all(after.numpy() <= before.numpy())


def test_regret_is_positive_for_an_untrained_encoder(tiny_vae, fashion):
    regret = anomaly.score(tiny_vae, fashion[:8], methods="regret", regret_steps=10)["regret"]
    assert regret.shape == (8,) and np.all(regret > 0)


def test_default_methods_follow_the_model(tiny_vae, tiny_ae):
    assert anomaly.available_methods(tiny_vae) == anomaly.METHODS
    assert anomaly.available_methods(tiny_ae) == ("reconstruction", "complexity")


@pytest.mark.parametrize("method", ["iw_nll", "neg_elbo", "regret"])
def test_ae_refuses_variational_scores(tiny_ae, fashion, method):
    with pytest.raises(ValueError, match=f"'{method}' needs a VAE"):
        anomaly.score(tiny_ae, fashion[:4], methods=[method])


# --- bad inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros((0, 28, 28, 1), "float32"), "empty"),
        (np.full((2, 28, 28, 1), np.nan, "float32"), "NaN or infinite"),
        (np.full((2, 28, 28, 1), np.inf, "float32"), "NaN or infinite"),
        (np.zeros((2, 32, 32, 3), "float32"), r"\(32, 32, 3\) per example, but the model expects \(28, 28, 1\)"),
        (np.zeros((2, 784), "float32"), r"\(784,\) per example, but the model expects \(28, 28, 1\)"),
        (np.full((2, 28, 28, 1), 255.0, "float32"), r"floats in \[0, 1\] or uint8"),
        (tf.data.Dataset.from_tensor_slices(np.zeros((0, 28, 28, 1), "float32")).batch(4), "empty"),
    ],
)
def test_bad_images_raise_one_clear_error(tiny_vae, data, message):
    with pytest.raises(ValueError, match=message):
        anomaly.score(tiny_vae, data)


def test_bad_options(tiny_vae, fashion):
    with pytest.raises(ValueError, match="unknown score method 'likelihood'"):
        anomaly.score(tiny_vae, fashion[:2], methods=["likelihood"])
    with pytest.raises(ValueError, match="iw_samples must be an integer >= 1"):
        anomaly.score(tiny_vae, fashion[:2], iw_samples=0)
    with pytest.raises(ValueError, match="in_scores contain NaN"):
        anomaly.roc_report([np.nan, 1.0], [2.0])
    with pytest.raises(ValueError, match="out_scores are empty"):
        anomaly.roc_report([1.0], [])


# --- figures ------------------------------------------------------------------------


def test_ood_figures_are_labelled():
    rng = np.random.default_rng(0)
    normal = {"neg_elbo": rng.normal(size=300), "complexity": rng.normal(size=300)}
    odd = {"neg_elbo": rng.normal(-1, size=200), "complexity": rng.normal(2, size=200)}
    roc = plots.ood_roc(normal, odd, "Fashion-MNIST", "MNIST")
    ax = roc.axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    auroc = anomaly.roc_report(normal["complexity"], odd["complexity"])["auroc"]
    assert f"complexity (AUROC {auroc:.3f})" in legend
    assert "MNIST" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    hist = plots.ood_histograms(normal, odd, "Fashion-MNIST", "MNIST")
    assert [a.get_title() for a in hist.axes] == ["neg_elbo", "complexity"]
    assert all(a.get_xlabel() and a.get_ylabel() and a.get_legend() for a in hist.axes)


def test_cvae_is_scored_with_labels(fashion):
    model = vae_tf.make_model("cvae", "mlp", (28, 28, 1), 4, num_classes=10, hidden_units=(32,), seed=0)
    labels = np.arange(8) % 10
    scores = anomaly.score(model, fashion[:8], labels=labels, iw_samples=4, regret_steps=2)
    assert set(scores) == set(anomaly.METHODS)
    assert all(s.shape == (8,) and np.isfinite(s).all() for s in scores.values())
    dataset = tf.data.Dataset.from_tensor_slices((fashion[:8], labels)).batch(4)
    np.testing.assert_allclose(
        anomaly.score(model, dataset, methods="reconstruction")["reconstruction"],
        scores["reconstruction"], rtol=1e-5)
    with pytest.raises(ValueError, match="pass labels"):
        anomaly.score(model, fashion[:8])


@pytest.mark.slow
def test_complexity_detects_mnist_digits_where_the_likelihood_fails(mnist):
    train = read_idx("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")[:6000]
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 8, hidden_units=(128,), seed=0)
    model.compile()
    model.fit(train[..., None].astype("float32") / 255, epochs=3, batch_size=128, verbose=0)
    methods = ["neg_elbo", "complexity"]
    normal = anomaly.score(model, read_idx(FASHION_TEST)[:500], methods=methods, iw_samples=10)
    odd = anomaly.score(model, mnist[0][:500], methods=methods, iw_samples=10)
    assert anomaly.roc_report(normal["neg_elbo"], odd["neg_elbo"])["auroc"] < 0.5  # Nalisnick et al.
    assert anomaly.roc_report(normal["complexity"], odd["complexity"])["auroc"] > 0.9


def test_docstring_examples_run():
    import doctest
    import importlib
    import pkgutil

    attempted = 0
    for module in pkgutil.iter_modules(anomaly.__path__):
        result = doctest.testmod(importlib.import_module(f"{anomaly.__name__}.{module.name}"),
                                 optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.name
        attempted += result.attempted
    assert attempted >= 5


def test_png_length_runs_in_a_reloaded_saved_model(fashion, tmp_path):
    module = tf.Module()
    module.png = tf.function(
        lambda images: anomaly.png_nats(images),
        input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path / "png"))
    reloaded = tf.saved_model.load(str(tmp_path / "png"))
    images = fashion[:8, ..., None].astype("float32") / 255
    np.testing.assert_array_equal(reloaded.png(tf.constant(images)).numpy(), anomaly.png_nats(images).numpy())
