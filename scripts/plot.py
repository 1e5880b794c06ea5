"""`vae-tf plot` as a script: python scripts/plot.py ARGS is vae-tf plot ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["plot"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
