"""Command line:
    python -m npgan sample CHECKPOINT -n N -o FILE(.npy|.png) [--label L]
    python -m npgan evaluate CHECKPOINT [--n 10000] [--json [FILE]]   a table; JSON with --json
    python -m npgan info [--json]          what to send us when something is wrong
"""
import argparse
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from npgan.backend import BackendError
from npgan.backend import host as np
from npgan.checkpoint import CheckpointError
from npgan.cli import plain_warnings
from npgan.files import (NPY_HEADER, NpyWriter, WriteError, describe_write_error, format_bytes,
                         free_room)
from npgan.models import generate, load_generator
from npgan.plots import save_grid


PIXELS = 784              # every npgan data set is 28 x 28 (npgan.data)
NPY_BYTES = 4 * PIXELS    # a float32 image in a .npy: 3,136 bytes
GRID_MAX = 10_000         # a .png grid of 100 x 100 images is 5,602 pixels wide already
BLOCK = 1000              # images made, and written, at a time


def _labels(start, stop, n, label, classes):
    """The classes of images start..stop-1 of n for a conditional G (`classes` of them):
    `label` for all, or, without one, every class in turn, class by class (a PNG row per
    class). None for an unconditional G (classes None)."""
    if classes is None:
        return None
    if label is not None:
        return np.full(stop - start, label, dtype=np.int64)
    return np.arange(start, stop, dtype=np.int64) // -(-n // classes)     # (b,)


