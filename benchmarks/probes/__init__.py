"""Probes: scripts that measure one backend behaviour by hand (requests per write,
concurrency, lock latency) against the test suite's servers. Run each from the root
with the dev virtualenv, as its docstring shows; `nox -s bench` does not run them."""
