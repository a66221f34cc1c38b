"""Metrics (tags 190-199): processes report their user-defined metrics to their node
daemon; the head's HTTP service asks each daemon for its metrics as Prometheus text.
"""

from __future__ import annotations

from typing import Any

from manta._private.rpc.codec import message


@message(190)
class ReportMetrics:
    """A process's user metrics that changed since its last report (a one-way message to
    its node daemon). Values are cumulative, so a lost report only delays what a later
    one carries. Shapes: ``common/user_metrics.py``."""

    definitions: list[Any]  # [name, kind, description, tag_keys, boundaries]
    samples: list[Any]  # [name, tag_values, value]; a histogram's value: [bucket counts..., sum]


@message(191)
class GetMetrics:
    """This daemon's metrics in Prometheus' text format (a str)."""
