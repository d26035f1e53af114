"""tools/publish.py, the one command that overwrites committed figures and tables: every
command it lists names a script and flags that exist, a failed run overwrites nothing,
and a good one copies exactly the files it lists, saying so."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_publish():
    spec = importlib.util.spec_from_file_location("publish", ROOT / "tools" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_listed_command_names_a_real_script_flags_and_a_committed_target():
    publish = load_publish()
    for name, (script, files, _) in publish.ARTIFACTS.items():
        path, *args = script.split()
        source = (ROOT / path).read_text(encoding="utf-8")
        for flag in (a for a in args if a.startswith("--")):
            assert f'"{flag}"' in source, f"{name}: {path} has no flag {flag}"
        for target in files.values():
            assert (ROOT / target).is_file(), f"{name}: {target} is not a committed file"


def test_a_failed_run_overwrites_nothing_and_a_good_one_copies_what_it_lists(tmp_path, monkeypatch,
                                                                              capsys):
    publish = load_publish()
    (tmp_path / "docs").mkdir()
    target = tmp_path / "docs" / "figure.png"
    target.write_text("old")
    (tmp_path / "make.py").write_text(
        "import sys, pathlib\nout = pathlib.Path(sys.argv[1]); out.mkdir(parents=True)\n"
        "(out / 'made.png').write_text('new')\nsys.exit(int(sys.argv[2]))\n")
    monkeypatch.setattr(publish, "ROOT", tmp_path)
    monkeypatch.setattr(publish, "ARTIFACTS", {
        "bad": ("make.py {out} 1", {"made.png": "docs/figure.png"}, "1 s"),
        "good": ("make.py {out} 0", {"made.png": "docs/figure.png"}, "1 s")})
    with pytest.raises(SystemExit, match=r"\[bad\] failed .*nothing was overwritten"):
        publish.main(["bad"])
    assert target.read_text() == "old"
    publish.main(["good"])
    assert target.read_text() == "new"
    assert re.search(r"overwrote docs/figure.png with runs/publish/good/made.png", capsys.readouterr().out)
    with pytest.raises(SystemExit, match="unknown artifact"):
        publish.main(["no-such"])
