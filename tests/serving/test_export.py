import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.serving import export
from vae_tf.serving.export import MAX_SAMPLES, export_saved_model

BIN = pathlib.Path(sys.executable).parent
KINDS = [("ae", "mlp"), ("ae", "conv"), ("vae", "mlp"), ("vae", "conv"), ("cvae", "mlp"), ("cvae", "conv")]


def small(kind, arch):
    return vae_tf.make_model(kind, arch, (28, 28, 1), 3, num_classes=10 if kind == "cvae" else None,
                             hidden_units=(16,), filters=(4, 8))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, real_images):
    """Every kind exported once, with the inputs to feed and the in-memory expectations."""
    root = tmp_path_factory.mktemp("saved_models")
    images, labels = real_images[0][:5], real_images[1][:5]
    z = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    cases = {}
    for kind, arch in KINDS:
        model = small(kind, arch)
        path = export_saved_model(model, root, name=f"{kind}_{arch}")
        label_args = (labels,) if kind == "cvae" else ()
        encoded = {name: np.asarray(code) for name, code in model.encode(images, *label_args).items()}
        cases[f"{kind}_{arch}"] = {
            "path": str(path),
            "kind": kind,
            "expected": {
                "encode": encoded,
                "reconstruct": {**encoded, "reconstructions": np.asarray(model.reconstruct(images, *label_args))},
                "decode": {"images": np.asarray(model.decode(z, *label_args))},
            },
            "model": model,
        }
    return root, images, labels, z, cases


RELOAD_SCRIPT = """
import json, sys
import numpy as np
sys.modules["vae_tf"] = None  # hide vae_tf: any import of it now fails
try:
    import vae_tf  # noqa: F401
    sys.exit("vae_tf was importable")
except ImportError:
    pass
import tensorflow as tf

request = json.load(open(sys.argv[1]))
inputs = np.load(request["inputs"])
results = {}
for name, case in request["cases"].items():
    loaded = tf.saved_model.load(case["path"])
    labels = {"labels": tf.constant(inputs["labels"])} if case["kind"] == "cvae" else {}
    calls = {"encode": {"images": inputs["images"]}, "reconstruct": {"images": inputs["images"]},
             "decode": {"z": inputs["z"]}, "serving_default": {"images": inputs["images"]}}
    for signature, args in calls.items():
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in args.items()}, **labels)
        for key, value in outputs.items():
            results[f"{name}/{signature}/{key}"] = value.numpy()
np.savez(request["out"], **results)
"""


