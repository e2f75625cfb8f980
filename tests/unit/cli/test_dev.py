"""``make serve``'s pieces: a port taken is refused before anything starts, CLI commands run
in this process with their exit codes, a store is published into only when it has no
registry, and the printed commands come with the line that makes them work in a new shell."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.support import REGISTRY_KEY, free_port
from tickerserve.cli import dev
from tickerserve.cli.errors import Failed
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.store import LocalStore


def test_a_port_in_use_is_refused_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Failed) as caught:
            dev.ensure_free("127.0.0.1", port, "--port (PORT=...)")
    assert caught.value.message == (
        f"127.0.0.1:{port} is already in use; choose another port with --port (PORT=...)"
    )
    dev.ensure_free("127.0.0.1", free_port(), "--port")  # a free one passes


def test_cli_commands_run_in_process_and_a_failure_names_the_command(tmp_path: Path, models):
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    cli = dev.Cli(["--store", str(tmp_path)])
    cli("route", "SMH", "--model", "etfs/SMH")
    with pytest.raises(Failed, match=r"^tickerserve promote failed with exit code 2$"):
        cli("promote", "etfs/SMH", "9.9.9")


def test_a_store_has_a_registry_only_once_something_is_published(tmp_path: Path, models):
    assert dev.has_registry(tmp_path) is False
    publish_bundle(LocalStore(tmp_path), models.smh, registry_key=REGISTRY_KEY)
    assert dev.has_registry(tmp_path) is True


def test_store_and_bucket_together_are_refused():
    app = typer.Typer()
    app.command()(dev.dev_command)
    result = CliRunner().invoke(app, ["--store", "x", "--bucket", "y"])
    assert result.exit_code == 2
    assert "give --store or --bucket, not both" in result.output


def test_the_activation_line_names_this_virtual_environment():
    # Given make serve runs in a virtual environment (the one make install creates)
    line = dev.activation()
    # Then the line it prints sources that environment's activate script, by its full path
    script = Path(sys.executable).with_name("activate")
    if script.is_file():
        assert line == f"source {script.absolute()}"
    else:
        assert line.startswith("export PATH=") and str(Path(sys.executable).parent) in line


def test_the_workdir_is_made_absolute_so_printed_paths_work_from_any_folder(monkeypatch):
    # Given make serve's default workdir, relative to the clone
    seen: dict[str, object] = {}
    monkeypatch.setattr(dev, "run", lambda **kwargs: seen.update(kwargs))
    app = typer.Typer()
    app.command()(dev.dev_command)
    # When it starts
    result = CliRunner().invoke(app, ["--workdir", ".serve"])
    # Then everything it prints (demo model folders, the cache, the saved bucket) is absolute
    assert result.exit_code == 0, result.output
    assert seen["workdir"] == Path(".serve").absolute()


def test_a_damaged_saved_bucket_stops_the_start_with_one_line_and_is_left_alone(
    tmp_path: Path,
):
    # Given a saved bucket whose manifest is not JSON (a disk problem, a hand edit)
    manifest = tmp_path / "bucket" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{cut")
    app = typer.Typer()
    app.command()(dev.dev_command)
    # When make serve starts
    result = CliRunner().invoke(
        app,
        ["--workdir", str(tmp_path), "--port", str(free_port()), "--moto-port", str(free_port())],
    )
    # Then it stops with one line naming the file and the way out, and changes nothing
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"error: {manifest} is not valid JSON")
    assert last.endswith(
        "move " + str(manifest.parent) + " away, or start clean with make serve FRESH=1"
    )
    assert manifest.read_text() == "{cut"
