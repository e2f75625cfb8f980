"""How failures reach the user: one line on stderr and an exit code.

Exit codes: 0 success; 1 a failure (storage unreachable, uploads failed, a version that
does not validate, a publish that got only part of the way: the message says which part);
2 bad input or a refusal, with nothing written (invalid name, existing version, alias in use,
a seed that does not convert exactly); 130 interrupted.
"""

from __future__ import annotations

from tickerserve.errors import StorageUnavailable, TickerserveError
from tickerserve.publishing.release import Incomplete

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


class Refused(TickerserveError):
    """The command will not do what was asked (bad input, unsafe change)."""

    status = 400
    code = "refused"


class Failed(TickerserveError):
    """The command ran but the outcome is a failure (e.g. some uploads failed)."""

    code = "failed"


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, StorageUnavailable | Failed | Incomplete):
        return EXIT_FAILED
    if isinstance(exc, TickerserveError | ValueError):
        return EXIT_REFUSED
    return EXIT_FAILED


def one_line(exc: BaseException) -> str:
    """The message for stderr: a single line, prefixed with ``error:``."""
    if isinstance(exc, TickerserveError):
        message = exc.message
    elif isinstance(exc, ValueError):
        message = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = f"unexpected {type(exc).__name__}: {exc}"
    return "error: " + " ".join(message.split())


def usage_line(exc: Exception) -> str:
    """A Click usage error (missing argument, unknown option) as one ``error:`` line that
    names the command's help."""
    message = str(getattr(exc, "format_message", exc.__str__)()).strip().rstrip(".")
    message = message.replace("Value error, ", "")  # pydantic's prefix on Typer's coercion errors
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f"; see {ctx.command_path} --help"
    return "error: " + " ".join(message.split())
