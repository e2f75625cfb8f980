"""torch and stable-baselines3 are needed only where networks are converted (the publisher's
machine), through one extra; without it the refusal names the install line."""

from __future__ import annotations

import importlib
from types import ModuleType

from tickerserve.publishing.conversion import NotConvertible

EXTRA = "networks"
INSTALL = "pip install 'tickerserve[networks]'"
# pip's default index serves torch with its CUDA libraries (several GB); the CPU build is
# what a conversion needs.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
INSTALL_HINT = (
    f"{INSTALL} (torch's CPU build, without the CUDA libraries: "
    f"pip install torch --index-url {CPU_INDEX} first)"
)


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` (``torch``, ``stable_baselines3``) or refuse, naming the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise NotConvertible(
            f"{what} is converted with {missing}, which is not installed here: {INSTALL_HINT}"
        ) from None
