"""README.md's links into the repository point at files that exist (mkdocs checks docs/ alone)."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
               for line in text.splitlines() if line.startswith("#")}
    targets = LINK.findall(text)
    assert targets, "README.md has no links"
    for target in targets:
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (ROOT / path).exists(), f"README.md links to {path}, which does not exist"
        else:
            assert anchor in anchors, f"README.md links to #{anchor}, which is no heading"
