"""Faults and bad input: a run owned by one process, disk full, data errors, checked inputs."""

import csv
import errno
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

import keras

from vae_tf.runs import runlock
from vae_tf.runs.checkpoints import CheckpointError, completed_epochs
from vae_tf.cli import main
from vae_tf.runs.training import train
from helpers import InterruptAfter

ROOT = pathlib.Path(__file__).resolve().parents[2]


def history_epochs(run_dir):
    with open(pathlib.Path(run_dir) / "history.csv") as f:
        rows = list(csv.reader(f))
    return [row[0] for row in rows]


def test_a_second_process_on_a_locked_run_is_refused_at_once(tiny_data, tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".same.lock").write_text(f"{holder.pid} {socket.gethostname()} token\n")
        status = main(["train", *tiny_data, "--out", str(tmp_path),
                       "--name", "same", "--epochs", "1", "--no-export"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert f"is in use by process {holder.pid} on {socket.gethostname()}" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".same.lock"]  # nothing else written


def test_a_stale_lock_is_taken_over_with_a_notice(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / ".r.lock"
    lock.write_text(f"{dead.pid} {socket.gethostname()} token\n")
    caplog.set_level("WARNING", logger="vae_tf")
    with runlock.run_lock(tmp_path / "r.partial") as path:
        assert path == lock and lock.read_text().split()[:2] == [str(os.getpid()), socket.gethostname()]
        with pytest.raises(runlock.RunLocked, match=f"in use by process {os.getpid()}"):
            with runlock.run_lock(tmp_path / "r"):
                pass
    assert "took over the lock" in caplog.text and str(dead.pid) in caplog.text
    assert not lock.exists()


def test_a_lock_from_another_host_is_refused(tmp_path):
    (tmp_path / ".r.lock").write_text("1 some-other-host token\n")
    with pytest.raises(runlock.RunLocked, match="process 1 on some-other-host"):
        runlock.check_unlocked(tmp_path / "r")


@pytest.mark.slow
def test_two_concurrent_trains_on_one_name(tiny_data, tmp_path):
    """Two `vae-tf train --name same` at once: one trains, the other refuses in one line;
    history.csv has one header and each epoch once."""
    command = [sys.executable, "-m", "vae_tf", "train", *tiny_data,
               "--out", str(tmp_path), "--name", "same", "--epochs", "3", "--hidden-units", "16",
               "--latent-dim", "2", "--iw-samples", "2", "--no-export"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / ".same.lock").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    # The first run is held still while the second starts: a tiny training can otherwise
    # end before the second has imported TensorFlow.
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 2
    refusal = [line for line in second.stderr.splitlines() if line.startswith("vae-tf: error:")]
    assert len(refusal) == 1 and f"in use by process {first.pid}" in refusal[0]
    assert history_epochs(tmp_path / "same") == ["epoch", "0", "1", "2"]
    assert not (tmp_path / ".same.lock").exists()


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(small_config, tmp_path, caplog):
    config = small_config(out=str(tmp_path), name="t", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[InterruptAfter(epoch=1)])
    backup = tmp_path / "t.partial" / "backup"
    assert completed_epochs(backup) == 2
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated between runs
    assert completed_epochs(backup) == 1
    caplog.set_level("INFO", logger="vae_tf")
    finished = train(config, verbose=0)  # the rerun a user would type
    assert "fails verification; resuming from epoch 1" in caplog.text
    assert "resuming t after epoch 1 of 3" in caplog.text
    assert history_epochs(finished.path) == ["epoch", "0", "1", "2"]


def test_a_checkpoint_with_no_whole_copy_is_refused_in_one_line(tiny_data, small_config, tmp_path, capsys):
    config = small_config(out=str(tmp_path), name="t", epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[InterruptAfter(epoch=0)])
    backup = tmp_path / "t.partial" / "backup"
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"latest.weights.h5: no checkpoint in .* verifies"):
        completed_epochs(backup)
    status = main(["train", *tiny_data, "--out", str(tmp_path),
                   "--name", "t", "--epochs", "2", "--hidden-units", "16", "--latent-dim", "2",
                   "--iw-samples", "2", "--batch-size", "256", "--validation-fraction", "0.1", "--no-export"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "no checkpoint in" in err[0]
    assert weights.stat().st_size == 100 and not (tmp_path / "t").exists()  # left as found


def test_a_checkpoint_of_another_optimizer_is_refused_not_skipped(small_config, tmp_path):
    import keras

    from vae_tf.runs.checkpoints import VerifiedBackup
    from vae_tf.runs.training import build_model, load_config_data

    config = small_config(out=str(tmp_path), name="o", epochs=1)
    data = load_config_data(config)
    model = build_model(config, data)
    backup = tmp_path / "backup"
    model.fit(data.epoch(0), epochs=1, verbose=0, callbacks=[VerifiedBackup(backup)])
    other = build_model(config, data)
    other.compile(optimizer=keras.optimizers.SGD(momentum=0.9))  # other optimizer variables
    with pytest.raises(CheckpointError, match="does not match this model"):
        other.fit(data.epoch(1), epochs=2, initial_epoch=1, verbose=0, callbacks=[VerifiedBackup(backup)])


@pytest.fixture(scope="module")
def train_args(tiny_data):
    return ["train", *tiny_data, "--hidden-units", "16", "--latent-dim", "2", "--iw-samples", "2",
            "--batch-size", "256", "--no-export"]


def test_a_full_disk_mid_checkpoint_ends_in_one_line_and_the_rerun_resumes(train_args, tmp_path, monkeypatch, capsys):
    """The disk fills halfway through the second epoch's weights file; the rerun after
    space is freed resumes exactly."""
    from vae_tf.runs import checkpoints

    assert main(train_args + ["--out", str(tmp_path), "--name", "done", "--epochs", "1"]) == 0
    finished = {p: p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()}
    write_weights, calls = checkpoints._write_weights, []

    def fill_the_disk(path, contents):
        calls.append(path)
        if len(calls) == 2:  # the second epoch's checkpoint, half written
            path.write_bytes(contents[: len(contents) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_weights(path, contents)

    monkeypatch.setattr(checkpoints, "_write_weights", fill_the_disk)
    capsys.readouterr()
    assert main(train_args + ["--out", str(tmp_path), "--name", "x", "--epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    backup = tmp_path / "x.partial" / "backup"
    assert err == [f"vae-tf: error: no space left on device while writing {backup / 'latest.weights.h5'}"]
    assert completed_epochs(backup) == 1 and not (tmp_path / ".x.lock").exists()
    assert not (backup / ".new.latest.weights.h5").exists()  # the half-written file gave its space back
    assert {p: p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()} == finished

    monkeypatch.undo()  # space freed; the user reruns the same command
    assert main(train_args + ["--out", str(tmp_path), "--name", "x", "--epochs", "3"]) == 0
    assert history_epochs(tmp_path / "x") == ["epoch", "0", "1", "2"]


def test_a_full_disk_while_writing_json_names_the_file(tmp_path):
    from vae_tf.runtime.files import write_json

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json, "dumps", full)
        with pytest.raises(OSError, match="No space left on device") as raised:
            write_json(tmp_path / "m.json", {"a": 1})
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


@pytest.mark.parametrize("make", ["corrupt_jpeg", "empty_folder", "bad_idx"])
def test_data_errors_leave_no_run_directory(tmp_path, make, capsys):
    data = tmp_path / "data"
    data.mkdir()
    if make == "corrupt_jpeg":
        (data / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        argv = ["--dataset", "folder", "--image-size", "28", "28"]
    elif make == "empty_folder":
        argv = ["--dataset", "folder", "--image-size", "28", "28"]
    else:
        (data / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03 truncated")
        (data / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x00")
        argv = ["--dataset", "idx"]
    out = tmp_path / "runs"
    status = main(["train", *argv, "--data-dir", str(data), "--out", str(out), "--name", "d", "--no-export"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and str(data) in err[0]
    assert not out.exists()


@pytest.fixture(scope="module")
def door_models():
    from vae_tf.models.factory import make_model

    vae = make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(8,))
    cvae = make_model("cvae", "mlp", (28, 28, 1), 2, hidden_units=(8,), num_classes=10)
    for model in (vae, cvae):
        model.compile()
    return vae, cvae


def test_inputs_are_checked_at_the_door(door_models):
    import numpy as np

    vae, cvae = door_models
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype="float32")
    with pytest.raises(ValueError, match=r"range over \[0, 255\].*Bernoulli.*x / 255"):
        vae.fit((images * 255).round().astype("uint8"), epochs=1, verbose=0)
    nan = images.copy()
    nan[2, 3, 4, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at index \(2, 3, 4, 0\)\)"):
        vae.evaluate(nan, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(32, 32, 3\) per example, but the model expects \(28, 28, 1\)"):
        vae.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"shape \(784,\).*x.reshape\(-1, 28, 28, 1\)"):
        vae.fit(images.reshape(4, 784), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^labels must be class ids in \[0, 10\), found 0..10"):
        cvae.fit(images, np.array([0, 1, 2, 10]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^labels must be a 1-D array of integer class ids"):
        cvae.evaluate(images, np.array([0.5, 1, 2, 3]), verbose=0)
    assert np.isfinite(vae.evaluate(images, verbose=0, return_dict=True)["loss"])  # good data passes


def test_a_full_disk_mid_export_ends_in_one_line_and_keeps_earlier_versions(train_args, tmp_path, monkeypatch, capsys):
    """TensorFlow reports ENOSPC as a ResourceExhaustedError ("No space left on device");
    here a real one, from writing to /dev/full once the SavedModel files are written."""
    import tensorflow as tf

    models = tmp_path / "sm"
    assert main([*train_args[:-1], "--limit", "500", "--epochs", "1", "--out", str(tmp_path), "--name", "e",
                 "--saved-models", str(models)]) == 0
    first = {p: p.read_bytes() for p in (models / "e").rglob("*") if p.is_file()}
    save = tf.saved_model.save

    def fill_the_disk(*args, **kwargs):
        save(*args, **kwargs)
        tf.io.write_file("/dev/full", tf.constant("x" * 100_000))

    monkeypatch.setattr(tf.saved_model, "save", fill_the_disk)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "e"), "--saved-models", str(models)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vae-tf: error: no space left on device while writing {models / 'e' / '2'}"]
    assert {p: p.read_bytes() for p in (models / "e").rglob("*") if p.is_file()} == first  # nothing half left
    assert sorted(p.name for p in (models / "e").iterdir()) == ["1"] and not (tmp_path / ".e.lock").exists()

    monkeypatch.undo()  # space freed: the same command adds version 2
    assert main(["export", str(tmp_path / "e"), "--saved-models", str(models)]) == 0
    assert (models / "e" / "2" / "saved_model.pb").is_file()


def test_dataset_inputs_are_checked_without_reading_ahead(door_models):
    """A tf.data.Dataset: shapes and label dtype from its element_spec before anything
    runs, values inside the compiled steps; the error's first line says what is wrong."""
    import numpy as np
    import tensorflow as tf

    vae, cvae = door_models
    images = np.random.default_rng(0).random((64, 28, 28, 1), dtype="float32")

    def batches(x, y=None):
        return tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(16)

    with pytest.raises(ValueError, match=r"^images range over \[0, 25\d\], but a Bernoulli.*x / 255"):
        vae.fit(batches((images * 255).astype("uint8")), epochs=1, verbose=0)
    nan = images.copy()
    nan[40, 3, 4, 0] = np.inf  # the third batch
    with pytest.raises(ValueError, match=r"^images contain NaN or infinite values \(first at index \[8 3 4 0\]"):
        vae.evaluate(batches(nan), verbose=0)
    with pytest.raises(ValueError, match=r"^images have shape \(32, 32, 3\) per example, but the model expects"):
        vae.fit(batches(np.zeros((4, 32, 32, 3), "float32")), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^images have shape \(784,\).*x.reshape\(-1, 28, 28, 1\)"):
        vae.evaluate(batches(images.reshape(-1, 784)), verbose=0)
    with pytest.raises(ValueError, match=r"^labels must be class ids in \[0, 10\), found 0..10"):
        cvae.fit(batches(images, np.arange(64) % 11), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^labels must be integer class ids, got dtype float64"):
        cvae.fit(batches(images, np.arange(64) % 10 * 1.0), epochs=1, verbose=0)
    good = cvae.evaluate(batches(images, np.arange(64) % 10), verbose=0, return_dict=True)
    assert np.isfinite(good["loss"])  # good data passes


def test_predict_checks_the_labels_of_a_cvae_dataset(door_models):
    """predict's elements are ((images, labels),): the label dtype from element_spec, the
    range inside the compiled predict step, each with a first line that says so."""
    import numpy as np
    import tensorflow as tf

    _, cvae = door_models
    images = np.random.default_rng(0).random((64, 28, 28, 1), dtype="float32")

    def inputs(labels):
        return tf.data.Dataset.from_tensor_slices(((images, labels),)).batch(16)

    with pytest.raises(ValueError, match=r"^labels must be class ids in \[0, 10\), found 0..10"):
        cvae.predict(inputs(np.arange(64) % 11), verbose=0)
    with pytest.raises(ValueError, match=r"^labels must be integer class ids, got dtype float64"):
        cvae.predict(inputs(np.arange(64) % 10 * 1.0), verbose=0)
    assert np.isfinite(cvae.predict(inputs(np.arange(64) % 10), verbose=0)).all()  # good data passes
    pairs = tf.data.Dataset.from_tensor_slices((images, np.arange(64) % 10)).batch(16)
    with pytest.raises(ValueError, match=r"^CVAE is called on \[images, labels\]; .*\(\(images, labels\),\)"):
        cvae.predict(pairs, verbose=0)  # Keras reads (images, labels) as inputs and targets


def test_dataset_checks_leave_training_unchanged(real_batch, monkeypatch):
    """The in-graph checks only read the batch: fit gives the same weights without them."""
    import numpy as np
    import tensorflow as tf

    from vae_tf.models.factory import make_model
    from vae_tf.models.loops import checks

    dataset = tf.data.Dataset.from_tensor_slices(real_batch).batch(32)

    def trained():
        keras.utils.set_random_seed(0)
        model = make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(16,), seed=0)
        model.compile()
        model.fit(dataset, epochs=2, verbose=0)
        return model.get_weights()

    checked = trained()
    monkeypatch.setattr(checks, "graph_checks", lambda model, images, labels: (images, labels))
    for a, b in zip(checked, trained(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_real_full_disk_ends_with_status_2_and_keeps_no_half_checkpoint(tmp_path):
    """A 3 MB tmpfs fills while the first checkpoint is written: one error line, the
    last one (no tracebacks from finalizers below it), and exit status 2."""
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(full)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "vae_tf", "train", "--out", str(full / "runs"), "--name", "x",
             "--limit", "2000", "--epochs", "2", "--no-export", "--projector-examples", "0"],
            capture_output=True, text=True, timeout=600)
        assert done.returncode == 2, done.stderr  # when h5py wrote the file, its finalizers crashed: 139
        backup = full / "runs" / "x.partial" / "backup"
        lines = done.stderr.strip().splitlines()
        assert lines[-1] == f"vae-tf: error: no space left on device while writing {backup / 'latest.weights.h5'}"
        assert [line for line in lines if line.startswith("vae-tf:")] == lines[-1:], done.stderr
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
        assert list(backup.iterdir()) == []  # nothing half written
    finally:
        subprocess.run(["umount", str(full)], check=True)
