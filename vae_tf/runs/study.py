"""A disentanglement study: models x hyperparameters x seeds, each a resumable run.

The study of Locatello et al. (2019), "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations" (ICML), as disentanglement_lib's
`unsupervised_study_v1` sweeps it: six models, each at six values of its
hyperparameter (`DEFAULT_GRID`), each value at several seeds. Every run is an ordinary
`vae-tf train` run started as a child process, then scored by `vae-tf disentanglement`,
so a study is as resumable as its runs: a rerun skips the runs already finished and
scored and resumes the interrupted ones from their checkpoints.

`DIR` holds everything the study writes:

    study.json    the settings every run shares (a rerun must give the same ones)
    runs/NAME/    the runs (`vae_tf.runs.run`), NAME = MODEL-OPTION-VALUE-seedS
    scores/NAME.json  each run's disentanglement scores
    logs/NAME.log     each run's output (both commands, every attempt)
    results.csv   one row per run: model, option, value, seed, status, log, the run's
                  test metrics (metrics.json: -ELBO, reconstruction, ...) and scores
    plots/scores.png  box plots of each score per model (`vae_tf.analysis.study_figures`)
"""

import dataclasses
import json
import logging
import pathlib
import sys

from vae_tf.config import ModelConfig, config_from_options, flag, option_dest, option_fields, value_type
from vae_tf.data import sources
from vae_tf.models import registry
from vae_tf.runs import run
from vae_tf.runs.preemption import Preempted
from vae_tf.runs.study_jobs import Task, run_tasks
from vae_tf.runs.study_results import write_results
from vae_tf.runtime.files import write_json

log = logging.getLogger(__name__)

SAMPLES = ("quick", "default", "paper")  # `vae_tf.runs.disentanglement.sample_sizes`


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One model of a study: a family, with some options fixed, one option swept.

    Args:
        label: str. The model's name in the results and on the figure (its box).
        model: str. The family (`vae_tf.models.registry`).
        option: str. The swept option: one of the family's or a setting every family
            takes (`beta`, `latent_dim`, ...).
        values: tuple. Its values.
        fixed: tuple of (option, value) pairs given to every run. Defaults to ().
    """

    label: str
    model: str
    option: str
    values: tuple
    fixed: tuple = ()


# disentanglement_lib's unsupervised_study_v1 (config/unsupervised_study_v1/sweep.py), in
# its order: beta of the VAE, FactorVAE's gamma, DIP-VAE-I and -II's lambda_od, beta of
# beta-TCVAE, the AnnealedVAE's C_max; the other settings are each family's defaults.
DEFAULT_GRID = (
    Sweep("vae", "vae", "beta", (1, 2, 4, 6, 8, 16)),
    Sweep("factorvae", "factorvae", "factor_tc_weight", (10, 20, 30, 40, 50, 100)),
    Sweep("dipvae_i", "dipvae", "dip_lambda_od", (1, 2, 5, 10, 20, 50), (("dip_type", "i"),)),
    Sweep("dipvae_ii", "dipvae", "dip_lambda_od", (1, 2, 5, 10, 20, 50), (("dip_type", "ii"),)),
    Sweep("tcvae", "tcvae", "tc_weight", (1, 2, 4, 6, 8, 10)),
    Sweep("annealedvae", "annealedvae", "capacity_max", (5, 10, 25, 50, 75, 100)),
)
# The settings of disentanglement_lib's model_configs/shared.gin that vae_tf has: dSprites,
# a conv encoder/decoder (ours: 3x3 kernels) with a 10-D code, batch 64, Adam at 1e-4 with
# epsilon 1e-8. Options given to the study win. Its 300,000 steps are ~29 epochs of
# dSprites; the default here is train's.
STUDY_SETTINGS = {
    "data.dataset": "dsprites", "data.batch_size": 64, "model.arch": "conv", "model.filters": (32, 32, 64, 64),
    "model.latent_dim": 10, "training.lr": 1e-4, "training.adam_epsilon": 1e-8,
}
# The settings a study sets itself for each run.
RUN_SETTINGS = ("model.kind", "name", "out", "training.seed")


def parse_sweep(text):
    """A `Sweep` from `MODEL[:OPTION=VALUE]...:OPTION=V1,V2,...` (the last option is
    swept; the others are fixed, labelled into the model's name: dipvae:dip_type=ii:... is
    "dipvae_ii"). Values are checked by `plan_study`.

    Example:

    >>> parse_sweep("vae:beta=1,4")
    Sweep(label='vae', model='vae', option='beta', values=('1', '4'), fixed=())
    """
    model, *parts = text.split(":")
    pairs = [part.partition("=") for part in parts]
    if not model or not pairs or any(not name or not sep or not values for name, sep, values in pairs):
        raise ValueError(f"--grid {text!r} is not MODEL:OPTION=V1,V2,... (e.g. vae:beta=1,4 or "
                         "dipvae:dip_type=ii:dip_lambda_od=1,10)")
    fixed = [(name, value) for name, _, value in pairs[:-1]]
    for name, value in fixed:
        if "," in value:
            raise ValueError(f"--grid {text!r}: only the last option is swept; {name} takes one value")
    option, _, values = pairs[-1]
    label = "_".join([model, *(value for _, value in fixed)])
    return Sweep(label, model, option, tuple(values.split(",")), tuple(fixed))


def _option_type(model, option, where):
    """The type of `option` of family `model`: its registry `Option`'s, else the config
    field's of a setting every family takes; ValueError naming both otherwise."""
    if model not in registry.names():
        raise ValueError(f"{where}: unknown model {model!r}; the registered families are {registry.names()}")
    family = registry.get(model)
    known = {o.name: o.type for o in family.options}
    common = {f.name: value_type(f)[0] for f in dataclasses.fields(ModelConfig)
              if "family_option" not in f.metadata and f.name != "kind"}
    if option in known or (option in common and common[option] is not tuple):
        return known.get(option) or common[option]
    raise ValueError(f"{where}: model {model!r} has no option {option!r}; its options are "
                     f"{sorted(known)} and the settings every model takes, {sorted(common)}")


