"""`vae-tf score` as a script: python scripts/score.py ARGS is vae-tf score ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["score"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
