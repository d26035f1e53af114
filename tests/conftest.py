"""pytest configuration: hypothesis profiles ("ci" is derandomized, so CI is repeatable)."""
import os

# The tests multiply small matrices, where one BLAS thread is fastest, and a busy
# 2-core machine makes multi-threaded BLAS crawl. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default", deadline=None, max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True)
settings.register_profile(
    "thorough", parent=settings.get_profile("default"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))
