"""npgan.plots beyond what the examples' end-to-end tests draw: the running mean and the
per-setting accuracy figure, on hand-made records."""
import numpy as np
import pytest

from npgan.plots import plot_d_accuracy, running_mean


def test_running_mean_of_a_window():
    assert running_mean([1.0, 2.0, 3.0, 4.0], 2) == pytest.approx([1.5, 2.5, 3.5])
    assert running_mean([1.0, 2.0, 3.0, 4.0], 4) == pytest.approx([2.5])
    assert running_mean([1.0, 2.0], 3) == [1.0, 2.0]          # too short: as it was


def records(n, real, fake):
    return [{"step": 50 * (i + 1), "loss_d": 1.0, "acc_real": real, "acc_fake": fake}
            for i in range(n)]


def test_plot_d_accuracy_draws_a_panel_per_setting(tmp_path):
    runs = {f"setting {k}": {0: records(30, 0.6, 0.8), 1: records(5, 0.7, 0.9)}
            for k in range(5)}
    path = plot_d_accuracy(runs, tmp_path / "acc.png", window=10, columns=4)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_d_accuracy_refuses_a_critic_run(tmp_path):
    critic = [{"step": 50, "loss_d": -1.0, "wasserstein": 0.3}]
    with pytest.raises(ValueError, match="wgan, seed 2: no acc_real"):
        plot_d_accuracy({"wgan": {2: critic}}, tmp_path / "acc.png")


def test_the_curves_say_what_their_axes_show():
    from npgan.plots import curves_figure
    gan = [{"step": 50 * i, "loss_d": 1.0, "loss_g": 0.8, "d_real": 0.6, "d_fake": 0.4,
            "acc_real": 0.7, "acc_fake": 0.6} for i in range(1, 4)]
    critic = [{"step": 50 * i, "loss_d": -1.0, "loss_g": 0.1, "wasserstein": 0.3, "grad_norm": 1.1}
              for i in range(1, 4)]
    for records in (gan, critic):
        fig = curves_figure(records, title="runs/x: step 150")
        assert fig._suptitle.get_text() == "runs/x: step 150"
        assert all(ax.get_ylabel() for ax in fig.axes), [ax.get_ylabel() for ax in fig.axes]
        assert [ax.get_xlabel() for ax in fig.axes[:2]] == ["step", "step"]
        assert all(ax.get_title() for ax in fig.axes[:2])
    assert curves_figure(gan).axes[0].get_ylabel().startswith("loss")
    assert curves_figure(gan)._suptitle is None                         # no title asked


def test_a_titled_grid_carries_its_title_above_the_images(tmp_path):
    from PIL import Image

    from npgan.plots import TITLE_HEIGHT, save_grid
    images = -np.ones((4, 784), dtype=np.float32)                       # black digits
    plain = np.asarray(Image.open(save_grid(images, tmp_path / "a.png", nrow=2)))
    titled = np.asarray(Image.open(save_grid(images, tmp_path / "b.png", nrow=2,
                                             title="epoch 3, step 210")))
    assert titled.shape == (plain.shape[0] + TITLE_HEIGHT, plain.shape[1])
    assert np.array_equal(titled[TITLE_HEIGHT:], plain)                  # the grid, unchanged
    assert titled[:TITLE_HEIGHT].max() == 255 and plain.max() == 0      # white text on black


def test_the_toy_heat_map_has_a_labelled_colour_bar():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "toy_2d.py"
    spec = importlib.util.spec_from_file_location("toy_2d", path)
    toy_2d = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy_2d)
    fig, ax, cax = toy_2d.new_figure()
    snap = {"step": 100, "covered": 3, "modes": 8, "hq_share": 0.5,
            "fake": np.zeros((5, 2)), "surface": np.full((4, 4), 0.25)}
    toy_2d.draw(ax, cax, np.ones((5, 2)), snap)
    assert cax.get_ylabel().startswith("sigmoid(D(x))")
    assert cax.get_ylim() == (0.0, 1.0)
    assert "50% of samples within 3 std of a mode" in ax.get_title()
    toy_2d.draw(ax, cax, np.ones((5, 2)), {**snap, "surface": np.linspace(-3, 5, 16).reshape(4, 4)},
                critic=True)
    assert cax.get_ylabel().startswith("critic score D(x)")
    assert cax.get_ylim()[1] > 1.0


def test_a_long_runs_gif_keeps_the_early_epochs_then_evenly_spaced_ones_and_the_last():
    from npgan.plots import gif_frames
    assert gif_frames(range(10)) == list(range(10))              # short runs: every grid
    frames = gif_frames(range(200))
    assert len(frames) == 40 and frames[:3] == [0, 1, 2] and frames[-1] == 199
    assert frames == sorted(set(frames))
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    assert gaps[:3] == [1, 1, 1] and max(gaps[10:]) <= 2 * min(gaps[10:])   # dense early, even late
