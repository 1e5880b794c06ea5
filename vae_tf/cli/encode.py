"""`vae-tf encode`: the latent means of a run's split as .npy files."""

import pathlib


def add_encode(commands):
    from vae_tf.runs.sources import SPLITS

    encode = commands.add_parser("encode", help="latent means of a split (numpy .npy; labels beside it)")
    encode.add_argument("run_dir")
    encode.add_argument("--split", choices=SPLITS, default="test")
    encode.add_argument("--out", default="z.npy")
    encode.set_defaults(handler=encode_command)


def encode_command(args):
    from vae_tf.runs.artefacts import encode_split

    shape, labels_path = encode_split(args.run_dir, args.out, args.split)
    message = f"wrote {shape} latent means to {pathlib.Path(args.out)}"
    if labels_path is not None:
        message += f" and their labels to {labels_path}"
    print(message)
