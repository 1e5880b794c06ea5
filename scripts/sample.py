"""`vae-tf sample` as a script: python scripts/sample.py ARGS is vae-tf sample ARGS."""

import pathlib
import runpy
import sys

sys.argv[1:1] = ["sample"]
runpy.run_path(str(pathlib.Path(__file__).with_name("vae-tf")), run_name="__main__")
