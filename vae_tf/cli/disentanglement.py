"""`vae-tf disentanglement`: MIG, SAP, DCI and FactorVAE scores of a dSprites run."""


def add_disentanglement(commands):
    disentangle = commands.add_parser(
        "disentanglement", help="MIG, SAP, DCI and FactorVAE scores of a run trained on dsprites")
    disentangle.add_argument("run_dir")
    disentangle.add_argument("--out", default="scores.json", help="JSON file to write (default: %(default)s)")
    disentangle.add_argument("--seed", type=int, default=0, help="seed of every draw and split (default: %(default)s)")
    sizes = disentangle.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true",
                       help="tiny sample sizes (seconds; a smoke test, not a measurement)")
    sizes.add_argument("--paper-samples", action="store_true",
                       help="disentanglement_lib's sample sizes (the FactorVAE score then encodes "
                            "970,000 images: tens of minutes)")
    disentangle.set_defaults(handler=disentanglement_command)


def disentanglement_command(args):
    from vae_tf.runs.disentanglement import score_disentanglement

    samples = "quick" if args.quick else "paper" if args.paper_samples else "default"
    scores, path = score_disentanglement(args.run_dir, args.out, args.seed, samples)
    print(f"MIG {scores['mig']:.3f}  SAP {scores['sap']:.3f}  DCI disentanglement "
          f"{scores['dci']['disentanglement']:.3f}  FactorVAE {scores['factor_vae']['eval_accuracy']:.3f}")
    print(f"scores written to {path}")
