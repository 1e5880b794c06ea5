"""`vae-tf benchmark` as a script: python scripts/benchmark.py ARGS is vae-tf benchmark ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["benchmark"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
