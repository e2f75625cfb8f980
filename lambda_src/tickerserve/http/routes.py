"""The API's routes and the methods each serves, in one table: the resolvers register these
(a test compares them with the OpenAPI document and the stacks' gateway routes), and a known
path asked with another method is a 405 naming them in ``Allow``."""

from __future__ import annotations

PREDICT_PATH = "/predict"
DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"

ROUTES: dict[str, tuple[str, ...]] = {
    PREDICT_PATH: ("POST",),
    "/predict/batch": ("POST",),
    "/outcomes": ("POST",),
    "/models": ("GET",),
    "/models/<ticker>": ("GET",),
    "/health": ("GET",),
}
# Served by the local server alone (``docs=True``): generating the document imports pydantic.
DOCS_ROUTES: dict[str, tuple[str, ...]] = {DOCS_PATH: ("GET",), OPENAPI_PATH: ("GET",)}
