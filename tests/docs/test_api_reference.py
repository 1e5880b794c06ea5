"""Every subpackage of vae_tf has a page in the API reference (its submodules are rendered
from the docstrings by mkdocstrings, so a module added or split needs no edit)."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOT_API = {"cli", "testing"}  # the command line has its own reference; testing is for the tests


def test_each_subpackage_has_an_api_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    packages = [p.parent.name for p in (ROOT / "vae_tf").glob("*/__init__.py")]
    assert packages
    for name in sorted(set(packages) - NOT_API):
        page = ROOT / "docs" / "reference" / "api" / f"{name}.md"
        assert page.is_file(), f"vae_tf.{name} has no API page {page.relative_to(ROOT)}"
        assert f"::: vae_tf.{name}\n" in page.read_text()
        assert f"reference/api/{name}.md" in nav, f"mkdocs.yml's nav does not list {name}.md"