def _parse_value(value, kind, option, where):
    if not isinstance(value, str):
        return value
    try:
        if kind is bool:
            return {"true": True, "false": False}[value.lower()]
        return kind(value)
    except (KeyError, ValueError):
        raise ValueError(f"{where}: {option} takes {kind.__name__} values, got {value!r}") from None


def value_text(value):
    """A value as it appears in run names: 4.0 -> "4", 1e-05 -> "1e-05"."""
    return format(value, "g").replace("+", "") if isinstance(value, float) else str(value).lower()


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """One run of a study: its model (`Sweep.label`), swept value, seed and settings."""

    name: str
    sweep: Sweep
    value: object
    seed: int
    options: dict  # keyed by `option_dest`, as `config_from_options` takes them


def plan_study(directory, grid=DEFAULT_GRID, seeds=3, train_options=None, models=None):
    """The runs of a study, every setting checked; nothing is written.

    Args:
        directory: str or Path. The study's directory.
        grid: sequence of `Sweep` (values may be strings, parsed by the option's type).
            Defaults to `DEFAULT_GRID`.
        seeds: int. Seeds 0 .. seeds - 1 of each value, >= 1. Defaults to 3.
        train_options: dict or None. Settings every run shares, keyed by `option_dest`
            (`vae-tf train`'s options), over `STUDY_SETTINGS`; not those in `RUN_SETTINGS`.
        models: sequence of str or None. Only the sweeps of these labels or families.

    Returns:
        A list of `StudyRun`, model by model, value by value, seed by seed.

    Raises:
        ValueError: naming the model, option or value, for anything a run would refuse.
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    train_options = dict(train_options or {})
    given = sorted(set(train_options) & set(RUN_SETTINGS))
    if given:
        flags = {option_dest(section, field): flag(field) for section, field in option_fields()}
        raise ValueError(f"the study sets {', '.join(flags[key] for key in given)} of each run itself: give "
                         "the models and values with --grid or --models, the seeds with --seeds")
    grid = list(grid)
    if models is not None:
        unknown = sorted(set(models) - {s.label for s in grid} - {s.model for s in grid})
        if unknown:
            raise ValueError(f"--models {unknown[0]!r} is not in the grid; its models are "
                             f"{[s.label for s in grid]}")
        grid = [s for s in grid if s.label in models or s.model in models]
    if not grid:
        raise ValueError("the grid has no models")
    shared = {**STUDY_SETTINGS, **train_options}
    sources.factor_sampler(config_from_options(shared).data.dataset)  # the scores need factors
    root = pathlib.Path(directory).resolve()
    runs, labels = [], set()
    for sweep in grid:
        where = f"--grid {sweep.label}"
        if sweep.label in labels:
            raise ValueError(f"{where}: the model {sweep.label!r} is in the grid twice")
        labels.add(sweep.label)
        fixed = {name: _parse_value(value, _option_type(sweep.model, name, where), name, where)
                 for name, value in sweep.fixed}
        kind = _option_type(sweep.model, sweep.option, where)
        values = [_parse_value(value, kind, sweep.option, where) for value in sweep.values]
        if len(set(map(value_text, values))) < len(values):
            raise ValueError(f"{where}: a value of {sweep.option} is given twice: {list(sweep.values)}")
        for value in values:
            for seed in range(seeds):
                name = f"{sweep.label}-{sweep.option}-{value_text(value)}-seed{seed}"
                options = {**shared, **{f"model.{k}": v for k, v in {**fixed, sweep.option: value}.items()},
                           "model.kind": sweep.model, "training.seed": seed, "name": name,
                           "out": str(root / "runs")}
                try:
                    run.run_path(root / "runs", name)
                    config_from_options(options)
                except ValueError as error:
                    raise ValueError(f"{where}, run {name}: {error}") from None
                runs.append(StudyRun(name, sweep, value, seed, options))
    return runs


def train_argv(options):
    """`vae-tf train`'s arguments for settings keyed by `option_dest` (the inverse of
    its parser), with --no-export: a study writes nothing outside its directory."""
    argv = ["train", "--no-export"] + (["--preset", options["preset"]] if "preset" in options else [])
    for section, field in option_fields():
        key = option_dest(section, field)
        if key not in options or options[key] is None:
            continue
        value, name = options[key], flag(field)
        if isinstance(value, bool):
            argv += [name] if value else [] if field.default is False else ["--no-" + name[2:]]
        else:
            argv += [name, *map(str, value if isinstance(value, (tuple, list)) else [value])]
    return argv


def run_study(directory, grid=DEFAULT_GRID, seeds=3, jobs=1, train_options=None, samples="default",
              models=None):
    """Trains and scores every run of a study not done yet, then writes its results.

    Args:
        directory: str or Path. The study's directory, created if needed.
        grid, seeds, train_options, models: as `plan_study` takes them.
        jobs: int. Runs trained or scored at once (child processes), >= 1. Defaults to 1.
        samples: str. The scores' sample sizes: "quick", "default" or "paper"
            (`vae_tf.runs.disentanglement.sample_sizes`). Defaults to "default".

    Returns:
        (rows, paths): the results (a dict per run, as in results.csv) and the paths
        of results.csv and of the figure (None before any run finished).

    Raises:
        ValueError: before anything is written, for a bad setting, or settings that
            differ from those of the study already in `directory`.
        RuntimeError: after writing the results, when runs failed (their logs say why).
        Preempted: after writing the results, when SIGTERM or Ctrl-C stopped the study;
            the same call resumes it.

    Example:

    >>> rows, paths = run_study("study", [Sweep("vae", "vae", "beta", (1, 4))], seeds=2,
    ...                         train_options={"training.epochs": 1}, samples="quick")
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if samples not in SAMPLES:
        raise ValueError(f"samples must be one of {SAMPLES}, got {samples!r}")
    root = pathlib.Path(directory)
    runs = plan_study(root, grid, seeds, train_options, models)
    record = json.loads(json.dumps({"settings": {**STUDY_SETTINGS, **(train_options or {})}, "samples": samples}))
    _check_record(root / "study.json", record)
    for sub in ("runs", "scores", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    write_json(root / "study.json", record)
    tasks = [_task(root, study_run, samples) for study_run in runs]
    todo = [task for task in tasks if task.commands]
    log.info("study %s: %d runs, %d done before, %d to run, %d at a time", root, len(runs),
             len(runs) - len(todo), len(todo), jobs)
    started = iter(range(1, len(todo) + 1))

    def report(event, task):
        if event == "started":
            task.number = next(started)
        where = f"[{task.number}/{len(todo)}] {task.name}"
        if event == "started":
            log.info("%s started: %s", where, ", ".join(step for step, _ in task.commands))
        elif event == "finished":
            log.info("%s finished (%s)", where, ", ".join(f"{s} {t:.0f} s" for s, t in task.seconds.items()))
        else:
            log.warning("%s %s in %s (exit %s): see %s", where, event, task.step, task.exit_code, task.log)

    stopped = run_tasks(todo, jobs, root, report)
    rows, paths = write_results(root, runs, {task.name: task for task in tasks})
    failed = [row["run"] for row in rows if row["status"] == "failed"]
    if stopped:
        raise StudyStopped(stopped, f"stopped by {stopped}: interrupted runs saved checkpoints; results so far "
                                    f"in {paths[0]}; run the same command to resume")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(rows)} runs failed ({', '.join(failed[:3])}"
                           f"{', ...' if len(failed) > 3 else ''}): see their logs in {root / 'logs'}; "
                           f"results in {paths[0]}")
    return rows, paths


