"""What each operator did: rows, blocks, bytes and time, for ``Dataset.stats()`` and the
progress display. Counting is pure; the executor feeds it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

MiB = 1024 * 1024


@dataclass(frozen=True)
class ExecStats:
    """Measured in the worker for one output block: the time spent making it (since the
    previous block of the same task) and the process's peak memory."""

    wall_s: float
    cpu_s: float
    max_rss_bytes: int


@dataclass
class OperatorStats:
    name: str
    tasks_done: int = 0
    blocks_out: int = 0
    rows_out: int = 0
    bytes_out: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    rss_bytes: list[int] = field(default_factory=list)
    rows_per_block: list[int] = field(default_factory=list)
    bytes_per_block: list[int] = field(default_factory=list)

    def add_block(self, rows: int, size: int, exec_stats: ExecStats | None) -> None:
        self.blocks_out += 1
        self.rows_out += rows
        self.bytes_out += size
        self.rows_per_block.append(rows)
        self.bytes_per_block.append(size)
        if exec_stats is not None:
            self.wall_s.append(exec_stats.wall_s)
            self.cpu_s.append(exec_stats.cpu_s)
            self.rss_bytes.append(exec_stats.max_rss_bytes)

    @property
    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else self.started_at
        return max(end - self.started_at, 0.0)

    def summary(self, index: int) -> str:
        lines = [
            f"Operator {index} {self.name}: {self.tasks_done} tasks executed, {self.blocks_out} blocks "
            f"produced in {self.elapsed_s:.2f}s"
        ]
        if self.wall_s:
            lines.append(f"* Remote wall time: {_spread(self.wall_s, 's')}")
            lines.append(f"* Remote cpu time: {_spread(self.cpu_s, 's')}")
            peak = [r / MiB for r in self.rss_bytes]
            lines.append(f"* Peak heap memory usage (MiB): {min(peak):.1f} min, {max(peak):.1f} max")
        if self.rows_per_block:
            lines.append(f"* Output num rows per block: {_spread(self.rows_per_block, '')}")
            lines.append(f"* Output size bytes per block: {_spread(self.bytes_per_block, '')}")
            lines.append(f"* Output rows: {self.rows_out} total; {self.bytes_out / MiB:.2f} MiB total")
            if self.elapsed_s > 0:
                lines.append(f"* Throughput: {self.rows_out / self.elapsed_s:,.0f} rows/s")
        return "\n".join(lines)


def _spread(values: list[float] | list[int], unit: str) -> str:
    mean = statistics.fmean(values)
    if all(isinstance(v, int) for v in values):
        return f"{min(values)} min, {max(values)} max, {mean:.0f} mean, {sum(values)} total"
    return (
        f"{min(values):.3g}{unit} min, {max(values):.3g}{unit} max, {mean:.3g}{unit} mean, "
        f"{sum(values):.3g}{unit} total"
    )


@dataclass
class DatasetStats:
    """The stats of one execution of a dataset, operator by operator."""

    operators: list[OperatorStats] = field(default_factory=list)
    total_s: float = 0.0

    def to_summary(self) -> str:
        parts = [op.summary(i + 1) for i, op in enumerate(self.operators)]
        parts.append(f"Dataset total execution time: {self.total_s:.2f}s")
        return "\n\n".join(parts)
