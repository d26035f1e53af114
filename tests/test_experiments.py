"""The verdict rule of npgan.experiments on hand-made score tables, and the
comparison script end to end on a tiny budget."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from npgan import experiments as ex

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [0, 1, 2, 3, 4]


def rows(values, metric="frechet", **others):
    """Result rows for seeds 0..4 with `metric` = values and the other metrics fixed."""
    base = {"frechet": 50.0, "precision": 0.5, "recall": 0.1, "classes_covered": 10,
            "kl_uniform": 0.01, "seconds": 100.0}
    return [{**base, **others, "seed": s, metric: v} for s, v in zip(SEEDS, values)]


# ------------------------------------------------------------- late_mean
def test_late_mean_averages_the_last_fifth_of_the_steps():
    records = [{"step": s, "acc": float(s >= 90)} for s in range(10, 101, 10)]   # 10..100
    records.insert(3, {"step": 40, "frechet": 1.0})        # an evaluation record: skipped
    assert ex.late_mean(records, "acc") == 1.0               # steps 90, 100 (> 80)
    assert ex.late_mean(records, "acc", fraction=0.5) == pytest.approx(2 / 5)   # 60..100
    with pytest.raises(ValueError, match="no 'acc_real'"):
        ex.late_mean(records, "acc_real")


# ------------------------------------------------------------------ the sign test
def test_the_sign_test_is_the_binomial_tail():
    assert ex.sign_test(5, 0) == 1 / 32                     # 5 of 5: 3.1%
    assert ex.sign_test(4, 1) == 6 / 32 == 3 / 16           # the old rule's 4 of 5: 18.75%
    assert ex.sign_test(7, 1) == 9 / 256                    # 7 of 8: 3.5%
    assert ex.sign_test(0, 5) == 1.0 and ex.sign_test(0, 0) == 1.0
    assert ex.min_seeds() == 5 and ex.min_seeds(1 / 32) == 5 and ex.min_seeds(0.01) == 7
    assert ex.min_seeds(0.05 / 7) == 8                      # Bonferroni over 7 candidates


# ------------------------------------------------------------------ paired_verdict
BASE = {0: 50.0, 1: 40.0, 2: 60.0, 3: 55.0, 4: 45.0}


def test_better_needs_every_pair_of_five_and_a_real_gain():
    # wins every pair by 10%: better (lower Frechet)
    v = ex.paired_verdict(BASE, {s: x * 0.9 for s, x in BASE.items()}, higher_is_better=False)
    assert (v.result, v.wins, v.losses, v.pairs) == ("better", 5, 0, 5)
    assert v.p_value == 1 / 32 and v.effect == pytest.approx(0.1)
    # wins 4 of 5 pairs by a lot (p = 3/16): no clear difference
    cand = {0: 25.0, 1: 20.0, 2: 30.0, 3: 27.0, 4: 46.0}
    v = ex.paired_verdict(BASE, cand, higher_is_better=False)
    assert (v.result, v.wins, v.losses, v.p_value) == ("no clear difference", 4, 1, 3 / 16)
    # wins every pair by 1%: steady, but below the minimum effect of 5%
    v = ex.paired_verdict(BASE, {s: x * 0.99 for s, x in BASE.items()}, False)
    assert (v.result, v.wins) == ("no clear difference", 5)
    assert ex.paired_verdict(BASE, {s: x * 0.99 for s, x in BASE.items()}, False,
                             min_effect=0.0).result == "better"


def test_worse_is_the_mirror_image_and_ties_are_dropped():
    base = {s: 0.5 for s in SEEDS}
    v = ex.paired_verdict(base, {s: 0.4 for s in SEEDS}, higher_is_better=True)
    assert (v.result, v.losses, v.p_value, v.effect) == ("worse", 5, 1 / 32, pytest.approx(-0.2))
    v = ex.paired_verdict(base, dict(base), higher_is_better=True)
    assert (v.result, v.wins, v.losses, v.p_value) == ("no clear difference", 0, 0, 1.0)
    # 4 wins and a tie: 4 tosses, p = 1/16 > 5%
    v = ex.paired_verdict(base, {**{s: 0.6 for s in SEEDS}, 4: 0.5}, higher_is_better=True)
    assert (v.result, v.wins, v.losses, v.p_value) == ("no clear difference", 4, 0, 1 / 16)


def test_fewer_seeds_than_the_rule_needs_is_no_verdict():
    v = ex.paired_verdict({0: 50.0, 1: 40.0}, {0: 10.0, 1: 10.0}, higher_is_better=False)
    assert (v.result, v.wins, v.pairs) == ("too few seeds", 2, 2)
    four = {s: BASE[s] for s in range(4)}
    assert ex.paired_verdict(four, {s: 1.0 for s in range(4)}, False).result == "too few seeds"
    eight = {s: 50.0 + s for s in range(8)}
    v = ex.paired_verdict(eight, {s: 40.0 + s + 20 * (s == 7) for s in range(8)}, False)
    assert (v.result, v.wins, v.losses, v.p_value) == ("better", 7, 1, 9 / 256)


def test_only_shared_seeds_are_paired():
    v = ex.paired_verdict({**BASE, 7: 0.0}, {**{s: x - 10 for s, x in BASE.items()}, 9: 99.0},
                          False)
    assert v.pairs == 5 and v.result == "better"
    with pytest.raises(ValueError, match="share no seed"):
        ex.paired_verdict({0: 1.0}, {1: 1.0}, False)


# ----------------------------------------------------------------- the setting's verdict
def test_only_the_primary_metric_decides():
    frechet = [50, 40, 60, 55, 45]
    baseline = rows(frechet)
    sharper = rows(frechet, precision=0.7)           # same Frechet, better precision
    collapsed = rows([10] * 5, recall=0.03)          # better Frechet, worse recall
    verdicts = ex.compare_to_baseline(
        {"baseline": baseline, "sharper": sharper, "collapsed": collapsed}, "baseline")
    assert verdicts["sharper"]["overall"] == "no clear difference"
    assert verdicts["sharper"]["verdicts"]["precision"].result == "better"     # shown only
    assert verdicts["collapsed"]["overall"] == "better"
    assert verdicts["collapsed"]["verdicts"]["recall"].result == "worse"
    assert set(verdicts["collapsed"]["verdicts"]) == {"frechet", "precision", "recall"}
    with pytest.raises(ValueError, match="baseline 'nope' has no results"):
        ex.compare_to_baseline({"baseline": baseline}, "nope")


def test_too_few_seeds_and_the_bonferroni_correction():
    two = {"a": rows([50, 40])[:2], "b": rows([10, 10])[:2]}
    assert ex.compare_to_baseline(two, "a")["b"]["overall"] == (
        "undecided: too few seeds (the rule needs at least 5 paired seeds, has 2)")
    study = {"base": rows([50, 40, 60, 55, 45]), "x": rows([40, 30, 50, 45, 35]),
             "y": rows([50, 40, 60, 55, 45]), "z": rows([50, 40, 60, 55, 45])}
    assert ex.compare_to_baseline(study, "base")["x"]["overall"] == "better"
    fixed = ex.compare_to_baseline(study, "base", correction="bonferroni")
    assert fixed["x"]["alpha"] == pytest.approx(0.05 / 3)
    assert fixed["x"]["overall"] == ("undecided: too few seeds (the rule needs at least 6 "
                                     "paired seeds, has 5)")
    text = ex.format_comparison(study, "base", correction="bonferroni")
    assert "p <= 0.0167" in text and "with 6 seeds: all 6" in text and "at least 6 paired" in text
    assert "with 5 seeds: all 5" in ex.format_comparison(study, "base")
    with pytest.raises(ValueError, match="correction must be"):
        ex.compare_to_baseline(study, "base", correction="holm")


# ------------------------------------------- the rule under no difference, simulated
def frechet_draw(rng, seeds, scale=1.0):
    """Frechet distances of `seeds` runs of one setting: a median of 200 times `scale`,
    a seed effect shared by every setting run with that seed (data order, init), and
    noise of the run's own (15% each)."""
    return 200.0 * scale * np.exp(0.15 * seeds["effect"] + 0.15 * rng.standard_normal(
        len(seeds["effect"])))


