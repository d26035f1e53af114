"""pytest configuration: hypothesis profiles.

Every profile but "explore" is derandomized: the examples are a function of the test
alone, so a run that passes passes again, and a failure is not replayed from
`.hypothesis/` by the runs after it.

    default    30 examples, derandomized (the README's test command, CI)
    thorough   300 examples, derandomized
    explore    100 examples from a random (or given) seed, saved failures replayed first:
               HYPOTHESIS_PROFILE=explore pytest -q --hypothesis-seed=7 tests/test_conv.py

Tests that scale their own count (`FEW = settings.default.max_examples // 4`) follow
the profile. A failure found with "explore" is a bug in the code or in the test's
tolerance; fix it, then check that the derandomized profiles still pass.
"""
import os

# The tests multiply small matrices, where one BLAS thread is fastest, and a busy
# 2-core machine makes multi-threaded BLAS crawl. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

_quiet = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.differing_executors])
settings.register_profile("default", max_examples=30, derandomize=True, **_quiet)
settings.register_profile("ci", parent=settings.get_profile("default"))   # the same
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=300)
settings.register_profile(
    "explore", max_examples=100, derandomize=False, print_blob=True,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"), **_quiet)

_profile = os.environ.get("HYPOTHESIS_PROFILE", "default")
if _profile not in ("default", "ci", "thorough", "explore"):
    raise SystemExit(f"error: HYPOTHESIS_PROFILE={_profile!r} is not a profile; "
                     "use default, thorough or explore (see tests/conftest.py)")
settings.load_profile(_profile)
