"""The HTTP API: API Gateway (REST and HTTP) and direct-invoke events in, JSON answers out.

``api`` dispatches every event and answers ``POST /predict`` itself; ``resolvers`` are
Powertools' resolvers for the other routes (``routes``), built only when a request needs one;
``events`` checks the event's shape and reads its path and headers; ``bodies`` reads request
JSON and writes answers; ``proxy`` writes proxy responses and maps domain errors to them in one
place; ``openapi`` writes the OpenAPI document from ``contract.json``; ``views`` and
``pagination`` answer the read-only ``GET /models``, ``GET /models/{ticker}`` and
``GET /health``. May import ``serving``, ``storage`` and the modules below them.
"""
