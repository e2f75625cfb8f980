"""tickerserve: serve per-ticker trading models on AWS serverless.

The package is layered; each layer imports only from layers below it (or itself), never up,
and no two modules import each other. ``LAYERS`` is that order, lowest first, and the one
place it is written (``tests/unit/test_layers.py`` enforces it on the source):

- ``errors``, ``contract``, ``layout``, ``settings``, ``metric_names``: the error types, the
  request contract (``contract.json``), the bucket layout and record names (``layout.json``),
  the runtime's settings and environment variable names, the CloudWatch metric names
  (``metric_names.json``); the JSON files are the definitions the CDK app reads too;
- ``members/``: one module per member kind (LightGBM, Treelite, linear), bytes -> predictor;
- ``storage/``: the store (S3 or a folder), compare-and-swap, the registry, version bundles,
  the digest index, JSON-lines histories, outcomes;
- ``baselines/``: what "normal" looked like for a version, and where it is stored;
- ``serving/``: the model service, the prediction pipeline, traffic, capture;
- ``publishing/``: writing versions, promotion, converting estimators (publisher side);
- ``monitor/``: monitor runs over captured traffic and outcomes, and their history;
- ``http/``: the HTTP API over serving (routes, events, OpenAPI, read-only views);
- ``handler``: the prediction function's Lambda entry point;
- ``cli/``: the ``tickerserve`` command line.
"""

__version__ = "0.1.0"

# Lowest first: a module may import its own layer and the layers before it.
LAYERS = (
    "errors",
    "contract",
    "layout",
    "settings",
    "metric_names",
    "members",
    "storage",
    "baselines",
    "serving",
    "publishing",
    "monitor",
    "http",
    "handler",
    "cli",
)
