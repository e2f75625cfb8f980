"""Without torch (or stable-baselines3), converting a network is refused with the install line
of the networks extra and torch's CPU index."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.torch_extra import require


def test_an_installed_module_is_returned():
    assert require("json", "x").__name__ == "json"


def test_a_missing_module_names_the_install_line():
    with pytest.raises(NotConvertible) as caught:
        require("no_such_torch_here", "a GRU checkpoint (model.pth)")
    assert caught.value.message == (
        "a GRU checkpoint (model.pth) is converted with no_such_torch_here, which is not "
        "installed here: pip install 'tickerserve[networks]' (torch's CPU build, without the "
        "CUDA libraries: pip install torch --index-url https://download.pytorch.org/whl/cpu "
        "first)"
    )
    assert caught.value.code == "not_convertible"


def test_a_gru_run_without_torch_is_refused_naming_the_extra(tmp_path):
    # Given a machine where torch cannot be imported (blocked in a child interpreter)
    (tmp_path / "model.pth").write_bytes(b"PK\x03\x04")
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from pathlib import Path\n"
        "from tickerserve.publishing.conversion import NotConvertible\n"
        "from tickerserve.publishing.conversion.gru_runs import GruRun, convert_gru\n"
        "try:\n"
        f"    convert_gru(GruRun(Path({str(tmp_path / 'model.pth')!r})), model='x/gru')\n"
        "except NotConvertible as exc:\n"
        "    print(exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith(
        "model.pth: a GRU checkpoint (model.pth) is converted with torch, which is not "
        "installed here: pip install 'tickerserve[networks]' (torch's CPU build, without the "
        "CUDA libraries: pip install torch --index-url https://download.pytorch.org/whl/cpu "
        "first)"
    )
