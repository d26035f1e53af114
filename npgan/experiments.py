"""Comparing GAN settings over seeds, and deciding like a careful experimenter.

GAN results swing between seeds: the same setting can span 2x in Frechet distance.
So one run per setting proves nothing, and neither does a better mean. We train every
setting with the same seeds, pair the runs by seed, and call a setting better than the
baseline on a metric only when

    it wins on the median over seeds,  AND  it wins at least 4 of 5 seed-paired comparisons

(in general at least ceil(0.8 n) of n pairs; a tie is no win). "Worse" is the mirror
image. Anything else is "no clear difference": the honest verdict when the spread
between seeds is larger than the effect.

Three metrics decide (npgan.metrics): the Frechet distance (lower is better), precision
(realism) and recall (coverage), higher is better. Frechet mixes realism and coverage in
one number, so a setting is "better" overall when it is better on at least one of the
three and worse on none; "worse" in the mirror case; "mixed" when it is better on one
and worse on another.

    >>> paired_verdict({0: 30.0, 1: 25.0}, {0: 20.0, 1: 21.0}, higher_is_better=False).result
    'better'
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# metric -> True when higher is better; these three decide the overall verdict
DECIDING = {"frechet": False, "precision": True, "recall": True}
# what the tables report (median [min, max] over seeds), in order. Not the wall time:
# on a shared machine it measures the load, and a resumed run times only its last part.
REPORTED = ("frechet", "precision", "recall", "classes_covered", "kl_uniform")
WIN_SHARE = 0.8      # 4 of 5 seed pairs


@dataclass
class Verdict:
    """One metric's comparison of a candidate setting with the baseline."""
    result: str            # "better" | "worse" | "no clear difference"
    wins: int              # seed pairs where the candidate is better
    losses: int            # seed pairs where it is worse
    pairs: int             # seeds both settings have
    median_baseline: float
    median_candidate: float

    def __str__(self):
        return f"{self.result} ({self.wins}/{self.pairs} pairs won, {self.losses} lost)"


def min_wins(pairs: int) -> int:
    """Pairs a setting must win to count as better: ceil(0.8 n), 4 of 5."""
    return math.ceil(WIN_SHARE * pairs - 1e-9)


def median_range(values) -> tuple[float, float, float]:
    """(median, min, max) of a list of numbers."""
    values = list(values)
    if not values:
        raise ValueError("no values to summarize")
    return statistics.median(values), min(values), max(values)


def paired_verdict(baseline: dict, candidate: dict, higher_is_better: bool) -> Verdict:
    """baseline, candidate: {seed: value} of one metric. Pairs the runs by seed.

    better: the candidate's median is better AND it wins >= min_wins(n) of the n pairs;
    worse: the same the other way round; else "no clear difference".
    """
    seeds = sorted(set(baseline) & set(candidate))
    if not seeds:
        raise ValueError("the baseline and the candidate share no seed: nothing to pair")
    sign = 1.0 if higher_is_better else -1.0
    gains = [sign * (candidate[s] - baseline[s]) for s in seeds]     # > 0: candidate better
    wins, losses = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
    med_b = statistics.median(baseline[s] for s in seeds)
    med_c = statistics.median(candidate[s] for s in seeds)
    need = min_wins(len(seeds))
    if sign * (med_c - med_b) > 0 and wins >= need:
        result = "better"
    elif sign * (med_c - med_b) < 0 and losses >= need:
        result = "worse"
    else:
        result = "no clear difference"
    return Verdict(result, wins, losses, len(seeds), med_b, med_c)


def overall_verdict(verdicts: dict) -> str:
    """Combine the DECIDING metrics' verdicts ({metric: Verdict}) into one word."""
    results = [v.result for v in verdicts.values()]
    better, worse = "better" in results, "worse" in results
    if better and worse:
        return "mixed"
    if better:
        return "better"
    if worse:
        return "worse"
    return "no clear difference"


def compare_to_baseline(rows_by_setting: dict, baseline: str) -> dict:
    """rows_by_setting: {setting: [result dicts with 'seed' and the metrics]}.

    Returns {setting: {"verdicts": {metric: Verdict}, "overall": str}} for every
    setting but the baseline.
    """
    if baseline not in rows_by_setting:
        raise ValueError(f"baseline {baseline!r} has no results")
    base = rows_by_setting[baseline]
    out = {}
    for name, rows in rows_by_setting.items():
        if name == baseline:
            continue
        verdicts = {m: paired_verdict({r["seed"]: r[m] for r in base},
                                      {r["seed"]: r[m] for r in rows}, higher)
                    for m, higher in DECIDING.items()}
        out[name] = {"verdicts": verdicts, "overall": overall_verdict(verdicts)}
    return out


def late_mean(records, key, fraction=0.2):
    """The mean of records[i][key] over the last `fraction` of a run's steps (records
    with a "step"); e.g. D's accuracy in the last fifth, when it should have settled."""
    records = [r for r in records if key in r]
    if not records:
        raise ValueError(f"no {key!r} in these records")
    last = records[-1]["step"]
    late = [r[key] for r in records if r["step"] > (1.0 - fraction) * last]
    return sum(late) / len(late)


def median_seed(rows, metric="frechet"):
    """The seed whose run has the median value of `metric` (the lower middle for an even
    count): the run to show as the setting's typical picture."""
    ordered = sorted(rows, key=lambda r: r[metric])
    return ordered[(len(ordered) - 1) // 2]["seed"]


def _fmt(value, metric):
    if metric in ("precision", "recall", "kl_uniform"):
        return f"{value:.3f}"
    if metric == "classes_covered":
        return f"{value:g}"
    return f"{value:.1f}" if metric == "frechet" else f"{value:.0f}"


def format_comparison(rows_by_setting: dict, baseline: str, title: str = "") -> str:
    """A markdown table: per setting, median [min, max] of REPORTED over seeds, the
    seeds, and the verdict against the baseline (per deciding metric and overall)."""
    verdicts = compare_to_baseline(rows_by_setting, baseline) if len(rows_by_setting) > 1 else {}
    names = {"frechet": "Frechet", "precision": "precision", "recall": "recall",
             "classes_covered": "classes", "kl_uniform": "KL", "seconds": "seconds"}
    lines = [title, ""] if title else []
    lines.append("| setting | seeds | " + " | ".join(names[m] for m in REPORTED) + " | verdict |")
    lines.append("|---|---|" + "---|" * len(REPORTED) + "---|")
    for name, rows in rows_by_setting.items():
        cells = []
        for m in REPORTED:
            med, lo, hi = median_range(r[m] for r in rows)
            cells.append(f"{_fmt(med, m)} [{_fmt(lo, m)}, {_fmt(hi, m)}]")
        if name == baseline:
            verdict = "baseline"
        else:
            v = verdicts[name]
            per = ", ".join(f"{names[m]} {x.result.replace('no clear difference', '=')} "
                            f"{x.wins}:{x.losses}" for m, x in v["verdicts"].items())
            verdict = f"**{v['overall']}** ({per})"
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + f" | {verdict} |")
    n = len(rows_by_setting[baseline])
    lines += ["", f"Median [min, max] over seeds. Verdict against '{baseline}': better (or "
                  f"worse) on a metric = a better (worse) median and at least "
                  f"{min_wins(n)} of {n} seed pairs won (lost); 'n:m' = pairs won:lost; "
                  f"'=' = no clear difference. Overall: better on one of Frechet, "
                  f"precision, recall and worse on none."]
    return "\n".join(lines)
