"""`vae-tf train` as a script: python scripts/train.py ARGS is vae-tf train ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["train"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
