"""The command-line reference page is generated from the parser: every subcommand, with its usage."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _hook():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "docs" / "hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_has_every_subcommand_and_its_usage():
    from vae_tf.cli import build_parser

    hook = _hook()
    page = hook.on_page_markdown(f"# CLI\n\n{hook.MARKER}\n", page=None, config=None, files=None)
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert hook.MARKER not in page
    for name in subcommands:
        assert f"## vae-tf {name}\n" in page
        assert f"usage: vae-tf {name} " in page
    assert "--iw-samples" in page and "--num-embeddings" in page  # flags from RunConfig and the registry


def test_pages_without_the_marker_are_left_alone():
    assert _hook().on_page_markdown("# Guide\n", page=None, config=None, files=None) == "# Guide\n"