def _sample(args):
    suffix = Path(args.output).suffix.lower()
    if suffix not in (".npy", ".png"):
        sys.exit(f"error: output must end in .npy (the images as float32 (N, 784) in [-1, 1]) "
                 f"or .png (a grid), got {args.output!r}")
    if args.n < 1:
        sys.exit(f"error: -n must be at least 1, got {args.n}")
    if suffix == ".png" and args.n > GRID_MAX:
        sys.exit(f"error: a .png grid shows at most {GRID_MAX:,} images, and -n is {args.n:,}; "
                 f"write them to a .npy file instead")
    G, be, config = load_generator(args.checkpoint, backend=args.backend, seed=args.seed,
                                   raw=args.raw)
    classes, nrow = (G.num_classes if config.conditional else None), args.nrow
    if args.label is not None:
        if not config.conditional:
            sys.exit(f"error: --label needs a conditional GAN, and {args.checkpoint} was "
                     f"trained without --conditional")
        if not 0 <= args.label < G.num_classes:
            sys.exit(f"error: --label must be a class from 0 to {G.num_classes - 1}, got {args.label}")
    elif config.conditional:        # every class in turn; a PNG gets one row per class
        nrow = nrow or -(-args.n // G.num_classes)
    folder = Path(args.output).parent
    try:                                     # before sampling: a bad path fails at once
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
        why = f"{blocking} is a file, not a folder" if blocking else err.strerror or err
        sys.exit(f"error: cannot create the folder {folder} for {args.output}: {why}")
    if suffix == ".npy":            # refuse before making a single image
        need, (room, why) = NPY_HEADER + args.n * NPY_BYTES, free_room(folder)
        if need > room:
            fit = max((room - NPY_HEADER) // NPY_BYTES, 0)
            sys.exit(f"error: {args.n:,} images need {format_bytes(need)} in {args.output} "
                     f"({NPY_BYTES:,} bytes each), but {why}: at most {fit:,} fit; ask for "
                     f"fewer (-n)")

    def blocks():                   # (b, P) float32 blocks; the same numbers as one generate()
        for start in range(0, args.n, BLOCK):
            stop = min(start + BLOCK, args.n)
            labels = _labels(start, stop, args.n, args.label, classes)
            yield generate(G, be, stop - start, config.latent_dim, labels=labels,
                           prior=config.prior)

    try:
        if suffix == ".npy":        # streamed: one block in memory, whatever n is
            with NpyWriter(args.output, args.n, PIXELS) as out, \
                    tqdm(total=args.n, unit="image", disable=not sys.stderr.isatty()) as bar:
                for block in blocks():
                    out.write(block)
                    bar.update(len(block))
        else:
            save_grid(np.concatenate(list(blocks())), args.output, nrow=nrow)
    except WriteError as err:
        sys.exit(f"error: {describe_write_error(err)}; nothing was written")
    print(f"wrote {args.n} samples to {args.output}")


def _evaluate(args):
    from npgan.metrics import collapse_warning, evaluate_generator, format_table
    if args.n < 2:
        sys.exit(f"error: --n must be at least 2, got {args.n}")
    G, be, config = load_generator(args.checkpoint, backend=args.backend, raw=args.raw)
    result = evaluate_generator(G, be, config.dataset, n=args.n, seed=args.seed,
                                latent_dim=config.latent_dim, prior=config.prior,
                                progress=sys.stderr.isatty())
    text = json.dumps(result, indent=2)
    warning = collapse_warning(result)
    if args.json == "-":                # --json alone: the JSON, and nothing else, on stdout
        print(text)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        return
    if args.json is not None:
        Path(args.json).write_text(text + "\n")
    print(f"{args.checkpoint}: {args.n} samples, dataset {config.dataset}, in the features of "
          f"npgan's reference CNN. Frechet: lower is better; precision (realism) and recall "
          f"(coverage of the data), k = 3: higher is better. (floor) = what real held-out "
          f"images score against the training images")
    print(format_table(result))
    if warning:
        print(f"warning: {warning}")
    if args.json is not None:
        print(f"wrote {args.json}")


def _info(args):
    from npgan.info import collect, format_info
    info = collect()
    print(json.dumps(info, indent=2) if args.json else "\n".join(format_info(info)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m npgan")
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("-n", type=int, default=64,
                   help=f"number of images. They are made {BLOCK:,} at a time and a .npy is "
                        f"written as they are made, so memory does not grow with n (one "
                        f"block: 3 MB); on disk a .npy takes {NPY_BYTES:,} bytes per image "
                        f"(n = 1,000,000: 3.1 GB), and n is refused up front when the disk "
                        f"(or ulimit -f) has no room for them. A .png grid shows at most "
                        f"{GRID_MAX:,}")
    s.add_argument("-o", "--output", required=True, help="FILE.npy or FILE.png")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    s.add_argument("--nrow", type=int, default=None, help="images per row in a PNG grid")
    s.add_argument("--raw", action="store_true", help="use G's last weights, not their EMA")
    s.add_argument("--label", type=int, default=None,
                   help="conditional GAN: the class to generate (default: every class, "
                        "one row each in a PNG)")
    s.set_defaults(run=_sample)
    e = commands.add_parser("evaluate", help="sample-quality metrics of a checkpoint's G")
    e.add_argument("checkpoint")
    e.add_argument("--n", type=int, default=10000,
                   help="number of generated samples, classified 1,000 at a time: memory "
                        "grows by about 1 kB a sample (its 128 features, float64, kept for "
                        "precision and recall) up to the data set's training size (60,000 "
                        "for MNIST: 61 MB), then stays flat, so any n fits; time grows "
                        "with n")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    e.add_argument("--raw", action="store_true", help="use G's last weights, not their EMA")
    e.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="--json: print the results as JSON instead of the table; "
                        "--json FILE: print the table and write the JSON to FILE")
    e.set_defaults(run=_evaluate)
    i = commands.add_parser("info", help="versions, threads, CuPy and its GPU, the data cache")
    i.add_argument("--json", action="store_true", help="the same as JSON")
    i.set_defaults(run=_info)
    args = parser.parse_args(argv)
    plain_warnings()
    try:
        args.run(args)
    except (CheckpointError, BackendError) as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:                   # Ctrl-C: a .npy in progress was removed
        print(f"interrupted: {args.command} stopped; nothing was written", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
