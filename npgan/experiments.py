"""Comparing GAN settings over seeds, and deciding so that chance is rarely called a result.

GAN results swing between seeds: the same setting can span 2x in Frechet distance.
So one run per setting proves nothing, and neither does a better mean. We train every
setting with the same seeds, pair the runs by seed, and decide by one rule, fixed before
any study is run:

  * one metric decides, the Frechet distance (PRIMARY), which mixes realism and coverage.
    Precision and recall (SECONDARY) are reported beside it and never decide: a rule that
    calls a setting better when any of three metrics says so is fooled about three
    times as often as one metric alone;
  * "better" needs so many won seed pairs that a fair coin would win as many with
    probability <= 5% (a one-sided exact sign test, ties dropped): 5 of 5 pairs
    (1/32 = 3.1%), 6 of 6, 7 of 7, 7 of 8, 9 of 10. "4 of 5" happens by chance 3 times
    in 16;
  * and a median paired gain of at least 5% of the baseline (MIN_EFFECT): a small but
    steady gain does not earn a change of default.
"Worse" is the mirror image; anything else is "no clear difference". With fewer than
min_seeds() = 5 seed pairs no outcome can reach 5% (4 of 4 is 1/16), so the verdict is
"undecided: too few seeds" instead. When the two settings do not differ, "better" comes
out at most 5% of the time, and so does "worse" (tests/test_experiments.py simulates
both). Each candidate is one such test: with k candidates against one baseline, a
study calls *some* candidate better by chance up to k times as often, unless
correction="bonferroni" divides the 5% among them (which needs more seeds: 8 for k = 7).

    >>> base, cand = {s: 50.0 + s for s in range(5)}, {s: 40.0 + s for s in range(5)}
    >>> paired_verdict(base, cand, higher_is_better=False).result
    'better'
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

PRIMARY = "frechet"                     # the one metric that decides, declared up front
SECONDARY = ("precision", "recall")     # reported with their pairs won:lost, never deciding
HIGHER_IS_BETTER = {"frechet": False, "precision": True, "recall": True,
                    "classes_covered": True, "kl_uniform": False}
# what the tables report (median [min, max] over seeds), in order. Not the wall time:
# on a shared machine it measures the load, and a resumed run times only its last part.
REPORTED = ("frechet", "precision", "recall", "classes_covered", "kl_uniform")
ALPHA = 0.05         # the chance of "better" (or "worse") when nothing differs, at most
MIN_EFFECT = 0.05    # the median paired gain "better" needs, as a share of the baseline


@dataclass
class Verdict:
    """One metric's comparison of a candidate setting with the baseline."""
    result: str            # "better" | "worse" | "no clear difference" | "too few seeds"
    wins: int              # seed pairs where the candidate is better
    losses: int            # seed pairs where it is worse (the others are ties)
    pairs: int             # seeds both settings have
    p_value: float         # the sign test's p, in the direction the pairs lean
    effect: float          # median paired gain / |baseline|; > 0: the candidate is better
    median_baseline: float
    median_candidate: float

    def __str__(self):
        return (f"{self.result} ({self.wins}:{self.losses} of {self.pairs} pairs, "
                f"p = {self.p_value:.3f}, median gain {self.effect:+.0%})")


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(a fair coin tossed n = wins + losses times shows at
    least `wins` heads) = sum_{k >= wins} C(n, k) / 2^n. Ties are not tosses. 1.0 if n = 0.
    reference: https://en.wikipedia.org/wiki/Sign_test"""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def min_seeds(alpha: float = ALPHA) -> int:
    """The fewest seed pairs with which a verdict is possible at all: 0.5^n <= alpha
    (5 for 0.05: n wins of n pairs have probability 1/2^n)."""
    return max(1, math.ceil(math.log2(1.0 / alpha) - 1e-9))


def median_range(values) -> tuple[float, float, float]:
    """(median, min, max) of a list of numbers."""
    values = list(values)
    if not values:
        raise ValueError("no values to summarize")
    return statistics.median(values), min(values), max(values)


