"""The benchmark suite: Tailcast (and optionally nginx + Nchan) under a load client of its own.

Run it with ``make bench`` (see docs/BENCHMARKS.md); ``python -m bench --help`` lists the
options. Nothing here is imported by the service or collected by pytest.
"""
