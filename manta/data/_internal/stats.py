"""What each operator did: rows, blocks, bytes and time, for ``Dataset.stats()`` and the
progress display. Counting is pure; the executor feeds it. Per-block figures are kept as
running summaries (count, min, max, total), so a run of millions of blocks holds no list."""

from __future__ import annotations

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
class Summary:
    count: int = 0
    low: float = float("inf")
    high: float = float("-inf")
    total: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        self.total += value

    def describe(self, unit: str = "", whole: bool = False) -> str:
        mean = self.total / self.count if self.count else 0.0
        if whole:
            return f"{self.low:.0f} min, {self.high:.0f} max, {mean:.0f} mean, {self.total:.0f} total"
        return (
            f"{self.low:.3g}{unit} min, {self.high:.3g}{unit} max, {mean:.3g}{unit} mean, "
            f"{self.total:.3g}{unit} total"
        )


@dataclass
class OperatorStats:
    name: str
    tasks_done: int = 0
    blocks_out: int = 0
    rows_out: int = 0
    bytes_out: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    wall_s: Summary = field(default_factory=Summary)
    cpu_s: Summary = field(default_factory=Summary)
    rss_bytes: Summary = field(default_factory=Summary)
    rows_per_block: Summary = field(default_factory=Summary)
    bytes_per_block: Summary = field(default_factory=Summary)

    def add_block(self, rows: int, size: int, exec_stats: ExecStats | None) -> None:
        self.blocks_out += 1
        self.rows_out += rows
        self.bytes_out += size
        self.rows_per_block.add(rows)
        self.bytes_per_block.add(size)
        if exec_stats is not None:
            self.wall_s.add(exec_stats.wall_s)
            self.cpu_s.add(exec_stats.cpu_s)
            self.rss_bytes.add(exec_stats.max_rss_bytes)

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
        if self.wall_s.count:
            lines.append(f"* Remote wall time: {self.wall_s.describe('s')}")
            lines.append(f"* Remote cpu time: {self.cpu_s.describe('s')}")
            low, high = self.rss_bytes.low / MiB, self.rss_bytes.high / MiB
            lines.append(f"* Peak heap memory usage (MiB): {low:.1f} min, {high:.1f} max")
        if self.rows_per_block.count:
            lines.append(f"* Output num rows per block: {self.rows_per_block.describe(whole=True)}")
            lines.append(f"* Output size bytes per block: {self.bytes_per_block.describe(whole=True)}")
            lines.append(f"* Output rows: {self.rows_out} total; {self.bytes_out / MiB:.2f} MiB total")
            if self.elapsed_s > 0:
                lines.append(f"* Throughput: {self.rows_out / self.elapsed_s:,.0f} rows/s")
        return "\n".join(lines)


@dataclass
class DatasetStats:
    """The stats of one execution of a dataset, operator by operator."""

    operators: list[OperatorStats] = field(default_factory=list)
    total_s: float = 0.0

    def to_summary(self) -> str:
        parts = [op.summary(i + 1) for i, op in enumerate(self.operators)]
        parts.append(f"Dataset total execution time: {self.total_s:.2f}s")
        return "\n\n".join(parts)
