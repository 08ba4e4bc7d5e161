"""Tables for the terminal: the figures, and the ratios against the issue's targets (no pass/fail)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from stream.bench.stats import BenchResult, ratios
from stream.bench.triton_bench import Cell

_UNITS = {
    "raw_aiokafka_eps": "events/s",
    "naive_faust_eps": "events/s",
    "liftstream_eps": "events/s",
    "p50_ms": "ms",
    "p99_ms": "ms",
    "rss_mb_per_100k_users": "MiB",
}


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def bench_tables(result: BenchResult) -> list[Table]:
    figures = Table(title=f"liftstream bench: {result.meta.get('events')} events, "
                          f"load average {result.meta.get('load_average_at_start', ['?'])[0]}")  # fmt: skip
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    figures.add_column("unit")
    for key, value in result.to_json().items():
        if key != "meta":
            figures.add_row(key, _num(value), _UNITS[key])
    targets = Table(title="against the targets (a benchmark: no pass/fail)")
    for column, justify in (("ratio", "left"), ("measured", "right"), ("target", "right"), ("met", "left")):
        targets.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in ratios(result):
        sign = ">=" if r.higher_is_better else "<="
        met = "–" if r.met is None else ("yes" if r.met else "no")
        targets.add_row(r.name, _num(r.measured, 2), f"{sign} {r.target:g}", met)
    return [figures, targets]


def triton_table(cells: list[Cell]) -> Table:
    table = Table(title="Triton gRPC throughput")
    table.add_column("model", no_wrap=True)
    for column in ("batch", "in flight", "requests", "rows/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for c in cells:
        table.add_row(c.model, str(c.batch), str(c.concurrency), str(c.requests), _num(c.rows_per_s, 0),
                      _num(c.p50_ms), _num(c.p99_ms))  # fmt: skip
    return table


def show(tables: list[Table]) -> None:
    console = Console()
    for table in tables:
        console.print(table)
