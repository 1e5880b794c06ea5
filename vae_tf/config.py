"""The frozen configuration of one training run, stored as config.json in its run directory."""

import dataclasses
import json
import os
import pathlib
import tempfile

from vae_tf.names import check_name

FORMAT_VERSION = 1  # config.json's format; its presence marks a directory as a vae_tf run

@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything needed to repeat a run. Defaults follow the tutorials: an MLP VAE with
    400 hidden units and a 20-D latent, Bernoulli likelihood, batch 128, Adam 1e-3,
    10 epochs."""

    model: str = "vae"
    arch: str = "mlp"
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    image_size: tuple | None = None
    color_mode: str = "rgb"
    latent_dim: int = 20
    hidden_units: tuple = (400,)
    filters: tuple = (32, 64)
    likelihood: str = "bernoulli"
    sigma: float | None = None
    learn_sigma: bool = False
    beta: float = 1.0
    kl_warmup_epochs: int = 0
    free_bits: float = 0.0
    binarize: str = "none"
    validation_fraction: float = 0.1
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    iw_samples: int = 100
    strategy: str = "auto"
    cpu_replicas: int = 1
    deterministic: bool = False
    mixed_precision: bool = False
    name: str | None = None
    out: str = "runs"

    def __post_init__(self):
        for field in ("epochs", "batch_size", "latent_dim", "iw_samples", "cpu_replicas"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be an integer >= 1, got {value}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        # Before any path is built from it.
        check_name(self.run_name, "the default run name MODEL-ARCH-DATASET" if self.name is None else "--name")

    @property
    def run_name(self):
        return f"{self.model}-{self.arch}-{self.dataset}" if self.name is None else self.name

    def to_dict(self):
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values):
        values = {k: v for k, v in values.items() if k != "format_version"}  # runs before 1 had none
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        tuples = {"image_size", "hidden_units", "filters"}
        return cls(**{k: tuple(v) if k in tuples and v is not None else v for k, v in values.items()})


def write_json(path, payload):
    """Writes JSON atomically: a temporary file beside `path`, then a rename."""
    path = pathlib.Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def read_config(run_dir):
    path = pathlib.Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json)")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a valid run configuration ({error})") from error
