"""The HTTP API: API Gateway (REST and HTTP) and direct-invoke events in, JSON answers out.

``api`` routes requests and maps domain errors to HTTP answers in one place; ``events``
checks the event's shape; ``openapi`` writes the OpenAPI document from ``contract.json``;
``views`` and ``pagination`` answer the read-only ``GET /models``, ``GET /models/{ticker}``
and ``GET /health``. May import ``serving``, ``storage`` and the modules below them.
"""