def study(rng, n, scenario, scale=1.0):
    """One simulated study: (baseline rows, candidate rows), paired by seed."""
    seeds = {"effect": rng.standard_normal(n)}
    out = []
    for setting_scale in (1.0, scale):
        f = frechet_draw(rng, seeds, setting_scale)
        p = np.clip(0.75 + 0.03 * rng.standard_normal(n), 0, 1)
        r = np.clip(0.12 + 0.05 * rng.standard_normal(n), 0, 1)
        if scenario == "ties":              # coarse values: many pairs tie
            f, p, r = np.round(f / 20) * 20, np.round(p, 1), np.round(r, 1)
        elif scenario == "collapsed":       # epoch 1: precision 1.000, recall 0.000, 1 class
            p, r = np.ones(n), np.zeros(n)
        elif scenario == "identical":       # two names for the same runs
            if out:
                out.append(out[0])
                break
        out.append([{"seed": s, "frechet": float(f[s]), "precision": float(p[s]),
                     "recall": float(r[s]), "classes_covered": 10, "kl_uniform": 0.05}
                    for s in range(n)])
    return out


def old_rule(base, cand):
    """The rule this one replaced: better on a metric = a better median and at least
    ceil(0.8 n) pairs won; better overall = better on any of three and worse on none."""
    results = []
    for m, higher in {"frechet": False, "precision": True, "recall": True}.items():
        sign = 1.0 if higher else -1.0
        gains = [sign * (c[m] - b[m]) for b, c in zip(base, cand)]
        need = math.ceil(0.8 * len(gains) - 1e-9)
        med = sign * (np.median([c[m] for c in cand]) - np.median([b[m] for b in base]))
        wins, losses = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
        results.append("better" if med > 0 and wins >= need else
                       "worse" if med < 0 and losses >= need else "=")
    return "better" if "better" in results and "worse" not in results else "other"


