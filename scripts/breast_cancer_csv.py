"""Writes scikit-learn's bundled breast-cancer table (Wisconsin diagnostic, 569 records of
30 features) as two CSV files: benign.csv (357 records) and malignant.csv (212 records).

Usage: python scripts/breast_cancer_csv.py OUT_DIR

Each file has a header row of the 30 feature names and a `diagnosis` column ("benign" or
"malignant"), the input of `vae-tf train --dataset tabular --label-column diagnosis`.
"""

import csv
import pathlib
import sys

from sklearn.datasets import load_breast_cancer


def write_tables(out_dir):
    """Writes OUT_DIR/benign.csv and OUT_DIR/malignant.csv; returns their paths."""
    out_dir = pathlib.Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"{out_dir}: no such directory")
    table = load_breast_cancer()
    header = [*table.feature_names, "diagnosis"]
    paths = []
    for target, name in enumerate(table.target_names):  # 0 malignant, 1 benign
        path = out_dir / f"{name}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for record in table.data[table.target == target]:
                writer.writerow([repr(float(v)) for v in record] + [name])
        paths.append(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    for written in write_tables(sys.argv[1]):
        print(f"wrote {written}")
