"""`vae-tf evaluate` as a script: python scripts/evaluate.py ARGS is vae-tf evaluate ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["evaluate"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