def rates(n_studies, n_seeds, scenario, scale=1.0, seed=0):
    """How often the rule says better and worse in n_studies simulated studies, and how
    often the old rule said better."""
    rng = np.random.default_rng(seed)
    better = worse = old = 0
    for _ in range(n_studies):
        base, cand = study(rng, n_seeds, scenario, scale)
        overall = ex.compare_to_baseline({"b": base, "c": cand}, "b")["c"]["overall"]
        better += overall == "better"
        worse += overall == "worse"
        old += old_rule(base, cand) == "better"
    return better / n_studies, worse / n_studies, old / n_studies


@pytest.mark.parametrize("scenario", ["continuous", "ties", "collapsed", "identical"])
@pytest.mark.parametrize("n_seeds", [5, 8])
def test_with_no_real_difference_the_rule_says_better_at_most_5_percent(scenario, n_seeds):
    """Both settings' metrics from one distribution, per seed, paired: the rule is fooled
    into 'better' at most 5% of the time (and into 'worse' too), whatever the values look
    like: continuous, coarse (ties), collapsed (precision 1, recall 0), or identical."""
    better, worse, old = rates(1000, n_seeds, scenario)
    assert better <= 0.05 and worse <= 0.05, (better, worse)
    if scenario == "continuous":
        # the bound is near 1/32 (5 seeds) or 9/256 (8 seeds), not a rule that never speaks
        assert better > 0.01
        # control: the same simulation catches a rule that chance fools: the old one, which
        # said better 29-32% of the time with 5 seeds (issue 25), and still 8-9% with 8
        assert old > (0.2 if n_seeds == 5 else 0.06), old
    if scenario == "identical":
        assert better == worse == 0.0


def test_with_fewer_seeds_the_rule_never_decides():
    rng = np.random.default_rng(1)
    for n in range(1, 5):
        base, cand = study(rng, n, "continuous", scale=0.5)
        assert ex.compare_to_baseline({"b": base, "c": cand}, "b")["c"]["overall"].startswith(
            "undecided: too few seeds")


def test_a_real_difference_of_a_reasonable_size_is_found():
    """Control for power: a setting with a 30% lower Frechet distance (the default against
    the classic setting was 37% lower) is called better most of the time with 5 seeds,
    nearly always with 8, and never worse."""
    better5, worse5, _ = rates(1000, 5, "continuous", scale=0.7)
    better8, worse8, _ = rates(1000, 8, "continuous", scale=0.7)
    assert better5 > 0.7 and better8 > 0.9 and worse5 == worse8 == 0.0, (better5, better8)


