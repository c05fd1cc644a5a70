"""moorage's benchmark suite: ``python -m benchmarks`` (or ``nox -s bench``).

Every figure is measured in the same run as its baselines (Prefect 3.9.1's results
module, diskcache, joblib, redis-py's lock, raw files) and reported as a ratio against
a target. See docs/performance.md for what each workload does.
"""
