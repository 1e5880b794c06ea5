"""`vae-tf disentanglement`: the seven disentanglement metrics of a run trained on a data
set with known factors (dsprites)."""

# How the printed line names each metric's headline number.
LABELS = {"mig": "MIG", "sap": "SAP", "dci": "DCI disentanglement", "factor_vae": "FactorVAE",
          "beta_vae": "beta-VAE", "modularity": "Modularity", "explicitness": "Explicitness", "irs": "IRS"}


def add_disentanglement(commands):
    from vae_tf.analysis.disentanglement.scores import METRICS

    disentangle = commands.add_parser(
        "disentanglement", help="MIG, SAP, DCI, FactorVAE, beta-VAE, Modularity/Explicitness and IRS of a run "
                                "trained on a data set with known factors (dsprites)")
    disentangle.add_argument("run_dir")
    disentangle.add_argument("--out", default="scores.json", help="JSON file to write (default: %(default)s)")
    disentangle.add_argument("--seed", type=int, default=0, help="seed of every draw and split (default: %(default)s)")
    disentangle.add_argument("--metrics", choices=METRICS, nargs="+", default=None,
                             help="the metrics to compute (default: all); each draws its own samples, so "
                                  "a subset gives the numbers the whole set gives")
    sizes = disentangle.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true",
                       help="tiny sample sizes (seconds; a smoke test, not a measurement)")
    sizes.add_argument("--paper-samples", action="store_true",
                       help="disentanglement_lib's sample sizes (the FactorVAE score then encodes 970,000 "
                            "images and the beta-VAE metric 1,920,000: an hour or more)")
    disentangle.set_defaults(handler=disentanglement_command)


def disentanglement_command(args):
    from vae_tf.runs.disentanglement import score_disentanglement

    samples = "quick" if args.quick else "paper" if args.paper_samples else "default"
    scores, path = score_disentanglement(args.run_dir, args.out, args.seed, samples, args.metrics)
    print("  ".join(f"{LABELS[name]} {value:.3f}" for name, value in scores["summary"].items()))
    print(f"scores written to {path}")
