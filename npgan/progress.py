"""What a training run tells a person: its plan before the first step, and its clock.

    data: MNIST-5k, the 4,500 bundled training digits
    model: MLP GAN, G 100-256-512-1024-784 (1,493,520 parameters), D 784-512-256-1 (533,505)
    steps: 200 epochs x 70 steps (batch 64) = 14,000 steps
    threads: 1 (npgan's default)
    estimated total: about 10 min (0.042 s a step, timed on steps 6-35)

The estimate is measured, never guessed: Clock times the steps of this run after a few
warm-up steps (the first ones also allocate every buffer), and the time left is the
steps still to go at that pace. On a GPU the two ends of the timed stretch wait for the
queued work (wants_sync), so that the pace is of steps done, not of steps launched. Clock.before carries the time of earlier invocations
of a resumed run (the checkpoint keeps it), so its clock goes on where it stopped.
"""
from __future__ import annotations

import time

WARMUP = 5          # steps of each invocation left out of the pace (allocations, caches)
TIMED = 30          # steps timed before the estimated total is printed


def format_duration(seconds: float) -> str:
    """42 s, 9 min 41 s, 1 h 05 min: a duration as a person reads it."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def about(seconds: float) -> str:
    """A rounded duration, for an estimate: 40 s, 3 min, 2 h 10 min."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return format_duration(round(seconds / 600) * 600)


class Clock:
    """The wall time of a run across its invocations, and its pace in seconds a step.

    before: the seconds of earlier invocations (a resumed run). step: the step the run
    starts from. tick(step) after every step; elapsed() and left(steps_to_go) any time.
    """

    def __init__(self, before: float = 0.0, step: int = 0):
        self.before = float(before)
        self.started = time.perf_counter()
        self.first_step = step
        self.mark = None                          # (time, step) once warmed up
        self.last = (self.started, step)

    def elapsed(self) -> float:
        """Seconds of the whole run so far, earlier invocations included."""
        return self.before + time.perf_counter() - self.started

    def wants_sync(self, step: int) -> bool:
        """True at the two steps that start and end the timed stretch: on a GPU the
        caller waits for the queued work there, or we would time kernel launches."""
        return (self.mark is None and step - self.first_step >= WARMUP) or \
            (self.mark is not None and step - self.mark[1] == TIMED)

    def tick(self, step: int):
        now = time.perf_counter()
        self.last = (now, step)
        if self.mark is None and step - self.first_step >= WARMUP:
            self.mark = (now, step)

    def pace(self):
        """Seconds a step, measured after the warm-up (or, until then, since the start);
        None before any step."""
        now, step = self.last
        t0, s0 = self.mark if self.mark is not None and step > self.mark[1] else \
            (self.started, self.first_step)
        return (now - t0) / (step - s0) if step > s0 else None

    def estimate_due(self, step: int) -> bool:
        """True once, at the step where TIMED steps after the warm-up have been timed."""
        return self.mark is not None and step - self.mark[1] == TIMED

    def left(self, steps_to_go: int) -> float | None:
        pace = self.pace()
        return None if pace is None else pace * max(steps_to_go, 0)

    def estimate_line(self, step: int, last_step: int) -> str:
        """'estimated total: about 10 min (...)', from the pace timed so far."""
        pace, left = self.pace(), self.left(last_step - step)
        timed = f"steps {self.mark[1] + 1}-{step}" if self.mark else f"{step} steps"
        return (f"estimated total: about {about(self.elapsed() + left)} ({pace:.3f} s a step, "
                f"timed on {timed}; about {about(left)} left)")

    def epoch_suffix(self, step: int, last_step: int) -> str:
        """'[3 s elapsed, 9 min 41 s left]' for an epoch line."""
        left = self.left(last_step - step)
        shown = "" if left is None or step >= last_step else f", {format_duration(left)} left"
        return f"[{format_duration(self.elapsed())} elapsed{shown}]"


def plan_lines(config, data: str, G, D, steps_per_epoch: int, step: int, threads: int) -> list:
    """The first lines of a run: its data, its models, its steps and its threads.
    data: describe_dataset's words; step: where the run starts (a resumed run: > 0)."""
    counts = [sum(int(p.data.size) for p in m.parameters()) for m in (G, D)]
    if config.model == "mlp":
        one_hot = "+10" if config.conditional else ""       # the class, one-hot, joins the input
        g = "-".join(map(str, (f"{config.latent_dim}{one_hot}", *config.g_hidden, 784)))
        d = "-".join(map(str, (f"784{one_hot}", *config.d_hidden, 1)))
        model = f"MLP GAN, G {g} ({counts[0]:,} parameters), D {d} ({counts[1]:,})"
    else:
        model = (f"DCGAN (base channels {config.base_channels}), G {counts[0]:,} parameters, "
                 f"D {counts[1]:,}")
    if config.conditional:
        model = "conditional " + model
    if config.ema:
        model += f"; samples from an EMA of G (decay {config.ema:g})"
    total = config.epochs * steps_per_epoch
    k = "" if config.d_steps == 1 else f", each {config.d_steps} D-updates and 1 G-update"
    steps = (f"{config.epochs} epochs x {steps_per_epoch:,} steps (batch {config.batch_size}"
             f"{k}) = {total:,} steps")
    if step:
        steps += f", from step {step:,} on"
    if config.max_steps is not None and config.max_steps < total:
        steps += f"; this run stops at step {config.max_steps:,}"
    chosen = "npgan's default" if config.threads is None else "asked for"
    return [f"data: {data}", f"model: {model}", config.describe_loss(), f"steps: {steps}",
            f"threads: {threads} for BLAS and npgan's loops ({chosen})"]
