"""Anomaly commands: `score` (per-example scores as CSV), `calibrate` (a threshold stored in
the run) and `ood` (ROC figures of merit against other data)."""

from vae_tf.cli.options import add_data_arguments, add_score_options, data_source, positive_int


def add_score(commands):
    score = commands.add_parser("score", help="per-example anomaly scores (nats, higher = more "
                                "anomalous) of the run's split or of any data, as CSV")
    score.add_argument("run_dir")
    add_data_arguments(score, "split to score: the run's own, or of --dataset (default: test)")
    add_score_options(score)
    score.add_argument("--anomaly", action="store_true",
                       help="require the 0/1 anomaly column (added anyway once the run is calibrated)")
    score.add_argument("--out", default="scores.csv")
    score.set_defaults(handler=score_command)


def score_command(args):
    from vae_tf.runs.scoring import score_data

    table = score_data(args.run_dir, data_source(args), args.scores, args.iw_samples,
                       require_calibration=args.anomaly)
    table.write_csv(args.out)
    print(f"wrote {table.rows} rows of {', '.join(table.methods)} (nats, higher = more "
          f"anomalous) for {table.name} to {args.out}")


def add_calibrate(commands):
    from vae_tf.analysis.anomaly import FPR
    from vae_tf.analysis.evaluation import IW_SAMPLES

    calibrate = commands.add_parser("calibrate", help="pick an anomaly threshold on the run's "
                                    "validation split (a run trained with --validation-fraction); "
                                    "stored as RUN_DIR/anomaly.json")
    calibrate.add_argument("run_dir")
    calibrate.add_argument("--score", default=None,
                           help="score to threshold (default: regret for a VAE, complexity for an AE)")
    calibrate.add_argument("--fpr", type=float, default=FPR,
                           help="fraction of normal inputs to flag, in (0, 1) (default: %(default)s)")
    calibrate.add_argument("--iw-samples", type=positive_int, default=IW_SAMPLES)
    calibrate.set_defaults(handler=calibrate_command)


def calibrate_command(args):
    from vae_tf.runs.run import Run
    from vae_tf.runs.scoring import calibrate_run

    finished = Run(args.run_dir)
    record, path = calibrate_run(finished, args.score, args.fpr, args.iw_samples)
    what = "records" if finished.model.input_name == "features" else "images"
    print(f"threshold {record['threshold']:.4f} on {record['score']} flags {args.fpr:g} of "
          f"{record['num_examples']} validation {what}; wrote {path}")


def add_ood(commands):
    ood = commands.add_parser("ood", help="AUROC, AUPRC and FPR at 95%% TPR of every score (and a "
                              "calibrated run's precision and recall at its threshold): the run's test "
                              "split against other data; roc.png and histograms.png beside --out")
    ood.add_argument("run_dir")
    add_data_arguments(ood, "split of --dataset to use as out-of-distribution (default: test)")
    add_score_options(ood)
    ood.add_argument("--out", default="ood.json")
    ood.set_defaults(handler=ood_command)


def ood_command(args):
    from vae_tf.runs.ood import ood_report

    report, paths = ood_report(args.run_dir, data_source(args), args.out, args.scores, args.iw_samples)
    for method, row in report["scores"].items():
        print(f"  {method:<16} AUROC {row['auroc']:.3f}  AUPRC {row['auprc']:.3f}  "
              f"FPR@95%TPR {row['fpr_at_95_tpr']:.3f}")
    if "calibrated" in report:
        row = report["calibrated"]
        precision = "none flagged" if row["precision"] is None else f"{row['precision']:.3f}"
        print(f"  calibrated {row['score']} > {row['threshold']:.4g}: precision {precision}  recall "
              f"{row['recall']:.3f}  false positive rate {row['false_positive_rate']:.3f}")
    print(f"wrote {', '.join(map(str, paths[:-1]))} and {paths[-1]}")
