"""The ``tickerserve`` app itself: its commands, the global store options (flag, environment,
neither, both) and how usage errors and help read."""

from __future__ import annotations

import json

import pytest

from tests.cli_support import cli, refused


def test_help_lists_every_command():
    result = cli("--help")
    assert result.exit_code == 0
    for command in (
        "publish",
        "import-seed",
        "sync",
        "route",
        "fallback",
        "promote",
        "rollback",
        "list",
        "best",
        "show",
        "history",
        "delete",
        "validate",
        "capture",
        "shadow",
        "canary",
        "outcomes",
    ):
        assert command in result.stdout


def test_no_store_configured():
    refused(
        cli("list"),
        "no model store: pass --bucket NAME or --store PATH "
        "(or set TICKERSERVE_BUCKET / TICKERSERVE_STORE_PATH)",
    )


def test_bucket_and_store_together_are_refused(store_path):
    refused(
        cli("--bucket", "b", "--store", store_path, "list"),
        "give either --bucket or --store, not both",
    )


def test_store_from_environment_and_flag_wins(tmp_path, seed, store_path):
    # Given a model published into the folder named by TICKERSERVE_STORE_PATH
    env = {"TICKERSERVE_STORE_PATH": store_path, "TICKERSERVE_BUCKET": ""}
    assert cli("publish", str(seed["smh"]), "--model", "etfs/SMH", env=env).exit_code == 0
    # When listing via the environment, and via --store elsewhere despite the variable
    via_env = cli("list", "--json", env=env)
    via_flag = cli("--store", str(tmp_path / "other"), "list", "--json", env=env)
    # Then the variable is used only when no flag is given
    assert [r["model"] for r in json.loads(via_env.stdout)] == ["etfs/SMH"]
    assert json.loads(via_flag.stdout) == []


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["publish"], "error: missing argument"),
        (["--bogus", "list"], "error: no such option: --bogus"),
        (["nope"], "error: no such command 'nope'"),
        (["publish", ".", "--model", "etfs/SMH", "--bump", "huge"], "error: invalid value"),
        (["list", "--min-metric"], "error: option '--min-metric' requires an argument"),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_code_2(args, start):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(start)
    assert result.stderr.count("\n") == 1  # one line: no usage block, no box
    assert not any(c in result.stderr for c in "╭│╰")


def test_help_has_no_value_placeholder_after_flags_and_keeps_bracketed_text():
    for command in (["--help"], ["publish", "--help"], ["list", "--help"], ["serve", "--help"]):
        result = cli(*command)
        assert result.exit_code == 0
        assert "<bool>" not in result.stdout, command
    serve = cli("serve", "--help").stdout
    assert "Artifact cache folder (default: /tmp/tickerserve" in " ".join(serve.split())
