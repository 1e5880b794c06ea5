"""The package's layout rules (docs/guides/development.md, Layout): checked, so they hold."""

import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "vae_tf"
# Each subpackage's floor: a module imports only from its own floor or lower ones.
FLOORS = {"cli": 8, "benchmarks": 7, "runs": 6, "config": 5.5, "analysis": 5, "serving": 5,
          "models": 4, "data": 3, "core": 3, "runtime": 1, "testing": 0}
IMPORT = re.compile(r"^\s*(?:from|import) vae_tf\.(\w+)", re.M)


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def floor_of(path):
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def test_the_top_level_holds_at_most_six_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top


def test_no_module_but_the_config_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in modules()
            if (n := len(p.read_text().splitlines())) > 400 and p != PACKAGE / "config.py"}
    assert not long


def test_imports_point_down_the_floors():
    upward = []
    for path in modules():
        here = floor_of(path)
        if here not in FLOORS:
            continue
        for target in IMPORT.findall(path.read_text()):
            if target in FLOORS and FLOORS[target] > FLOORS[here]:
                upward.append(f"{path.relative_to(PACKAGE)} imports vae_tf.{target}")
    assert not upward


def test_private_keras_is_used_only_in_runtime_compat():
    users = [str(p.relative_to(PACKAGE)) for p in modules()
             if "keras.src" in p.read_text() and p != PACKAGE / "runtime" / "compat.py"]
    assert not users
