"""Every Python and shell example in README.md and docs/ runs, at tiny size, so the docs
cannot drift from the code.

Each page runs in its own temporary directory, its blocks in page order (a block may use
what an earlier one made: a run, a variable). Shell lines that start with `vae-tf` run
in this process through `vae_tf.cli.main`, with tiny sizes appended as overriding flags
(argparse keeps the last value of a repeated option), so the page shows the command as a
user types it; other shell lines run in bash. Python blocks share one namespace per page;
`keras.datasets.mnist` / `fashion_mnist.load_data` return a few Fashion-MNIST images from
the Debian package instead of downloading. `markdown_blocks.py` says how a page marks a block it
cannot run here, or asks to start from the quick-start run.
"""

import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import markdown_blocks as blocks

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = blocks.markdown_files(ROOT)
FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
QUICKSTART = ("runs/vae-mlp-fashion_mnist", "saved_models/vae-mlp-fashion_mnist")

# Tiny sizes per subcommand, appended to every `vae-tf` line of the docs.
TINY = {
    "train": ["--epochs", "1", "--limit", "256", "--hidden-units", "16", "--iw-samples", "2",
              "--projector-examples", "16"],
    "train-prior": ["--epochs", "1", "--filters", "8", "--layers", "1"],
    "evaluate": ["--iw-samples", "2"],
    "score": ["--iw-samples", "2"],
    "calibrate": ["--iw-samples", "2"],
    "ood": ["--iw-samples", "2"],
    "plot": ["--projector-examples", "16"],
    "disentanglement": ["--quick"],
    "sample-quality": ["--samples", "200"],
    "benchmark": ["--examples", "256", "--epochs", "1", "--serving-calls", "5", "--repeats", "1"],
}
# Appended only where the line does not set them (a page may rely on its own value).
DEFAULTS = {
    # A page that uses a run's SavedModel exports it itself (or says --export); the
    # quick-start run has one. No validation split is added: a page whose commands need
    # one (calibrate) asks for it, as a user must.
    "train": ["--no-export"],
}
# A tiny flag is left out where the line already has one it cannot be combined with.
EXCLUSIVE = {"--quick": "--paper-samples"}
# ... or where the line's data is smaller than the tiny size (a table of a few hundred records).
NOT_WITH = {"--limit": "tabular"}


def tiny_argv(argv, small_fashion=None):
    """`argv` (after `vae-tf`) with the tiny sizes of its subcommand appended.

    With `small_fashion` (a directory of Fashion-MNIST's t10k files alone), a `train` on
    the default data reads it: 8,000 training and 2,000 test images instead of 60,000 and
    10,000, so the run's evaluation, plots and later scores are quick too.
    """
    extra, defaults = [], DEFAULTS.get(argv[0], [])
    default_data = "--data-dir" not in argv and (
        "--dataset" not in argv or argv[argv.index("--dataset") + 1] == "fashion_mnist")
    if argv[0] == "train" and small_fashion is not None and default_data:
        extra += ["--data-dir", str(small_fashion)]
    flags = [*TINY.get(argv[0], []), *defaults]
    for i, flag in enumerate(flags):
        if (not flag.startswith("-") or EXCLUSIVE.get(flag) in argv or NOT_WITH.get(flag) in argv
                or (flag in defaults and _sets(argv, flag))):
            continue
        values = []
        for value in flags[i + 1:]:
            if value.startswith("-"):
                break
            values.append(value)
        extra += [flag, *values]
    return [*argv, *extra]


def _sets(argv, flag):
    """Whether `argv` sets `flag`, or its other form for --x / --no-x switches."""
    return flag in argv or flag.replace("--no-", "--") in argv or flag.replace("--", "--no-", 1) in argv


def _page_id(path):
    return str(path.relative_to(ROOT))


def _page_params():
    """A test per page with a runnable example (slow if the page says so)."""
    params = []
    for path in PAGES:
        try:
            text = path.read_text()
            slow = "slow" in blocks.page_options(text)
            if not any(block.skip_reason is None for block in blocks.blocks(text)):
                continue
        except ValueError:  # reported by test_skipped_blocks_say_why, not at collection
            slow = False
        marks = [pytest.mark.slow] if slow else []
        params.append(pytest.param(path, marks=marks, id=_page_id(path)))
    return params


def _tiny_keras_dataset(count=256, test_count=64):
    """keras.datasets' (x_train, y_train), (x_test, y_test), uint8, from Fashion-MNIST's t10k files."""
    from vae_tf.data import read_idx

    images = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    train, test = slice(0, count), slice(count, count + test_count)
    return lambda *args, **kwargs: ((images[train], labels[train]), (images[test], labels[test]))


