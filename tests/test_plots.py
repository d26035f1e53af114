"""npgan.plots beyond what the examples' end-to-end tests draw: the running mean and the
per-setting accuracy figure, on hand-made records."""
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
