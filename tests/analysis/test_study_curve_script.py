"""scripts/study_curve.py: the budget of each run, the table and the figures, on a fake study
whose scores are cached (the scores themselves are `evaluate_run`'s, tested elsewhere)."""

import csv
import importlib.util
import json
import pathlib

import pytest

from vae_tf.config import config_from_options

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "study_curve.py"


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("study_curve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script, study, name, limit, epochs, mig, factor_vae):
    run_dir = study / "runs" / name
    run_dir.mkdir(parents=True)
    config = config_from_options({"data.dataset": "dsprites", "data.limit": limit, "data.batch_size": 64,
                                  "training.epochs": epochs, "name": name})
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    (run_dir / "metrics.json").write_text(json.dumps({"reconstruction": 40.0, "neg_elbo": 50.0}))
    cache = {"samples": script.SAMPLES, "metrics": list(script.METRICS), "seed": 0,
             "summary": {"mig": mig, "factor_vae": factor_vae}}
    (study / "rescored").mkdir(exist_ok=True)
    (study / "rescored" / f"{name}.json").write_text(json.dumps(cache))


def test_steps_are_epochs_times_batches_of_the_limit(script, tmp_path):
    _run(script, tmp_path, "vae-beta-1-seed0", 1000, 3, 0.1, 0.5)
    assert script.steps_of(tmp_path / "runs" / "vae-beta-1-seed0") == 3 * 16  # ceil(1000 / 64) = 16


def test_the_table_csv_and_figures_gather_seeds_by_model_value_and_budget(script, tmp_path, monkeypatch, capsys):
    small, large = tmp_path / "small", tmp_path / "large"
    for seed, (mig, fvae) in enumerate([(0.1, 0.4), (0.3, 0.6)]):
        _run(script, small, f"vae-beta-1-seed{seed}", 640, 1, mig, fvae)
        _run(script, large, f"vae-beta-1-seed{seed}", 1280, 1, mig + 0.1, fvae)
        _run(script, large, f"vae-beta-4-seed{seed}", 1280, 1, 0.5, 0.9)
    (large / "runs" / "tcvae-tc_weight-6-seed0.partial").mkdir()  # still training: left out
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["study_curve.py", str(small), str(large), "--out", str(out / "curve.png"),
                                     "--boxes", str(out / "boxes.png"), "--boxes-steps", "10", "--csv", str(out / "curve.csv")])
    script.main()
    printed = capsys.readouterr().out
    assert "| vae beta=1 | 10 | 2 | 0.200 ± 0.141 | 0.500 ± 0.141 | 40.0 ± 0.0 |" in printed
    assert "| vae beta=1 | 20 | 2 | 0.300 ± 0.141 |" in printed
    assert "| vae beta=4 | 20 | 2 | 0.500 ± 0.000 | 0.900 ± 0.000 |" in printed
    with open(out / "curve.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 6 and {row["steps"] for row in rows} == {"10", "20"}
    assert (out / "curve.png").stat().st_size > 0 and (out / "boxes.png").stat().st_size > 0


def test_boxes_at_a_budget_no_run_has_are_refused(script, tmp_path, monkeypatch, capsys):
    _run(script, tmp_path, "vae-beta-1-seed0", 640, 1, 0.1, 0.4)
    monkeypatch.setattr("sys.argv", ["study_curve.py", str(tmp_path), "--out", str(tmp_path / "c.png"),
                                     "--boxes", str(tmp_path / "b.png"), "--boxes-steps", "7"])
    with pytest.raises(SystemExit):
        script.main()
    assert "--boxes-steps 7: no run has that budget; the budgets are [10]" in capsys.readouterr().err


def test_a_directory_that_is_no_study_is_refused_before_anything_is_written(script, tmp_path, monkeypatch, capsys):
    out = tmp_path / "curve.png"
    monkeypatch.setattr("sys.argv", ["study_curve.py", str(tmp_path / "nostudy"), "--out", str(out)])
    with pytest.raises(SystemExit):
        script.main()
    assert "nostudy is not a study directory" in capsys.readouterr().err
    assert not out.exists()
