"""`vae-tf score`, `calibrate` and `ood` end to end on a tiny Fashion-MNIST run (the small_dir fixture)."""

import csv
import json

import numpy as np
import pytest

from vae_tf.analysis import anomaly
from vae_tf.runs.calibration import CALIBRATION_FILE
from vae_tf.runs.run import read_history
from vae_tf.cli import main

FAST = ["--iw-samples", "2"]


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("anomaly_cli")
    assert main(["train", *tiny_run, "--out", str(root), "--name", "vae"]) == 0
    return root / "vae"


@pytest.fixture(scope="module")
def calibrated(run):
    # reconstruction: cheap, and exact to recompute by hand below
    assert main(["calibrate", str(run), "--score", "reconstruction", "--fpr", "0.05"]) == 0
    return json.loads((run / CALIBRATION_FILE).read_text())


def one_error_line(capsys, message):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vae-tf: error:") and message in err[0], err


def read_rows(path):
    return list(csv.DictReader(open(path)))


def test_score_images_array_writes_one_row_per_image(run, real_images, tmp_path):
    images = (real_images[0][:50, ..., 0] * 255).astype("uint8")  # (n, H, W) uint8
    np.save(tmp_path / "x.npy", images)
    out = tmp_path / "s.csv"
    assert main(["score", str(run), "--images", str(tmp_path / "x.npy"), "--score", "neg_elbo",
                 "complexity", *FAST, "--out", str(out)]) == 0
    rows = read_rows(out)
    assert list(rows[0]) == ["index", "neg_elbo", "complexity"]  # no labels, no calibration yet
    assert [int(r["index"]) for r in rows] == list(range(50))
    # The same scores as the library on the same images.
    from vae_tf.runs.run import Run

    expected = anomaly.score(Run(run).model, images, ["complexity"], iw_samples=2)["complexity"]
    np.testing.assert_allclose([float(r["complexity"]) for r in rows], expected, atol=1e-3)


def test_score_data_is_the_table_the_command_writes(run, real_images, tmp_path):
    from vae_tf.runs.scoring import score_data
    from vae_tf.runs.sources import DataSource

    np.save(tmp_path / "x.npy", real_images[0][:20])
    source = DataSource(images=str(tmp_path / "x.npy"))
    table = score_data(run, source, ["reconstruction"], verbose=False)
    assert (table.name, table.methods, table.rows) == ("x.npy", ["reconstruction"], 20)
    assert main(["score", str(run), "--images", str(tmp_path / "x.npy"), "--score", "reconstruction",
                 "--out", str(tmp_path / "cli.csv")]) == 0
    rows = read_rows(table.write_csv(tmp_path / "api.csv"))
    assert rows == read_rows(tmp_path / "cli.csv") and [r["index"] for r in rows] == [str(i) for i in range(20)]


def test_score_a_dataset_keeps_its_labels(tiny_data, run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["score", str(run), *tiny_data, "--score", "reconstruction", "--out", str(out)]) == 0
    assert "2000/2000" in capsys.readouterr().out  # the progress bar knows the split's size
    rows = read_rows(out)
    assert len(rows) == 2000  # the test split the loader carves from a t10k-only directory
    assert list(rows[0]) == ["index", "label", "reconstruction"] or "anomaly" in rows[0]
    labels = np.array([int(r["label"]) for r in rows])
    assert set(labels) == set(range(10))


def test_score_an_image_folder_names_the_file_of_each_row(run, real_images, tmp_path):
    from PIL import Image

    from vae_tf.runs.run import Run

    images, labels = real_images
    folder = tmp_path / "folder"
    for i in range(40):  # two classes by sub-folder: shirts (6) and bags (8)
        label = (6, 8)[i % 2]
        index = int(np.flatnonzero(labels == label)[i])
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray((images[index, ..., 0] * 255).astype("uint8")).save(
            folder / f"class{label}" / f"{i:02d}.png")
    out = tmp_path / "s.csv"
    assert main(["score", str(run), "--dataset", "folder", "--data-dir", str(folder),
                 "--score", "reconstruction", "--out", str(out)]) == 0
    rows = read_rows(out)
    assert list(rows[0]) == ["index", "path", "label", "reconstruction"]
    assert len(rows) == 8  # the loader's test carve: 20% of 40
    files = [r["path"] for r in rows]
    assert len(set(files)) == 8 and all(str(folder) in f for f in files)
    # Each row is the file it names: its sub-folder is its label, and the library scores
    # the file's pixels to the row's value.
    assert [int(r["label"]) for r in rows] == [0 if "class6" in f else 1 for f in files]
    pixels = np.stack([np.asarray(Image.open(f)) for f in files])
    expected = anomaly.score(Run(run).model, pixels, "reconstruction")["reconstruction"]
    np.testing.assert_allclose([float(r["reconstruction"]) for r in rows], expected, atol=1e-3)