def test_reloads_without_vae_tf_and_matches_the_model(exported, tmp_path):
    root, images, labels, z, cases = exported
    np.savez(tmp_path / "inputs.npz", images=images, labels=labels, z=z)
    request = {"inputs": str(tmp_path / "inputs.npz"), "out": str(tmp_path / "out.npz"),
               "cases": {n: {"path": c["path"], "kind": c["kind"]} for n, c in cases.items()}}
    (tmp_path / "request.json").write_text(json.dumps(request))
    (tmp_path / "reload.py").write_text(RELOAD_SCRIPT)
    result = subprocess.run([sys.executable, str(tmp_path / "reload.py"), str(tmp_path / "request.json")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = np.load(tmp_path / "out.npz")
    for name, case in cases.items():
        for signature, expected in case["expected"].items():
            for key, value in expected.items():
                np.testing.assert_allclose(outputs[f"{name}/{signature}/{key}"], value, atol=1e-5,
                                           err_msg=f"{name} {signature} {key}")
        for key, value in case["expected"]["reconstruct"].items():
            np.testing.assert_allclose(outputs[f"{name}/serving_default/{key}"], value, atol=1e-5)


def test_signatures_have_named_inputs_and_outputs(exported):
    _, _, _, _, cases = exported
    loaded = tf.saved_model.load(cases["cvae_conv"]["path"])
    assert set(loaded.signatures) == {"serving_default", "reconstruct", "encode", "decode", "sample", "score"}
    decode = loaded.signatures["decode"]
    assert set(decode.structured_input_signature[1]) == {"z", "labels"}
    assert decode.structured_input_signature[1]["z"].shape.as_list() == [None, 3]
    assert set(decode.structured_outputs) == {"images"}
    ae = tf.saved_model.load(cases["ae_mlp"]["path"])
    assert "sample" not in ae.signatures
    assert set(ae.signatures["encode"].structured_outputs) == {"z"}


def test_sample_is_reproducible_by_seed_and_score_is_deterministic(exported):
    _, images, labels, _, cases = exported
    vae = tf.saved_model.load(cases["vae_mlp"]["path"]).signatures
    draw = lambda seed: vae["sample"](num_samples=tf.constant(4), seed=tf.constant(seed))["images"].numpy()  # noqa: E731
    np.testing.assert_array_equal(draw(7), draw(7))
    assert not np.allclose(draw(7), draw(8))
    assert draw(7).shape == (4, 28, 28, 1)
    scores = [vae["score"](images=tf.constant(images))["neg_elbo"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(*scores)
    assert scores[0].shape == (5,) and np.all(scores[0] > 0)
    cvae = tf.saved_model.load(cases["cvae_mlp"]["path"]).signatures
    sevens = cvae["sample"](num_samples=tf.constant(3), seed=tf.constant(1), labels=tf.constant([7, 7, 7]))
    assert sevens["images"].shape == (3, 28, 28, 1)


def test_bad_requests_fail_with_clear_errors(exported):
    _, images, _, _, cases = exported
    vae = tf.saved_model.load(cases["vae_mlp"]["path"]).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Shape of tensor z \[2,5\] is not compatible"):
        vae["decode"](z=tf.zeros((2, 5)))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)):
        vae["decode"](z=tf.zeros((2, 3), tf.float64))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="images"):
        vae["encode"](images=tf.zeros((28, 28, 1)))  # no batch dimension
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be >= 1"):
        vae["sample"](num_samples=tf.constant(0), seed=tf.constant(0))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"num_samples must be <= {MAX_SAMPLES}"):
        vae["sample"](num_samples=tf.constant(MAX_SAMPLES + 1), seed=tf.constant(0))
    cvae = tf.saved_model.load(cases["cvae_mlp"]["path"]).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 10\)"):
        cvae["decode"](z=tf.zeros((2, 3)), labels=tf.constant([1, 10]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per image"):
        cvae["encode"](images=tf.constant(images), labels=tf.constant([1, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must have num_samples entries"):
        cvae["sample"](num_samples=tf.constant(3), seed=tf.constant(0), labels=tf.constant([1]))


def test_versions_count_up_and_are_never_overwritten(tmp_path):
    model = small("vae", "mlp")
    assert export_saved_model(model, tmp_path, name="m") == tmp_path / "m" / "1"
    assert export_saved_model(model, tmp_path, name="m") == tmp_path / "m" / "2"
    assert export_saved_model(model, tmp_path, name="m", version=7) == tmp_path / "m" / "7"
    assert export_saved_model(model, tmp_path, name="m") == tmp_path / "m" / "8"
    before = sorted(p.name for p in (tmp_path / "m" / "2").rglob("*"))
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(model, tmp_path, name="m", version=2)
    assert sorted(p.name for p in (tmp_path / "m" / "2").rglob("*")) == before
    with pytest.raises(ValueError, match="version"):
        export_saved_model(model, tmp_path, name="m", version=0)


def test_a_version_is_readable_by_a_server_under_another_user(tmp_path):
    """TF Serving often runs as its own user: the version keeps the umask's modes."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        version = export_saved_model(small("vae", "mlp"), tmp_path, name="m")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(version.stat().st_mode) == 0o755
    assert stat.S_IMODE((version / "saved_model.pb").stat().st_mode) == 0o644


def test_failure_mid_export_leaves_no_version(tmp_path, monkeypatch):
    def fail(saved_model_dir, path):
        assert (saved_model_dir / "saved_model.pb").is_file()  # the SavedModel was half done
        raise OSError("disk full")

    monkeypatch.setattr(export, "_write_tflite_decoder", fail)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(small("vae", "mlp"), tmp_path, name="m", tflite=True)
    assert list((tmp_path / "m").iterdir()) == []


def test_tflite_decoder_matches_the_saved_model(tmp_path):
    model = small("cvae", "mlp")
    path = export_saved_model(model, tmp_path, name="c", tflite=True)
    runner = tf.lite.Interpreter(model_path=str(path / "decoder.tflite")).get_signature_runner("decode")
    z = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    labels = np.array([0, 3, 5, 9], "int32")
    got = runner(z=z, labels=labels)["images"]
    served = tf.saved_model.load(str(path)).signatures["decode"](z=tf.constant(z), labels=tf.constant(labels))
    np.testing.assert_allclose(got, served["images"].numpy(), atol=1e-5)


def test_saved_model_cli_shows_and_runs_decode(exported, tmp_path):
    _, _, _, _, cases = exported
    np.save(tmp_path / "z.npy", np.zeros((2, 3), "float32"))
    path = cases["vae_mlp"]["path"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    show = subprocess.run([str(BIN / "saved_model_cli"), "show", "--dir", path, "--all"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert show.returncode == 0, show.stderr[-1000:]
    for signature in ("decode", "encode", "reconstruct", "sample", "score", "serving_default"):
        assert f"signature_def['{signature}']" in show.stdout
    run = subprocess.run([str(BIN / "saved_model_cli"), "run", "--dir", path, "--tag_set", "serve",
                          "--signature_def", "decode", "--inputs", f"z={tmp_path / 'z.npy'}",
                          "--outdir", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-1000:]
    expected = cases["vae_mlp"]["model"].decode(np.zeros((2, 3), "float32"))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "images.npy"), expected, atol=1e-5)
