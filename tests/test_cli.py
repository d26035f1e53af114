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
