"""Every dotted `vae_tf.` name the documentation mentions (in prose or code) exists, so a
module moved or a function renamed shows up here, not in a reader's ImportError."""

import importlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bvae_tf(?:\.[A-Za-z_]\w*)+")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _resolve(name):
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)  # AttributeError names what is missing
        return obj
    raise ImportError(name)


def test_documented_names_exist():
    names = {name for page in PAGES for name in NAME.findall(page.read_text())}
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as error:
            missing.append(f"{name}: {error}")
    assert not missing, "the docs name what does not exist:\n" + "\n".join(missing)
