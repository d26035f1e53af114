"""What npgan's command lines share (`python -m npgan`, the scripts in examples/).

The library itself never prints: it raises errors and issues warnings. A command line
shows an error as one line (`sys.exit(f"error: {err}")`) and, with plain_warnings(),
a warning as `warning: <message>` alone, without the file, line number and line of
npgan's source that Python's default format adds under it. A ConfigError names the
flags the user typed (config_error_text), and a hint to run a command again names the
interpreter that is running (command).
"""
from __future__ import annotations

import os
import re
import shlex
import sys
import warnings
from pathlib import Path


def plain_warnings():
    """Show UserWarnings (npgan's) as 'warning: <message>'; other categories (NumPy's
    RuntimeWarnings, say) keep Python's format, with the place they come from."""
    default = warnings.formatwarning
    if getattr(default, "npgan_plain", False):
        return

    def formatwarning(message, category, filename, lineno, line=None):
        if issubclass(category, UserWarning):
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    formatwarning.npgan_plain = True
    warnings.formatwarning = formatwarning


def shown_path(path) -> str:
    """`path` as a command should show it: relative to the current folder when it lies
    under it (with ./ when that has no slash, so a shell does not search PATH), else
    absolute."""
    path = Path(path).absolute()
    try:
        relative = str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
    return relative if os.sep in relative else f".{os.sep}{relative}"


def command(script, *args) -> str:
    """The shell line that runs `script` with `args` on the interpreter running now
    (sys.executable: the venv's python, say, which PATH may not find as `python`)."""
    words = [shown_path(sys.executable), shown_path(script), *map(str, args)]
    return " ".join(shlex.quote(w) for w in words)


def flags_of(parser) -> dict:
    """{dest: '--flag'} of an argparse parser: how its user typed each setting."""
    return {a.dest: max(a.option_strings, key=len) for a in parser._actions
            if any(o.startswith("--") for o in a.option_strings)}


def config_error_text(err, flags) -> str:
    """A ConfigError (npgan.config) in the words of a command line: each problem's
    settings named by the flags (`flags_of`) that set them. One problem: one line."""
    lines = []
    for fields, message in err.problems:
        for field in fields:
            if field in flags:          # a whole name, not part of a path, word or quote
                message = re.sub(rf"(?<![\w./'\"-]){re.escape(field)}(?![\w/'\"-])",
                                 flags[field], message)
        lines.append(message)
    return lines[0] if len(lines) == 1 else "invalid settings:\n  " + "\n  ".join(lines)
