"""Domain errors. Each carries the HTTP status and error code the API returns for it."""

from __future__ import annotations


class TickerserveError(Exception):
    """Base class: a failure with a stable code and an HTTP status."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        features: list[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.features = features
        # Seconds after which trying again may succeed (HTTP ``Retry-After`` on a 503).
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, dict[str, object]]:
        """The JSON error body every route returns; ``features`` names offending inputs."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.features:
            error["features"] = self.features
        return {"error": error}


class BadRequest(TickerserveError):
    """The client sent something malformed or invalid."""

    status = 400
    code = "bad_request"


class NotFound(TickerserveError):
    """Unknown ticker, model, alias or version."""

    status = 404
    code = "not_found"


class WrongEntryPoint(TickerserveError):
    """A request sent to an entry point that does not do it (outcomes to the prediction
    function, a prediction to the outcomes function): separate permissions, separate doors."""

    status = 403
    code = "wrong_entry_point"


class MethodNotAllowed(TickerserveError):
    """A known path asked with a method it does not serve; ``allow`` lists the ones it does."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class UnsupportedMediaType(TickerserveError):
    """A body sent with a Content-Type that is not JSON."""

    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(TickerserveError):
    """Body or batch over the documented limit."""

    status = 413
    code = "payload_too_large"


class Conflict(TickerserveError):
    """The change conflicts with the current state (existing version, alias in use)."""

    status = 409
    code = "conflict"


class StorageUnavailable(TickerserveError):
    """The model store could not be reached and nothing usable is cached."""

    status = 503
    code = "storage_unavailable"


class IntegrityError(TickerserveError):
    """An artifact or metadata file does not match its recorded sha256 or is unreadable."""

    status = 503
    code = "integrity_error"


class InvalidModel(TickerserveError):
    """A bundle or registry is structurally invalid."""

    status = 503
    code = "invalid_model"


class RegistryNeedsImport(TickerserveError):
    """The registry key holds a seed project's own registry (seed 000's ``asset_registry.json``),
    which tickerserve serves only once ``import-seed`` has converted the store."""

    status = 503
    code = "registry_needs_import"


class ConfigError(TickerserveError):
    """A setting (environment variable) has an invalid value."""

    code = "config_error"