def test_calibration_flags_the_requested_fraction(run, calibrated, tmp_path):
    assert calibrated["score"] == "reconstruction" and calibrated["fpr"] == 0.05
    assert calibrated["num_examples"] == 800  # 10% of the 8,000 training images
    out = tmp_path / "v.csv"
    assert main(["score", str(run), "--split", "validation", "--score", "reconstruction",
                 "--anomaly", "--out", str(out)]) == 0
    rows = read_rows(out)
    assert list(rows[0]) == ["index", "label", "reconstruction", "anomaly"]
    flags = np.array([int(r["anomaly"]) for r in rows])
    assert flags.sum() == 40  # 5% of 800
    scores = np.array([float(r["reconstruction"]) for r in rows])
    assert np.all(scores[flags == 1] >= calibrated["threshold"] - 1e-4)


def test_score_asks_for_anomaly_on_an_uncalibrated_run(tiny_run, tmp_path, capsys):
    assert main(["train", *tiny_run, "--out", str(tmp_path), "--name", "u", "--model", "ae"]) == 0
    out = tmp_path / "s.csv"
    assert main(["score", str(tmp_path / "u"), "--anomaly", "--out", str(out)]) == 2
    one_error_line(capsys, "never calibrated")
    assert not out.exists()


def test_a_run_with_the_default_no_validation_split_trains_on_all_and_calibrate_says_how(
        tiny_data, tiny_settings, tmp_path, capsys):
    # The default: every training image is trained on, no val_* curves, and calibrate,
    # which needs held-out images, refuses before reading data, naming the fix.
    settings, flag = list(tiny_settings), tiny_settings.index("--validation-fraction")
    del settings[flag:flag + 2]  # the fixture's own split left out
    assert main(["train", *tiny_data, *settings, "--out", str(tmp_path), "--name", "d", "--model", "ae"]) == 0
    run = tmp_path / "d"
    assert json.loads((run / "config.json").read_text())["data"]["validation_fraction"] == 0.0
    assert not any(name.startswith("val_") for name in read_history(run))  # NA columns
    capsys.readouterr()
    assert main(["calibrate", str(run), "--score", "reconstruction"]) == 2
    one_error_line(capsys, "this run has none: it was trained with --validation-fraction 0, the default")
    assert not (run / CALIBRATION_FILE).exists()
    assert main(["score", str(run), "--split", "validation", "--out", str(tmp_path / "v.csv")]) == 2
    one_error_line(capsys, "train it again with --validation-fraction 0.1 (say) to hold one out")


