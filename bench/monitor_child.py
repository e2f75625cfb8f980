"""One measured monitor run in a fresh process pinned to one core (``python -m
bench.monitor_child monitor|json STORE``); prints one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from bench.common import vm_status


def main() -> None:
    mode, root = sys.argv[1], Path(sys.argv[2])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if mode == "json":
        from tickerserve.layout import CAPTURE_PREFIX, partition_prefix
        from tickerserve.monitor.capture_reader import days, iter_lines
        from tickerserve.storage.store import LocalStore

        store = LocalStore(root)
        started = time.perf_counter()
        rows = 0
        for day in days(date(2026, 11, 2), date(2026, 11, 9)):
            for info in store.list(partition_prefix(CAPTURE_PREFIX, day.isoformat())):
                blob = store.get(info.key)
                assert blob is not None
                for lines in iter_lines(blob.data):
                    rows += len([json.loads(line) for line in lines])
        print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows,
                          "peak_rss": vm_status()["VmHWM"]}))  # fmt: skip
        return
    from tickerserve.layout import DEFAULT_REGISTRY_KEY
    from tickerserve.monitor import capture_reader
    from tickerserve.monitor.evaluate import run_monitor
    from tickerserve.monitor.report import Period
    from tickerserve.monitor.run import complete
    from tickerserve.storage.store import LocalStore

    store = LocalStore(root)
    started = time.perf_counter()
    report = run_monitor(
        store, registry_key=DEFAULT_REGISTRY_KEY,
        period=Period(date(2026, 11, 2), date(2026, 11, 9)),
    )  # fmt: skip
    done = complete(store, DEFAULT_REGISTRY_KEY, report, write_history=True)
    seconds = time.perf_counter() - started
    actions: dict[str, int] = {}
    for m in report.models:
        actions[m.action] = actions.get(m.action, 0) + 1
    print(json.dumps({
        "seconds": seconds, "rows": report.capture.lines, "peak_rss": vm_status()["VmHWM"],
        "outcomes": report.outcomes.request_ids, "history": len(done.history),
        "actions": ", ".join(f"{k} {v}" for k, v in sorted(actions.items())),
        "parser": capture_reader._loads.__module__,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
