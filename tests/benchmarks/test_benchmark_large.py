"""The large-image and multi-worker scaling benchmarks: their data, their figures, their command."""

import numpy as np
import pytest
from PIL import Image

from vae_tf.benchmarks import large_images as benchmark_large, scaling as benchmark_scaling
from vae_tf.cli import main
from vae_tf.runtime.precision import policy_name


def test_the_generated_jpegs_are_250_by_250_rgb_and_compress_like_pictures(tmp_path):
    total = benchmark_large.write_jpegs(tmp_path, 5)
    paths = sorted(tmp_path.iterdir())
    assert [p.name for p in paths] == [f"{i:05d}.jpg" for i in range(5)]
    assert total == sum(p.stat().st_size for p in paths)
    pictures = [np.asarray(Image.open(p)) for p in paths]
    assert all(p.shape == (250, 250, 3) and p.dtype == np.uint8 for p in pictures)
    assert total < 0.1 * 5 * 250 * 250 * 3  # smooth content: JPEG keeps < 10% of the raw bytes
    assert len({p.tobytes() for p in pictures}) == 5  # five different pictures


def test_benchmark_refuses_scaling_of_the_large_configuration(capsys):
    assert main(["benchmark", "--scaling", "--config", "large"]) == 2
    assert "--scaling measures --config mlp and conv, not large" in capsys.readouterr().err


@pytest.mark.slow
def test_large_benchmark_reports_training_pipeline_and_memory_per_file_count(tmp_path, capsys):
    out = tmp_path / "large.json"
    assert main(["benchmark", "--config", "large", "--large-files", "80", "120", "--epochs", "1",
                 "--out", str(out)]) == 0
    import json

    results = json.loads(out.read_text())["large"]
    assert [r["files"] for r in results["runs"]] == [80, 120]
    assert [r["train_images"] for r in results["runs"]] == [64, 96]  # 20% are the test split; 2 and 3 batches
    for r in results["runs"]:
        assert r["images_per_s"] > 0 and r["pipeline_images_per_s"] > 0 and r["peak_rss_mib"] > 100
        assert r["pipeline_ratio"] == r["pipeline_images_per_s"] / r["images_per_s"]
        assert r["policy"] == policy_name(None, convolutional=True)
        assert r["cached"] == []
    assert "pipeline img/s" in capsys.readouterr().out


@pytest.mark.slow
def test_two_single_core_workers_train_with_two_replicas():
    results = benchmark_scaling.run("mlp", examples=1024, epochs=1, batch_size=128)
    assert results["two_workers"]["replicas"] == 2 and results["two_workers"]["steps_per_execution"] == 1
    assert results["one_process"]["replicas"] == 1 and results["one_process"]["steps_per_execution"] == 32
    assert results["one_process_one_step"]["steps_per_execution"] == 1
    assert results["speedup"] == results["two_workers"]["images_per_s"] / results["one_process"]["images_per_s"]
    assert 0 < results["speedup_same_steps"] < 4
