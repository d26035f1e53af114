"""Command line: python -m npgan sample CHECKPOINT -n N -o FILE(.npy|.png)"""
import argparse
import sys
from pathlib import Path

from npgan.backend import BackendError
from npgan.backend import host as np
from npgan.checkpoint import CheckpointError
from npgan.plots import save_grid
from npgan.train import generate, load_generator


def _sample(args):
    suffix = Path(args.output).suffix.lower()
    if suffix not in (".npy", ".png"):
        sys.exit(f"error: output must end in .npy (the images as float32 (N, 784) in [-1, 1]) "
                 f"or .png (a grid), got {args.output!r}")
    if args.n < 1:
        sys.exit(f"error: -n must be at least 1, got {args.n}")
    G, be, config = load_generator(args.checkpoint, backend=args.backend, seed=args.seed)
    images = generate(G, be, args.n, config.latent_dim)              # (N, P) float32
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(args.output, images)
    else:
        save_grid(images, args.output, nrow=args.nrow)
    print(f"wrote {args.n} samples to {args.output}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m npgan")
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("-n", type=int, default=64, help="number of images")
    s.add_argument("-o", "--output", required=True, help="FILE.npy or FILE.png")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    s.add_argument("--nrow", type=int, default=None, help="images per row in a PNG grid")
    s.set_defaults(run=_sample)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CheckpointError, BackendError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
