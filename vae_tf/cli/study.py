"""`vae-tf study`: a grid of models x hyperparameters x seeds, trained, scored, tabulated."""

from vae_tf.cli.options import positive_int
from vae_tf.cli.train import add_config_arguments


def add_study(commands):
    from vae_tf.config import flag, option_dest, option_fields
    from vae_tf.runs.study import DEFAULT_GRID, RUN_SETTINGS, SAMPLES, STUDY_SETTINGS

    flags = {option_dest(section, field): flag(field) for section, field in option_fields()}
    settings = ", ".join(f"{flags[key]} {' '.join(map(str, v)) if isinstance(v, tuple) else v}"
                         for key, v in STUDY_SETTINGS.items())

    grid = "; ".join(f"{s.label}: {s.option} {', '.join(map(str, s.values))}" for s in DEFAULT_GRID)
    study = commands.add_parser(
        "study", allow_abbrev=False,
        help="train and score a grid of models x hyperparameters x seeds in DIR, resumably",
        description="Each run is a `vae-tf train` run in DIR/runs, scored by `vae-tf disentanglement`; "
                    "a rerun skips finished runs and resumes interrupted ones. Writes DIR/results.csv "
                    "and box plots in DIR/plots/scores.png. The other options are `vae-tf train`'s, "
                    f"shared by every run; they start from disentanglement_lib's settings ({settings}), "
                    "not train's defaults.")
    study.add_argument("directory", metavar="DIR", help="the study's directory (everything is written there)")
    study.add_argument("--grid", action="append", default=None, metavar="MODEL:OPTION=V1,V2",
                       help="a model and the values of the option swept, e.g. vae:beta=1,4 or "
                            "dipvae:dip_type=ii:dip_lambda_od=1,10 (options before the last are fixed); "
                            f"repeat for more models (default: disentanglement_lib's, {grid})")
    study.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                       help="only these models of the grid (default: all)")
    study.add_argument("--seeds", type=positive_int, default=3,
                       help="seeds 0..N-1 of each value (default: %(default)s)")
    study.add_argument("--jobs", type=positive_int, default=1,
                       help="runs at once, each a process (default: %(default)s)")
    study.add_argument("--samples", choices=SAMPLES, default="default",
                       help="sample sizes of the scores, as vae-tf disentanglement's --quick / default / "
                            "--paper-samples (default: %(default)s)")
    add_config_arguments(study, hidden=RUN_SETTINGS)
    study.set_defaults(handler=study_command)


def study_command(args):
    from vae_tf.config import option_dest, option_fields
    from vae_tf.runs.study import DEFAULT_GRID, parse_sweep, run_study

    settings = {option_dest(section, field) for section, field in option_fields()} | {"preset"}
    train_options = {key: value for key, value in vars(args).items() if key in settings}
    grid = DEFAULT_GRID if args.grid is None else [parse_sweep(text) for text in args.grid]
    rows, (table, figure) = run_study(args.directory, grid, args.seeds, args.jobs, train_options, args.samples,
                                      args.models)
    print(f"{len(rows)} runs finished; results in {table}, box plots in {figure}")