class StudyStopped(Preempted):
    """A signal stopped the study after its running runs saved checkpoints."""

    def __init__(self, signal_name, message):
        Exception.__init__(self, message)  # Preempted's own message is about one run
        self.signal_name, self.epoch, self.step = signal_name, None, None


def _check_record(path, record):
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != record:
            changed = sorted(k for k in {**previous["settings"], **record["settings"]}
                             if previous["settings"].get(k) != record["settings"].get(k))
            if previous["samples"] != record["samples"]:
                changed.append("samples")
            raise ValueError(f"{path.parent} holds a study with other settings ({', '.join(changed)}); "
                             "rerun it with the same ones, or start a study in a new directory")


def _task(root, study_run, samples):
    """The commands still due for one run: training unless finished, scoring unless scored."""
    final = root / "runs" / study_run.name
    vae_tf = [sys.executable, "-m", "vae_tf"]
    commands = [] if run.is_run(final) else [("train", [*vae_tf, *train_argv(study_run.options)])]
    scores = root / "scores" / f"{study_run.name}.json"
    if not scores.is_file() or commands:
        size = {"quick": ["--quick"], "paper": ["--paper-samples"], "default": []}[samples]
        commands.append(("scores", [*vae_tf, "disentanglement", str(final), "--out", str(scores), *size]))
    return Task(study_run.name, commands, root / "logs" / f"{study_run.name}.log")
