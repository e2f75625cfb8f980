"""Monitoring: what a model saw at publish time (the baseline) against what it sees now.

- ``baseline``: the reference distributions and validation metrics stored with a version;
- ``statistics``: drift statistics (PSI, L-infinity CDF distance) and their thresholds;
- ``metrics`` / ``significance``: performance figures and the tests that say whether a
  difference between champion and challenger is real;
- ``recommendation``: seed 003's rule (keep, watch, retrain, switch);
- ``capture`` / ``outcomes``: readers of what serving recorded and what was realized;
- ``run``: one monitor run, streaming, with bounded memory; ``history`` writes its line.
"""