# -------------------------------------------------------------------------- the table
def test_median_seed_and_the_table():
    table = {"baseline": rows([50, 40, 60, 55, 45]), "better": rows([30, 31, 20, 25, 44])}
    assert ex.median_seed(table["baseline"]) == 0             # 40 45 [50] 55 60
    assert ex.median_seed(table["better"]) == 0               # 20 25 [30] 31 44
    text = ex.format_comparison(table, "baseline", "title")
    assert text.startswith("title")
    line = next(x for x in text.splitlines() if x.startswith("| better"))
    assert "30.0 [20.0, 44.0]" in line and "**better** (Frechet 5:0, p = 0.031" in line
    assert "precision 0:0, recall 0:0" in line
    assert "| baseline | 5 | 50.0 [40.0, 60.0]" in text
    assert "decided by the Frechet distance alone" in text and "at least 5 paired seeds" in text


# ------------------------------------------------------------- the script, tiny
@pytest.mark.slow                  # a subprocess that trains and evaluates: pytest -m slow
def test_compare_settings_script_end_to_end(tmp_path):
    """Two settings that share their runs (raw G and its EMA), 2 seeds, 3 steps each:
    the script trains 2 runs, evaluates, writes the table and the grids; run again, it
    reuses every cached run and evaluation."""
    out = tmp_path / "cmp"
    cmd = [sys.executable, str(ROOT / "examples" / "compare_settings.py"), "--study", "defaults",
           "--only", "classic", "EMA of G", "--epochs", "1", "--max-steps", "3",
           "--seeds", "0", "1", "--n", "200", "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "label_smoothing=0.0-seed0", "label_smoothing=0.0-seed1"]
    table = (out / "results.md").read_text()
    assert "| classic | 2 |" in table and "| EMA of G | 2 |" in table and "verdict" in table
    # two seeds: the rule refuses to call anything (issue 25's 1-epoch, 2-seed study called
    # three settings better while every one had precision 1.000 and recall 0.000)
    assert "undecided: too few seeds (the rule needs at least 5 paired seeds, has 2)" in table
    assert (out / "grids" / "median_seeds.png").is_file()
    assert (out / "grids" / "EMA_of_G_seeds.png").is_file()
    assert "| classic | " in table.split("D right on fakes")[1]      # D's accuracy table
    assert (out / "figures" / "d_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["setting"], r["seed"], r["G"]) for r in results} == {
        ("classic", 0, "raw"), ("classic", 1, "raw"), ("EMA of G", 0, "ema"), ("EMA of G", 1, "ema")}
    assert all(r["g_updates"] == 3 and 0.0 <= r["recall"] <= 1.0 for r in results)
    again = subprocess.run(cmd + ["--report-only"], capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("seed") >= 4 and (out / "results.md").read_text() == table


def test_a_stop_between_trainings_is_one_line_the_signal_code_and_the_same_command(
        monkeypatch, capsys):
    """Ctrl-C or SIGTERM while compare_settings scores a run (outside train()): the
    line says so and prints the command typed, quoted for the shell; the exit code is
    128 + the signal; the SIGTERM handler the script set is put back. (A stop during a
    training: tests/test_faults.py, a real process.)"""
    import signal
    from tests.test_cures_wiring import load_example
    script = load_example("compare_settings")
    argv = ["--study", "defaults", "--only", "EMA of G", "--seeds", "0"]
    before = signal.getsignal(signal.SIGTERM)

    def stopped(args):
        assert signal.getsignal(signal.SIGTERM) is script.stop_on_sigterm
        script.stop_on_sigterm(signal.SIGTERM, None)          # as the signal would

    monkeypatch.setattr(script, "run_study", stopped)
    with pytest.raises(SystemExit) as info:
        script.main(argv)
    assert info.value.code == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert "interrupted (SIGTERM) outside a training; nothing half-written was kept; every " \
           "finished run and score is kept" in out
    assert out.rstrip().endswith("compare_settings.py --study defaults --only 'EMA of G' "
                                 "--seeds 0"), out
    assert signal.getsignal(signal.SIGTERM) is before

    def ctrl_c(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(script, "run_study", ctrl_c)
    with pytest.raises(SystemExit) as info:
        script.main(argv)
    assert info.value.code == 130 and "interrupted (Ctrl-C) outside a training" in \
        capsys.readouterr().out