def _shell_env(bin_dir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # This interpreter's bin holds the tools pip installed with it (saved_model_cli, tensorboard).
    env["PATH"] = os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable), env["PATH"]])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _bin_dir(directory):
    """A `vae-tf` for shell lines that are not plain `vae-tf` lines."""
    bin_dir = directory / ".docs-bin"
    bin_dir.mkdir()
    shim = bin_dir / "vae-tf"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vae_tf "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def _run_shell(command, where, env, small_fashion):
    from vae_tf.cli import main

    words = shlex.split(command, comments=True)
    if words and words[0] == "time":
        words = words[1:]
    if words and words[0] == "vae-tf":
        assert not {"&&", "||", "|", ";", ">"} & set(words), \
            f"write a vae-tf command on a line of its own: {command}"
        argv = tiny_argv(words[1:], small_fashion)
        if "--strategy" not in argv:
            assert main(argv) == 0, f"{where}: vae-tf {shlex.join(argv)} failed"
            return
        # A strategy of its own needs a fresh process: two MirroredStrategy objects in one
        # process abort each other's collectives (tests/conftest.py's mirrored_strategy).
        command = shlex.join(["vae-tf", *argv])
    else:
        assert "vae-tf " not in command, f"{where}: put the vae-tf command on a line of its own: {command}"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{where}: `{command}` failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def small_fashion(tmp_path_factory):
    """Fashion-MNIST's 10,000 t10k images alone, which vae_tf carves into 8,000 train and 2,000 test."""
    directory = tmp_path_factory.mktemp("fashion-t10k")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (directory / name).symlink_to(FASHION_DIR / name)
    return directory


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory, small_fashion):
    """The quick start's run and SavedModel (`vae-tf train`), trained once at tiny size."""
    from vae_tf.cli import main

    directory = tmp_path_factory.mktemp("quickstart")
    previous = os.getcwd()
    os.chdir(directory)
    try:
        assert main(tiny_argv(["train", "--export"], small_fashion)) == 0
    finally:
        os.chdir(previous)
    return directory


@pytest.mark.parametrize("page", _page_params())
def test_page_examples_run(page, tmp_path, monkeypatch, request, small_fashion):
    import keras

    text = page.read_text()
    options = blocks.page_options(text)
    runnable = [block for block in blocks.blocks(text) if block.skip_reason is None]
    if "quickstart" in options:
        source = request.getfixturevalue("quickstart_run")
        for part in QUICKSTART:
            shutil.copytree(source / part, tmp_path / part)
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = _shell_env(_bin_dir(tmp_path))
    monkeypatch.chdir(tmp_path)
    for module in (keras.datasets.mnist, keras.datasets.fashion_mnist):
        monkeypatch.setattr(module, "load_data", _tiny_keras_dataset())
    namespace = {"__name__": "__docs__"}
    for block in runnable:
        where = f"{_page_id(page)}:{block.line}"
        start = time.perf_counter()
        if block.language == "python":
            exec(compile(block.code, where, "exec"), namespace)
        else:
            for command in blocks.commands(block.code):
                started = time.perf_counter()
                _run_shell(command, where, env, small_fashion)
                print(f"{where}: {time.perf_counter() - started:.1f} s  {command[:70]}")
        print(f"{where}: {time.perf_counter() - start:.1f} s")  # shown with -rA: where the time goes


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_skipped_blocks_say_why(page):
    text = page.read_text()
    blocks.page_options(text)  # unknown options are an error
    for block in blocks.blocks(text):
        assert block.skip_reason != "", f"{_page_id(page)}:{block.line}: no-run needs a reason"


def test_tiny_flags_exist():
    """Every tiny override is an option of its subcommand, so none silently stops applying."""
    from vae_tf.cli import build_parser

    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    for command in {*TINY, *DEFAULTS}:
        known = subcommands[command]._option_string_actions
        flags = [*TINY.get(command, []), *DEFAULTS.get(command, [])]
        for flag in (f for f in flags if f.startswith("-")):
            assert flag in known, f"vae-tf {command} has no {flag}"


def test_tiny_argv_appends_overrides_last():
    argv = tiny_argv(["train", "--epochs", "20", "--name", "x"])
    assert argv[:4] == ["train", "--epochs", "20", "--name"]
    assert argv[argv.index("--epochs", 2) + 1] == "1"
    assert "--quick" not in tiny_argv(["disentanglement", "runs/x", "--paper-samples"])
    assert tiny_argv(["sample", "runs/x"]) == ["sample", "runs/x"]
    assert "--no-export" not in tiny_argv(["train", "--export"])
    assert "--no-export" in tiny_argv(["train"])
    assert "--limit" not in tiny_argv(["train", "--dataset", "tabular", "--data-dir", "t.csv"])
    assert tiny_argv(["train"], "small")[1:3] == ["--data-dir", "small"]
    assert "small" not in tiny_argv(["train", "--dataset", "dsprites"], "small")


def test_blocks_reads_fences_marks_and_continuations():
    text = "\n".join([
        "<!-- docs-test: slow -->",
        "```bash", "vae-tf train \\", "    --epochs 3   # a comment line follows", "# only a comment", "```",
        "<!-- no-run: needs a cluster -->", "```python", "import os", "```",
        "```text", "not run", "```",
    ])
    found = blocks.blocks(text)
    assert [b.language for b in found] == ["shell", "python"]
    assert [shlex.split(c, comments=True) for c in blocks.commands(found[0].code)] == [
        ["vae-tf", "train", "--epochs", "3"]]
    assert found[1].skip_reason == "needs a cluster"
    assert blocks.page_options(text) == {"slow"}
    with pytest.raises(ValueError, match="unknown docs-test"):
        blocks.page_options("<!-- docs-test: fast -->")
    assert np.array_equal([b.line for b in found], [2, 8])
