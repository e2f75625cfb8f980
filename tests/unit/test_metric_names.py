"""The metric names, read once from metric_names.json (the file the stack's alarms and
dashboards are built from): the runtime's typed view holds every name in it, and a monitor
run emits exactly its figures."""

from __future__ import annotations

import dataclasses

from tests.unit.monitor.test_report import model_report, run_report
from tickerserve.metric_names import MONITOR, PREDICTION, RAW
from tickerserve.monitor.cloudwatch import metric_data, model_figures
from tickerserve.monitor.report import Estimated, OutputDrift


def test_the_typed_view_holds_every_name_of_the_file() -> None:
    prediction, monitor = RAW["prediction"], RAW["monitor"]
    assert dataclasses.asdict(PREDICTION) == {
        **{k: v for k, v in prediction.items() if isinstance(v, str)},
        **prediction["counters"],
        **prediction["gauges"],
        **prediction["per_model"],
    }
    assert dataclasses.asdict(MONITOR) == {
        **{k: v for k, v in monitor.items() if isinstance(v, str)},
        **monitor["figures"],
    }
    names = [*prediction["counters"].values(), *prediction["gauges"].values()]
    assert len(set(names)) == len(names)  # one alarm per name


def test_a_monitor_run_emits_every_figure_of_the_file_per_model_and_at_worst() -> None:
    figures = set(RAW["monitor"]["figures"].values())
    report = model_report()
    estimated = Estimated(accuracy=0.58, realized=None, rows=400, drift_pct=3.3, trusted=True)
    full = dataclasses.replace(
        report,
        output_drift=OutputDrift(kind="classes", rows=400, psi=0.02, level="ok"),
        performance=dataclasses.replace(report.performance, estimated=estimated),
    )
    assert set(model_figures(full)) == figures
    # an estimate its reference does not vouch for is never sent (it could alarm)
    untrusted = dataclasses.replace(
        full,
        performance=dataclasses.replace(
            report.performance, estimated=dataclasses.replace(estimated, trusted=False)
        ),
    )
    assert MONITOR.estimated_drift_pct not in model_figures(untrusted)
    # a figure the run could not compute is left out, not sent as zero
    assert MONITOR.output_psi not in model_figures(model_report())
    entries = metric_data(run_report(full, model_report(drifted=False)))
    per_model = [e for e in entries if "Dimensions" in e]
    assert {d["Name"] for e in per_model for d in e["Dimensions"]} == {MONITOR.model_dimension}
    worst = {e["MetricName"]: e["Value"] for e in entries if "Dimensions" not in e}
    assert set(worst) == figures
    assert worst[MONITOR.feature_drift_max] == 0.4  # the larger of the two models'
    assert worst[MONITOR.switch_recommended] == 0.0  # both were told to watch
