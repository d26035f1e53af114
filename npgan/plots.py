"""Pictures of training: sample grids, their animation, and the loss curves.

Headless by construction: we draw on matplotlib's Agg canvas directly (no pyplot,
no global backend switch), and write GIFs with Pillow, which matplotlib depends on.
A picture is made in memory and written atomically (npgan.files): a full disk leaves
the previous picture, or none, never half of one.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from npgan.backend import host as np
from npgan.backend import to_numpy
from npgan.files import write_atomically


def image_grid(images, nrow=None, side=28, pad=2):
    """(N, side*side) images in [-1, 1] -> one (H, W) uint8 grid, `nrow` images a row.
    images may live on any backend: a device array is copied to the host (a sync)."""
    images = np.asarray(to_numpy(images), dtype=np.float32).reshape(-1, side, side)
    n = images.shape[0]
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = np.zeros((ncol * (side + pad) + pad, nrow * (side + pad) + pad), dtype=np.uint8)
    pixels = ((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).round().astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        grid[top:top + side, left:left + side] = pixels[i]
    return grid


def save_grid(images, path, nrow=None, scale=2, title=None):
    """Write image_grid(images) as a grayscale PNG, each pixel `scale` x `scale`;
    title: a line of text above the grid (e.g. "epoch 12, step 840")."""
    from PIL import Image

    grid = image_grid(images, nrow)
    img = Image.fromarray(grid, mode="L")
    if scale > 1:
        img = img.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    if title:
        img = _titled(img, title)
    png = io.BytesIO()
    img.save(png, format="PNG")
    return write_atomically(path, png.getvalue())        # the whole PNG, or none


TITLE_HEIGHT = 22      # pixels of the black strip above a titled grid


def _titled(img, title, height=TITLE_HEIGHT):
    """A grayscale image with a black strip of `height` pixels on top, `title` in white."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=height - 6)     # Pillow >= 10.1, with FreeType
    except (TypeError, OSError, ImportError):
        font = ImageFont.load_default()                    # a small bitmap font
    out = Image.new("L", (img.width, img.height + height), 0)
    out.paste(img, (0, height))
    ImageDraw.Draw(out).text((6, height // 2), title, fill=255, font=font, anchor="lm")
    return out


def gif_frames(paths, most=40):
    """At most `most` of `paths` (one grid per epoch), early ones first: a GAN changes
    fastest at the start, so we keep epochs 1, 2, 3, 5, 8, ... (about 1.5x apart) up to
    a quarter of the frames, then evenly spaced ones, and always the last."""
    paths = list(paths)
    if len(paths) <= most:
        return paths
    early, i = [], 1
    while i <= len(paths) and len(early) < most // 4:
        early.append(i - 1)
        i = max(i + 1, int(i * 1.5))
    rest = most - len(early)
    step = (len(paths) - 1 - early[-1]) / rest
    spaced = [round(early[-1] + step * (k + 1)) for k in range(rest)]
    return [paths[j] for j in sorted(set(early + spaced))]


def save_gif(png_paths, path, ms_per_frame=300):
    """Animate PNG files (e.g. one grid per epoch) into a looping GIF; a long run's
    grids are thinned to at most 40 frames (gif_frames), so the file stays small."""
    from PIL import Image

    frames = [Image.open(p).convert("L") for p in gif_frames(png_paths)]
    if not frames:
        return None
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:],
                   duration=ms_per_frame, loop=0)
    return write_atomically(path, gif.getvalue())


def plot_curves(records, path, title=None):
    """Loss curves and D's outputs/accuracy over steps, from metrics.jsonl records.
    For a critic (WGAN, WGAN-GP, hinge) the right panel shows its Wasserstein estimate
    mean D(x) - mean D(G(z)) and, under WGAN-GP, the mean ||grad D(x_hat)|| instead.
    title: above both panels (train() gives the run's folder and its last step)."""
    fig = curves_figure(records, title)
    picture = io.BytesIO()
    fig.savefig(picture, format=Path(path).suffix.lstrip(".") or "png")
    return write_atomically(path, picture.getvalue())