def paired_verdict(baseline: dict, candidate: dict, higher_is_better: bool,
                   alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> Verdict:
    """baseline, candidate: {seed: value} of one metric. Pairs the runs by seed.

    better: sign_test(wins, losses) <= alpha AND median gain >= min_effect;
    worse: the same the other way round; "too few seeds" with fewer than
    min_seeds(alpha) pairs; else "no clear difference". The gain of a pair is
    (candidate - baseline) / |baseline|, signed so that > 0 is better.
    """
    seeds = sorted(set(baseline) & set(candidate))
    if not seeds:
        raise ValueError("the baseline and the candidate share no seed: nothing to pair")
    sign = 1.0 if higher_is_better else -1.0
    gains = [sign * (candidate[s] - baseline[s]) / (abs(baseline[s]) or 1.0) for s in seeds]
    wins, losses = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
    effect = statistics.median(gains) + 0.0                 # + 0.0: no -0% in the tables
    p_better, p_worse = sign_test(wins, losses), sign_test(losses, wins)
    if len(seeds) < min_seeds(alpha):
        result = "too few seeds"
    elif p_better <= alpha and effect >= min_effect:
        result = "better"
    elif p_worse <= alpha and effect <= -min_effect:
        result = "worse"
    else:
        result = "no clear difference"
    return Verdict(result, wins, losses, len(seeds), p_better if wins >= losses else p_worse,
                   effect, statistics.median(baseline[s] for s in seeds),
                   statistics.median(candidate[s] for s in seeds))


def overall_verdict(primary: Verdict, alpha: float = ALPHA) -> str:
    """The setting's verdict: the primary metric's, or why there is none."""
    if primary.result == "too few seeds":
        return (f"undecided: too few seeds (the rule needs at least {min_seeds(alpha)} "
                f"paired seeds, has {primary.pairs})")
    return primary.result


def compare_to_baseline(rows_by_setting: dict, baseline: str, primary: str = PRIMARY,
                        alpha: float = ALPHA, min_effect: float = MIN_EFFECT,
                        correction: str = "none") -> dict:
    """rows_by_setting: {setting: [result dicts with 'seed' and the metrics]}.

    Returns {setting: {"verdicts": {metric: Verdict}, "overall": str, "alpha": float}}
    for every setting but the baseline; the primary metric decides "overall", the
    SECONDARY ones are there to be read. correction="bonferroni": each of the k candidates
    is tested at alpha / k, so that the study as a whole calls one of them better by
    chance at most alpha of the time.
    """
    if baseline not in rows_by_setting:
        raise ValueError(f"baseline {baseline!r} has no results")
    if correction not in ("none", "bonferroni"):
        raise ValueError(f"correction must be 'none' or 'bonferroni', got {correction!r}")
    candidates = [name for name in rows_by_setting if name != baseline]
    each = alpha / len(candidates) if correction == "bonferroni" and candidates else alpha
    base = rows_by_setting[baseline]
    out = {}
    for name in candidates:
        rows = rows_by_setting[name]
        verdicts = {m: paired_verdict({r["seed"]: r[m] for r in base},
                                      {r["seed"]: r[m] for r in rows},
                                      HIGHER_IS_BETTER[m], each, min_effect)
                    for m in (primary, *[m for m in SECONDARY if m != primary])}
        out[name] = {"verdicts": verdicts, "overall": overall_verdict(verdicts[primary], each),
                     "alpha": each}
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


def format_comparison(rows_by_setting: dict, baseline: str, title: str = "",
                      correction: str = "none") -> str:
    """A markdown table: per setting, median [min, max] of REPORTED over seeds, the
    seeds, and the verdict against the baseline (decided by PRIMARY; the SECONDARY
    metrics' seed pairs won:lost beside it)."""
    verdicts = compare_to_baseline(rows_by_setting, baseline, correction=correction) \
        if len(rows_by_setting) > 1 else {}
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
            v = verdicts[name]["verdicts"]
            first = v[PRIMARY]
            rest = ", ".join(f"{names[m]} {x.wins}:{x.losses}" for m, x in v.items()
                             if m != PRIMARY)
            verdict = (f"**{verdicts[name]['overall']}** ({names[PRIMARY]} {first.wins}:"
                       f"{first.losses}, p = {first.p_value:.3f}, median gain "
                       f"{first.effect:+.0%}; {rest})")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + f" | {verdict} |")
    alpha = next(iter(verdicts.values()))["alpha"] if verdicts else ALPHA
    lines += ["", f"Median [min, max] over seeds. Verdict against '{baseline}', decided by "
                  f"the {names[PRIMARY]} distance alone: better (worse) = it wins (loses) "
                  f"so many seed pairs that a coin would with probability p <= {alpha:.3g} "
                  f"(exact sign test, ties dropped; with {min_seeds(alpha)} seeds: all "
                  f"{min_seeds(alpha)}) and its median "
                  f"gain is at least {MIN_EFFECT:.0%} of the baseline; at least "
                  f"{min_seeds(alpha)} paired seeds are needed for any verdict. "
                  f"'n:m' = seed pairs won:lost; "
                  f"{' and '.join(names[m] for m in SECONDARY)} are shown, never deciding."]
    if len(verdicts) > 1 and correction == "none":
        lines[-1] += (f" Each of the {len(verdicts)} candidates is its own test: with no "
                      f"real difference anywhere, one of them would be called better up to "
                      f"{min(1.0, len(verdicts) * alpha):.0%} of the time.")
    return "\n".join(lines)
