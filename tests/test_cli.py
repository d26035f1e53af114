"""npgan.cli.plain_warnings: npgan's warnings as their message alone, others untouched."""
import warnings

from npgan.cli import plain_warnings


def test_plain_warnings_formats_user_warnings_only(monkeypatch):
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)   # restored after
    before = warnings.formatwarning("x", RuntimeWarning, "f.py", 3, "source line")
    plain_warnings()
    plain_warnings()                                          # twice is once
    fmt = warnings.formatwarning
    assert fmt("falling back", UserWarning, "npgan/data.py", 9, "warnings.warn(...)") == \
        "warning: falling back\n"
    assert fmt("x", RuntimeWarning, "f.py", 3, "source line") == before   # NumPy's keep theirs
    assert "source line" in before and "f.py:3" in before                 # control


def test_a_printed_command_names_the_running_interpreter_as_a_shell_finds_it(monkeypatch, tmp_path):
    import sys

    from npgan.cli import command, shown_path
    venv = tmp_path / "repo" / ".venv" / "bin"
    venv.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    monkeypatch.chdir(tmp_path / "repo")                     # inside the folder: relative
    assert command(tmp_path / "repo" / "examples" / "train_mnist.py", "--out", "runs/my run",
                   "--resume") == ".venv/bin/python examples/train_mnist.py --out 'runs/my run' --resume"
    monkeypatch.chdir(venv)                                  # no slash left: ./python, not PATH's
    assert shown_path(sys.executable) == "./python"
    monkeypatch.chdir(tmp_path)                              # outside: absolute
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert command(tmp_path / "repo" / "x.py").split() == [str(venv / "python"),
                                                           str(tmp_path / "repo" / "x.py")]


def test_a_config_error_is_shown_with_the_flags_typed():
    import argparse

    from npgan.cli import config_error_text, flags_of
    from npgan.config import ConfigError, TrainConfig
    parser = argparse.ArgumentParser()
    for flag in ("--batch-size", "--lr", "--lr-d", "--dataset", "--data-dir", "--out",
                 "--label-smoothing", "--loss"):
        parser.add_argument(flag)
    flags = flags_of(parser)
    assert flags["batch_size"] == "--batch-size" and flags["lr_d"] == "--lr-d"
    try:
        TrainConfig(batch_size=0, lr_d=0.0, loss="hinge", label_smoothing=0.1,
                    out="runs/lr_d").validate()
    except ConfigError as err:
        text = config_error_text(err, flags)
    assert text.splitlines() == [
        "invalid settings:",
        "  --batch-size must be a positive integer, got 0",
        "  --lr-d must be > 0 (or None: the same as lr), got 0.0",
        "  --label-smoothing=0.1 is a target of the GAN's BCE loss, and the hinge critic has no "
        "targets: use --label-smoothing=0 (TrainConfig.for_loss('hinge') sets the paper's settings)"]
    # a name inside a path or a quoted value stays as it is; one problem is one line
    err = ConfigError("out runs/out/lr_d 'out' is a file", [(("out", "lr_d"), "out runs/out/lr_d "
                                                                          "'out' is a file")])
    assert config_error_text(err, flags) == "--out runs/out/lr_d 'out' is a file"
    assert config_error_text(ConfigError("no field here"), flags) == "no field here"
