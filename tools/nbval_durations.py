"""pytest plugin: print each notebook's total nbval time (`-p tools.nbval_durations`).

nbval reports one test per cell; this sums them per notebook (the kernel start counts in
the first cell) and flags chapters over the 120 s budget. It prints; it never fails a run.
"""
from collections import defaultdict

BUDGET = 120.0
_seconds: dict = defaultdict(float)


def pytest_runtest_logreport(report):
    _seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    notebooks = {k: v for k, v in _seconds.items() if k.endswith(".ipynb")}
    if not notebooks:
        return
    terminalreporter.section("per-notebook durations")
    for name, seconds in notebooks.items():
        flag = "  OVER THE 120 s BUDGET" if seconds > BUDGET else ""
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}{flag}")
    terminalreporter.write_line(f"{sum(notebooks.values()):7.1f} s  in all")