def test_ood_report_and_figures(run, real_images, tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.uniform(size=(64, 28, 28, 1)).astype("float32")  # far out of distribution
    np.save(tmp_path / "noise.npy", noise)
    out = tmp_path / "report" / "ood.json"
    out.parent.mkdir()
    assert main(["ood", str(run), "--images", str(tmp_path / "noise.npy"), "--score", "neg_elbo",
                 "reconstruction", *FAST, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["scores"]) == {"neg_elbo", "reconstruction"}
    for row in report["scores"].values():
        assert set(row) == {"auroc", "auprc", "fpr_at_95_tpr"}
        assert row["auroc"] > 0.95  # uniform noise is nothing like clothing
    assert (out.parent / "roc.png").stat().st_size > 0 and (out.parent / "histograms.png").is_file()


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((0, 28, 28), "uint8"), "empty"),
        (np.full((3, 28, 28, 1), np.nan, "float32"), "NaN"),
        (np.zeros((3, 32, 32, 3), "float32"), "(32, 32, 3) per example, but the model expects (28, 28, 1)"),
        (np.full((3, 28, 28), 7.0, "float32"), "floats in [0, 1] or uint8"),
    ],
)
@pytest.mark.parametrize("command", ["score", "ood"])
def test_bad_images_fail_with_one_line_and_write_nothing(run, array, message, command, tmp_path, capsys):
    np.save(tmp_path / "x.npy", array)
    out = tmp_path / ("r.json" if command == "ood" else "s.csv")
    assert main([command, str(run), "--images", str(tmp_path / "x.npy"), "--out", str(out)]) == 2
    one_error_line(capsys, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_bad_options_fail_with_one_line(run, tmp_path, capsys):
    assert main(["calibrate", str(run), "--fpr", "1.5"]) == 2
    one_error_line(capsys, "--fpr must be in (0, 1)")
    assert main(["calibrate", str(run), "--score", "likelihood"]) == 2
    one_error_line(capsys, "unknown score method 'likelihood'")
    assert main(["ood", str(run), "--out", str(tmp_path / "r.json")]) == 2
    one_error_line(capsys, "give the out-of-distribution data")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("method", ["regret", "reconstruction"])
def test_anomaly_signature_agrees_with_the_python_scores(run, real_images, method, tmp_path):
    import tensorflow as tf

    from vae_tf.serving.export import export_saved_model
    from vae_tf.runs.run import Run

    model = Run(run).model
    images = real_images[0][:40]
    options = {"seed": 0, "regret_steps": 5, "regret_draws": 3, "regret_learning_rate": 0.1}
    python = anomaly.score(model, images, [method], **options)[method]
    record = anomaly.calibrate(python, fpr=0.25, name=method, options=options)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path, "m", anomaly=record)))
    out = served.signatures["anomaly"](images=tf.constant(images))
    np.testing.assert_allclose(out["score"].numpy(), python, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(out["is_anomaly"].numpy(), anomaly.is_anomaly(python, record))
    assert out["is_anomaly"].numpy().sum() == 10


def test_export_of_a_calibrated_run_has_the_anomaly_signature(run, calibrated, tmp_path):
    import tensorflow as tf

    assert main(["export", str(run), "--saved-models", str(tmp_path)]) == 0
    served = tf.saved_model.load(str(tmp_path / "vae" / "1"))
    assert "anomaly" in served.signatures


def test_a_score_a_graph_cannot_compute_is_not_exported(run, tmp_path):
    from vae_tf.serving.export import export_saved_model
    from vae_tf.runs.run import Run

    with pytest.raises(ValueError, match="'iw_nll' cannot be exported"):
        export_saved_model(Run(run).model, tmp_path, "m", anomaly={"score": "iw_nll", "threshold": 1.0})
    assert not (tmp_path / "m").exists()


def test_a_calibrated_threshold_is_applied_with_the_calibrations_iw_samples():
    """A threshold set on iw_nll with K draws holds only for iw_nll with K draws."""
    from types import SimpleNamespace

    from vae_tf.analysis.evaluation import IW_SAMPLES
    from vae_tf.runs.scoring import resolve_iw_samples

    vae, ae = SimpleNamespace(is_variational=True), SimpleNamespace(is_variational=False)
    record = {"score": "iw_nll", "options": {"iw_samples": 7}}
    assert resolve_iw_samples(None, record, vae) == 7
    assert resolve_iw_samples(None, None, vae) == IW_SAMPLES
    assert resolve_iw_samples(7, record, vae) == 7
    with pytest.raises(ValueError, match=r"^--iw-samples 5: the run was calibrated on iw_nll with 7"):
        resolve_iw_samples(5, record, vae)
    regret = {"score": "regret", "options": {"iw_samples": 7}}
    assert resolve_iw_samples(5, regret, vae) == 5  # regret draws no iw samples
    complexity = {"score": "complexity", "options": {"iw_samples": 7}}
    assert resolve_iw_samples(5, complexity, ae) == 5  # an AE's complexity neither


def test_an_empty_images_file_fails_with_one_line(run, tmp_path, capsys):
    (tmp_path / "empty.npy").write_bytes(b"")
    assert main(["score", str(run), "--images", str(tmp_path / "empty.npy"), "--out", str(tmp_path / "s.csv")]) == 2
    one_error_line(capsys, "empty.npy: empty, not a .npy array")
    assert not (tmp_path / "s.csv").exists()


def test_a_bad_calibration_file_stops_score_before_scoring(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / CALIBRATION_FILE).write_text(json.dumps({"score": "regret", "fpr": 0.01, "threshold": "high",
                                                     "num_examples": 100}))
    out = tmp_path / "s.csv"
    assert main(["score", str(copy), "--score", "reconstruction", "--out", str(out)]) == 2
    one_error_line(capsys, f"{copy / CALIBRATION_FILE}: threshold must be a finite number, got 'high'")
    assert not out.exists()


def test_the_progress_bar_over_a_runs_own_split_shows_its_total(run, tmp_path, capsys):
    assert main(["score", str(run), "--score", "reconstruction", "--out", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "2000/2000" in out and "Unknown" not in out


def test_an_error_after_a_progress_bar_starts_on_a_line_of_its_own(capsys):
    import io
    from vae_tf.cli.main import LineTracking

    screen = io.StringIO()
    stdout = LineTracking(screen)
    stdout.write("\r 512/2000 [=====>.....]")  # a progress bar, mid-line
    stdout.end_line()
    stdout.end_line()  # once: the line is closed
    stdout.write("done\n")
    stdout.end_line()
    assert screen.getvalue() == "\r 512/2000 [=====>.....]\ndone\n"
