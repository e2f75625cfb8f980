"""Benchmarks that print tables: tickerserve vs a seed-style baseline (``bench/run.py``)."""
