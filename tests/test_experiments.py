"""The verdict rule of npgan.experiments on hand-made score tables, and the
comparison script end to end on a tiny budget."""
import json
import subprocess
import sys
from pathlib import Path

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


# ------------------------------------------------------------------ paired_verdict
def test_min_wins_is_four_of_five():
    assert [ex.min_wins(n) for n in (1, 2, 3, 4, 5, 10)] == [1, 2, 3, 4, 4, 8]


def test_better_needs_the_median_and_four_of_five_pairs():
    base = {0: 50.0, 1: 40.0, 2: 60.0, 3: 55.0, 4: 45.0}
    # wins every pair: better (lower Frechet)
    v = ex.paired_verdict(base, {s: x - 5 for s, x in base.items()}, higher_is_better=False)
    assert (v.result, v.wins, v.losses, v.pairs) == ("better", 5, 0, 5)
    # wins 4 of 5 pairs and the median: still better
    cand = {0: 45.0, 1: 35.0, 2: 55.0, 3: 50.0, 4: 46.0}
    assert ex.paired_verdict(base, cand, higher_is_better=False).result == "better"
    # wins 3 of 5 pairs, with a better median: no clear difference
    cand = {0: 45.0, 1: 35.0, 2: 55.0, 3: 56.0, 4: 46.0}
    v = ex.paired_verdict(base, cand, higher_is_better=False)
    assert (v.result, v.wins, v.losses) == ("no clear difference", 3, 2)
    assert v.median_candidate < v.median_baseline


def test_four_pair_wins_with_a_worse_median_is_not_better():
    """Small wins on four seeds and one collapse: the pairs say yes, the median no...
    unless the median says yes too. Here the wins are tiny and the median is worse."""
    base = {0: 10.0, 1: 20.0, 2: 30.0, 3: 40.0, 4: 50.0}
    cand = {0: 9.9, 1: 19.9, 2: 100.0, 3: 39.9, 4: 49.9}       # median 39.9 > 30
    v = ex.paired_verdict(base, cand, higher_is_better=False)
    assert v.wins == 4 and v.median_candidate > v.median_baseline
    assert v.result == "no clear difference"


def test_worse_is_the_mirror_image_and_ties_count_for_neither():
    base = {s: 0.5 for s in SEEDS}
    v = ex.paired_verdict(base, {s: 0.4 for s in SEEDS}, higher_is_better=True)
    assert (v.result, v.losses) == ("worse", 5)
    v = ex.paired_verdict(base, dict(base), higher_is_better=True)
    assert (v.result, v.wins, v.losses) == ("no clear difference", 0, 0)


def test_only_shared_seeds_are_paired():
    v = ex.paired_verdict({0: 1.0, 1: 2.0, 7: 0.0}, {0: 0.5, 1: 1.5, 9: 99.0}, False)
    assert v.pairs == 2 and v.result == "better"
    with pytest.raises(ValueError, match="share no seed"):
        ex.paired_verdict({0: 1.0}, {1: 1.0}, False)


# ----------------------------------------------------------------- overall verdict
def test_overall_verdict_combines_the_three_metrics():
    frechet = [50, 40, 60, 55, 45]
    baseline = rows(frechet)
    sharper = rows(frechet, precision=0.7)           # same Frechet, better precision
    collapsed = rows([10] * 5, recall=0.03)          # better Frechet, worse recall
    verdicts = ex.compare_to_baseline(
        {"baseline": baseline, "sharper": sharper, "collapsed": collapsed}, "baseline")
    assert verdicts["sharper"]["overall"] == "better"
    assert verdicts["sharper"]["verdicts"]["frechet"].result == "no clear difference"
    assert verdicts["sharper"]["verdicts"]["precision"].result == "better"
    assert verdicts["collapsed"]["overall"] == "mixed"
    assert verdicts["collapsed"]["verdicts"]["recall"].result == "worse"
    assert verdicts["collapsed"]["verdicts"]["frechet"].result == "better"
    assert ex.overall_verdict({}) == "no clear difference"
    with pytest.raises(ValueError, match="baseline 'nope' has no results"):
        ex.compare_to_baseline({"baseline": baseline}, "nope")


def test_median_seed_and_the_table():
    table = {"baseline": rows([50, 40, 60, 55, 45]), "better": rows([30, 31, 20, 25, 80])}
    assert ex.median_seed(table["baseline"]) == 0             # 40 45 [50] 55 60
    assert ex.median_seed(table["better"]) == 0               # 20 25 [30] 31 80
    text = ex.format_comparison(table, "baseline", "title")
    assert text.startswith("title")
    line = next(x for x in text.splitlines() if x.startswith("| better"))
    assert "30.0 [20.0, 80.0]" in line and "**better**" in line and "Frechet better 4:1" in line
    assert "| baseline | 5 | 50.0 [40.0, 60.0]" in text
    assert "at least 4 of 5 seed pairs" in text


# ------------------------------------------------------------- the script, tiny
@pytest.mark.slow
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
