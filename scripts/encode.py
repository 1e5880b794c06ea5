"""`vae-tf encode` as a script: python scripts/encode.py ARGS is vae-tf encode ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["encode"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
