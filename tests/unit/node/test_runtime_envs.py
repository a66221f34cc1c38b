"""A node's record of the runtime envs its workers set up (pure)."""

from __future__ import annotations

from manta._private.node import runtime_envs
from manta._private.node.runtime_envs import RuntimeEnvRecords


def test_an_env_is_kept_once_with_its_live_workers_and_last_outcome():
    records = RuntimeEnvRecords()
    records.report(b"w0", "bad", "not json", True, "", 50)  # a bad report is left out
    records.report(b"w0", "big", '{"x": "' + "y" * 70_000 + '"}', True, "", 50)
    records.report(b"w1", "k", '{"pip": ["x"]}', False, "RuntimeEnvSetupError: no x", 100)
    assert records.rows(lambda w: True) == [['{"pip": ["x"]}', False, 100, "RuntimeEnvSetupError: no x", 0]]
    records.report(b"w2", "k", '{"pip": ["x"]}', True, "", 200)
    records.report(b"w3", "k", '{"pip": ["x"]}', True, "", 300)
    # The first setup's time stays; a success clears the error; ended workers drop out.
    assert records.rows(lambda w: w != b"w2") == [['{"pip": ["x"]}', True, 100, "", 1]]


def test_the_oldest_envs_go_first_past_the_cap(monkeypatch):
    monkeypatch.setattr(runtime_envs, "MAX_ENVS", 2)
    records = RuntimeEnvRecords()
    for key in ("a", "b", "c"):
        records.report(b"w", key, f'{{"k": "{key}"}}', True, "", 1)
    assert [row[0] for row in records.rows(lambda w: True)] == ['{"k": "b"}', '{"k": "c"}']
