"""``outcomes add`` and ``outcomes list``: realized results joined to predictions by request id.

``add`` reads CSV (header ``request_id,label,observed_at`` or ``request_id,value,...``) or JSON
lines (one ``{"request_id", "label" | "value", "observed_at"?}`` per line) and stores them under
``outcomes/dt=<today>/`` exactly as ``POST /outcomes`` does, one object per chunk of at most
1,000 lines. Chunk ``i`` counts as received ``i`` microseconds after the first, so a later line
of the file that corrects an earlier one wins, as it would inside one request.
"""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from tickerserve.cli.console import JsonOption, note, print_json, table
from tickerserve.cli.dates import parse_day
from tickerserve.cli.errors import EXIT_FAILED, EXIT_REFUSED, Refused
from tickerserve.cli.store_option import target
from tickerserve.storage.outcomes import FIELDS, MAX_ITEMS, latest_outcomes, store_outcomes

app = typer.Typer(
    help="Realized outcomes (labels or values), joined to predictions by request_id.",
    no_args_is_help=True,
)
SHOWN_PROBLEMS = 20
WRITE_THREADS = 8  # chunks written at once


def read_items(path: Path) -> list[tuple[int, Any]]:
    """``(line number, item)`` for every record of a CSV or JSON-lines file. A line that does
    not parse becomes an item that fails validation with its own message; bytes that are not
    UTF-8 are kept as lone surrogates, which validation refuses for that line alone."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc}") from None
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or first.startswith("{"):
        return _json_lines(text)
    return _csv_rows(text, path)


def _json_lines(text: str) -> list[tuple[int, Any]]:
    items: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except (ValueError, RecursionError) as exc:
            items.append((number, _Unparsable(f"not valid JSON: {exc}")))
    return items


def _csv_rows(text: str, path: Path) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    unknown = sorted(set(columns) - FIELDS)
    if "request_id" not in columns or unknown or not {"label", "value"} & set(columns):
        found = ", ".join(columns).encode("utf-8", "backslashreplace").decode()
        raise Refused(
            f"{path}: a CSV needs a header with request_id and label or value (and optionally "
            f"observed_at); found {found or 'no header'}"
        )
    items: list[tuple[int, Any]] = []
    for row in reader:
        item: dict[str, Any] = {}
        if None in row:  # more cells than the header names
            extra = _Unparsable("more cells than the header names", "invalid_row")
            items.append((reader.line_num, extra))
            continue
        for name, cell in row.items():
            cell = (cell or "").strip()
            if not cell:
                continue
            item[name.strip()] = _number(cell) if name.strip() == "value" else cell
        items.append((reader.line_num, item))
    return items


def _number(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell  # left as text: validation says "value must be a finite number"


class _Unparsable:
    """A line that is no record (not JSON, or a CSV row of the wrong width); it is reported
    with ``message`` and never sent."""

    def __init__(self, message: str, code: str = "invalid_json") -> None:
        self.message = message
        self.code = code


def add_command(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV or JSON lines: request_id, label or value, observed_at.")
    ],
    json_output: JsonOption = False,
) -> None:
    """Store realized outcomes under outcomes/dt=<today>/, one object per 1,000 lines.

    Adding the same file again the same day changes nothing; a different label or value for
    the same request id is a correction (the latest received wins; the earlier one is kept).
    Malformed lines are reported by line number and the rest is stored; the exit code is then 2.
    """
    t = target(ctx)
    items = read_items(file)
    if not items:
        raise Refused(f"{file}: no outcomes in the file")
    results: list[dict[str, Any]] = [
        {"line": line, "error": {"code": item.code, "message": item.message}}
        for line, item in items
        if isinstance(item, _Unparsable)
    ]
    parsed = [(line, item) for line, item in items if not isinstance(item, _Unparsable)]
    chunks = [parsed[start : start + MAX_ITEMS] for start in range(0, len(parsed), MAX_ITEMS)]
    now = datetime.now(UTC)

    def store_chunk(number: int) -> dict[str, Any]:
        chunk = [item for _, item in chunks[number]]
        return store_outcomes(t.store, chunk, now=now + timedelta(microseconds=number))

    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        answers = list(pool.map(store_chunk, range(len(chunks))))
    for chunk, answer in zip(chunks, answers, strict=True):
        for (line, _), result in zip(chunk, answer["results"], strict=True):
            results.append({"line": line, **{k: v for k, v in result.items() if k != "index"}})
    results.sort(key=lambda r: int(r["line"]))
    counts = {s: sum(1 for r in results if r.get("status") == s) for s in ("stored", "unchanged")}
    refused = [r for r in results if "error" in r and r["error"]["code"] != "storage_unavailable"]
    failed = [r for r in results if "error" in r and r not in refused]
    summary = {**counts, "refused": len(refused), "failed": len(failed)}
    if json_output:
        print_json({**summary, "results": results})
    else:
        for r in (refused + failed)[:SHOWN_PROBLEMS]:
            note(f"line {r['line']}: {r['error']['code']}: {r['error']['message']}")
        if len(refused) + len(failed) > SHOWN_PROBLEMS:
            note(f"... {len(refused) + len(failed) - SHOWN_PROBLEMS} more")
        typer.echo(
            f"stored {summary['stored']}, unchanged {summary['unchanged']}, "
            f"refused {summary['refused']}, failed {summary['failed']} (of {len(results)})"
        )
    if failed:
        raise typer.Exit(EXIT_FAILED)
    if refused:
        raise typer.Exit(EXIT_REFUSED)


def list_command(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="Received on or after DATE.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="DATE", help="Received before DATE.")
    ] = None,
    request_id: Annotated[
        list[str] | None, typer.Option("--request-id", help="Only these request ids.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The latest received outcome per request id (what the monitor joins to captured rows)."""
    t = target(ctx)
    skipped: dict[str, int] = {}
    latest = latest_outcomes(
        t.store,
        since=parse_day(since, "--since"),
        until=parse_day(until, "--until"),
        request_ids=request_id or None,
        on_malformed=skipped.__setitem__,
    )
    rows = [latest[r].to_dict() for r in sorted(latest)]
    if json_output:
        print_json(rows)
        return
    if skipped:
        note(
            f"note: skipped {sum(skipped.values())} line(s) that are not outcomes in "
            f"{len(skipped)} object(s): {', '.join(sorted(skipped)[:3])}"
            + (" ..." if len(skipped) > 3 else "")
        )
    if not rows:
        typer.echo("no outcomes")
        return
    typer.echo(
        table(
            ["REQUEST_ID", "LABEL/VALUE", "OBSERVED_AT", "RECEIVED_AT"],
            [
                [
                    r["request_id"],
                    r.get("label", r.get("value")),
                    r["observed_at"],
                    r["received_at"],
                ]
                for r in rows
            ],
        )
    )


app.command("add")(add_command)
app.command("list")(list_command)
