"""Entry point: ``python bench/run.py [--quick] [--rebuild]`` from the repository root."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.main import main

    raise SystemExit(main())
