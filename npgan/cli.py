"""What npgan's command lines share (`python -m npgan`, the scripts in examples/).

The library itself never prints: it raises errors and issues warnings. A command line
shows an error as one line (`sys.exit(f"error: {err}")`) and, with plain_warnings(),
a warning as `warning: <message>` alone, without the file, line number and line of
npgan's source that Python's default format adds under it.
"""
from __future__ import annotations

import warnings


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
