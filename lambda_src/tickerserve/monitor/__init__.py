"""Monitoring: what a model sees now against what it saw at publish time (its baseline).

- ``config``: the thresholds and defaults (``MonitorConfig``), from ``config.json``, the one
  definition the CLI, the scheduled function, the report and infra all read;
- ``capture_reader`` / ``outcome_join``: read what serving recorded and join what was realized;
- ``model_stream``: one model's window of traffic as columnar tallies, in bounded memory;
- ``drift_statistics``: drift statistics (PSI, L-infinity CDF distance);
- ``significance``: the tests that say whether champion and challenger really differ, over
  ``distributions`` (normal, Student t and binomial CDFs in plain ``math``);
- ``recommendation``: seed 003's rule (keep, watch, retrain, switch);
- ``evaluate``: judges every model over a window into a ``report`` (typed: ``RunReport``,
  ``ModelReport``); ``run``: a whole run (evaluate, optionally promote, append
  ``monitoring_history``, emit ``cloudwatch`` metrics); ``handler``: the scheduled function's
  entry point.
May import ``publishing`` (auto-promotion), ``baselines``, ``storage`` and below; never
``serving``'s request path or ``http``.
"""
