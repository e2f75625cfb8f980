"""Serving: from a routed request to an answer, with models held in memory.

``service`` reads the registry and loads verified versions (``cache`` bounds memory and /tmp);
``model`` combines members for a task; ``features`` aligns a request's features to a model's
row; ``predict`` is the prediction pipeline (resolve, canary, predict, fall back, capture,
shadow); ``traffic`` decides canary and shadow; ``capture`` records what was served;
``request_ids``, ``observability`` (logs, metrics) and ``snapstart`` (SnapStart hooks).
May import ``storage``, ``members`` and the modules below them; never HTTP.
"""