def curves_figure(records, title=None):
    """The matplotlib Figure that plot_curves writes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = [r for r in records if "loss_d" in r]
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.plot(steps, [r["loss_d"] for r in records], label="D loss")
    left.plot(steps, [r["loss_g"] for r in records], label="G loss")
    left.set_xlabel("step")
    left.set_ylabel("loss (mean over the logged steps)")
    left.set_title("losses")
    left.legend()
    if records and "wasserstein" in records[0]:
        _critic_panel(right, steps, records)
    else:
        for key, label in [("d_real", "D(x)"), ("d_fake", "D(G(z))"),
                           ("acc_real", "D accuracy, real"), ("acc_fake", "D accuracy, fake")]:
            right.plot(steps, [r[key] for r in records], label=label)
        right.set_ylim(-0.02, 1.02)
        right.set_xlabel("step")
        right.set_ylabel("D's output (probability) and accuracy")
        right.set_title("discriminator: D(x) on real images, D(G(z)) on fakes")
        right.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _critic_panel(ax, steps, records):
    """The critic's Wasserstein estimate (left axis) and, if logged, the mean gradient
    norm at the interpolates (right axis, where the penalty pulls it: 1)."""
    ax.plot(steps, [r["wasserstein"] for r in records], color="C2",
            label="W estimate: mean D(x) - mean D(G(z))")
    ax.set_xlabel("step")
    ax.set_ylabel("Wasserstein estimate")
    ax.set_title("critic (no D accuracy: a critic outputs a score, not a probability)",
                 fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    if "grad_norm" in records[0]:
        twin = ax.twinx()
        twin.plot(steps, [r["grad_norm"] for r in records], color="C3", linewidth=1,
                  label="mean ||grad D(x_hat)||")
        twin.axhline(1.0, color="C3", linestyle=":", linewidth=1)
        twin.set_ylabel("gradient norm at the interpolates")
        more_h, more_l = twin.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    ax.legend(handles, labels, fontsize=8)


def plot_grad_norms(records, path, weights_only=True):
    """Each layer's gradient norm ||dL/dW|| over steps, G on the left and D on the right.

    records: metrics.jsonl records of a run with log_grad_norms=True, whose keys look
    like "grad_norm/G.0.W" (model G, layer 0, its weight W). The G panel shows the
    gradient that crossed D: G's last layer is nearest to D, its first layer farthest.
    A log scale, because norms of different layers differ by orders of magnitude.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = [r for r in records if any(k.startswith("grad_norm/") for k in r)]
    if not records:
        raise ValueError("no gradient norms in these records: train with log_grad_norms=True "
                         "(--log-grad-norms) to record them")
    keys = [k for k in records[0] if k.startswith("grad_norm/")]
    if weights_only:
        keys = [k for k in keys if k.endswith(".W")]
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    for panel, model in enumerate(("G", "D")):
        ax = fig.add_subplot(1, 2, panel + 1)
        model_keys = [k for k in keys if k.split("/", 1)[1].startswith(model + ".")]
        for i, key in enumerate(model_keys):
            name = key.split("/", 1)[1]                              # e.g. "G.0.W"
            where = " (input side)" if i == 0 else " (output side)" if i == len(model_keys) - 1 else ""
            ax.plot(steps, [r[key] for r in records], label=name + where, linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title({"G": "G: gradients that came back through D",
                      "D": "D: gradients of D's loss"}[model], fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_d_at_half(records, path):
    """The notes' sign and warning, measured: D's accuracy and the gradient G receives.

    records: metrics.jsonl records with acc_real, acc_fake (D's accuracy on each batch,
    before its update) and dx_fake_norm (the batch mean of ||d loss_i / d x_fake_i||,
    the gradient that reaches G's output; see npgan.gan.g_step). Top: the two
    accuracies against the 50% that D* = 1/2 would give; bottom: the gradient's norm.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = [r for r in records if "dx_fake_norm" in r]
    if not records:
        raise ValueError("no dx_fake_norm in these records: they come from a run made "
                         "before g_step reported it; train again to record it")
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    top.plot(steps, [r["acc_real"] for r in records], lw=1, label="D's accuracy on real images")
    top.plot(steps, [r["acc_fake"] for r in records], lw=1, label="D's accuracy on fakes")
    top.axhline(0.5, color="k", ls=":", lw=1, label="50%: D = 1/2, a coin toss")
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel("accuracy")
    top.legend(fontsize=7, loc="lower right")
    bottom.plot(steps, [r["dx_fake_norm"] for r in records], color="C3", lw=1)
    bottom.set_ylabel("mean ||dL/dx_fake||")
    bottom.set_xlabel("step")
    bottom.set_title("the gradient that reaches G's output (per sample, batch mean)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def running_mean(values, window):
    """The mean of each `window` consecutive values (a list of len(values) - window + 1;
    the values themselves when there are fewer than `window`)."""
    if len(values) < window:
        return list(values)
    sums = np.cumsum(np.asarray(values, dtype=np.float64))
    sums = np.concatenate([[0.0], sums])
    return list((sums[window:] - sums[:-window]) / window)


def plot_d_accuracy(runs, path, window=10, columns=4):
    """D's accuracy over training, one panel per setting, one color per seed.

    runs: {setting name: {seed: metrics.jsonl step records with acc_real, acc_fake}}.
    Solid: D's accuracy on real images, dashed: on fakes (each batch before D's update),
    each a running mean over `window` records; dotted: the 50% of D* = 1/2 (the notes'
    sign of balance). Critics log no accuracy: give only settings of loss 'gan'.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = math.ceil(len(runs) / columns)
    fig = Figure(figsize=(3.2 * min(columns, len(runs)), 2.6 * rows), dpi=100)
    FigureCanvasAgg(fig)
    for i, (name, by_seed) in enumerate(runs.items()):
        ax = fig.add_subplot(rows, min(columns, len(runs)), i + 1)
        for j, (seed, records) in enumerate(sorted(by_seed.items())):
            records = [r for r in records if "acc_real" in r]
            if not records:
                raise ValueError(f"{name}, seed {seed}: no acc_real in its records (a critic "
                                 f"logs no accuracy)")
            steps = [r["step"] for r in records][window - 1:] or [r["step"] for r in records]
            ax.plot(steps, running_mean([r["acc_real"] for r in records], window),
                    color=f"C{j}", lw=0.8, label=f"seed {seed}")
            ax.plot(steps, running_mean([r["acc_fake"] for r in records], window),
                    color=f"C{j}", lw=0.8, ls="--")
        ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set_ylim(0.3, 1.02)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
        if i % columns == 0:
            ax.set_ylabel("D's accuracy", fontsize=8)
        if i == 0:
            ax.legend(fontsize=6, loc="lower right", title="solid: real, dashed: fake",
                      title_fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
