"""A line a program printed for its user, typed into a shell as the user would type it:
bash, in the repository, with no virtual environment active (its bin/ not on PATH, no
VIRTUAL_ENV) and no PYTHONPATH. The interpreter the line names must find npgan itself."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def plain_environment() -> dict:
    """os.environ without the venv: PATH minus the folders inside sys.prefix (when this
    interpreter is a venv's), and no VIRTUAL_ENV, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if sys.prefix != sys.base_prefix:
        venv = Path(sys.prefix).resolve()
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if p and not Path(p).resolve().is_relative_to(venv))
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def require_installed_npgan():
    """Skip, saying why, when this interpreter finds npgan only through PYTHONPATH (then
    no printed line can work without it)."""
    found = subprocess.run([sys.executable, "-c", "import npgan"], cwd="/",
                           env=plain_environment(), capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"npgan is not installed in {sys.executable} (pip install -e .): a "
                    f"printed command cannot find it without PYTHONPATH")


def typed_in_a_shell(line, cwd=ROOT, **popen):
    """Run `line` with bash -c in a plain environment; subprocess.run's result."""
    return subprocess.run([shutil.which("bash"), "-c", line], cwd=cwd, env=plain_environment(),
                          capture_output=True, text=True, timeout=300, **popen)


def python_as_shown():
    """This interpreter as a line printed in ROOT names it: relative when inside ROOT."""
    exe = Path(sys.executable).absolute()
    return str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else str(exe)


def printed_hint(stdout, prefix="resume with: "):
    """The one line of `stdout` after `prefix`."""
    lines = [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, stdout
    return lines[0]
