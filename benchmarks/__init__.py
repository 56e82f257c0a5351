"""Benchmarks and the accuracy harness for symloss (``python -m benchmarks``).

Measurements only: nothing here is a timed unit test.  ``python -m benchmarks``
writes ``docs/benchmarks.md`` (speed, memory, symbolic cost) and
``docs/accuracy.md`` (errors in ulps against mpmath at 50 digits).
"""
