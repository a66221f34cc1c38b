"""The audit log: JSON lines with increasing sequence numbers, private to the user,
rotated by size, continued after a restart, readable after any sequence number, and a
flood of failed authentications summarised instead of written line by line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from manta._private.common.clock import FakeClock
from manta._private.gcs import audit
from manta._private.gcs.audit import AuditLog


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_are_json_lines_in_a_private_file(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path), FakeClock(100.0))
    log.record("job_submit", by="alice", role="submit", submission_id="raysubmit_1")
    log.record("token_revoke", by="ops", token_id="abc")
    log.close()
    path = tmp_path / audit.AUDIT_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first, second = lines(path)
    assert first == {
        "seq": 1,
        "time": 100.0,
        "event": "job_submit",
        "by": "alice",
        "role": "submit",
        "submission_id": "raysubmit_1",
    }
    assert second["seq"] == 2 and second["event"] == "token_revoke"


def test_rotation_restart_and_reading_after_a_sequence_number(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path), FakeClock(), max_bytes=2000, backups=2)
    for i in range(100):
        log.record("kv_put", key=f"k{i}", by="cluster")
    log.close()
    files = sorted(os.listdir(tmp_path))
    assert files == [audit.AUDIT_FILE, f"{audit.AUDIT_FILE}.1", f"{audit.AUDIT_FILE}.2"]
    assert all(os.path.getsize(tmp_path / f) <= 2000 for f in files)
    # A restarted gcs goes on numbering where the file ends.
    again = AuditLog(str(tmp_path), FakeClock(), max_bytes=2000, backups=2)
    again.record("node_join", node_id="n1")
    assert again.read(100, 10) == [again.read(0, 1000)[-1]]
    assert again.read(100, 10)[0]["seq"] == 101
    # Older events come from the files (memory holds only what this process wrote).
    older = again.read(0, 5)
    assert [e["seq"] for e in older] == sorted(e["seq"] for e in older) and older[0]["seq"] > 1
    assert len(again.read(0, 1000)) < 101  # the oldest rotated away: bounded by size
    again.close()


def test_a_flood_of_refusals_is_summarised(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path), FakeClock())
    for i in range(500):
        log.refused(f"127.0.0.1:{i}", "the token is missing or wrong")
    log.close()
    events = lines(tmp_path / audit.AUDIT_FILE)
    assert 1 <= len(events) <= 21
    assert events[0]["event"] == "auth_failed" and events[0]["peer"] == "127.0.0.1:0"


def test_fields_cannot_forge_the_logs_own(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path), FakeClock(5.0))
    log.record("job_stop", **{"seq": 999, "time": 0, "event": "token_create", "by": "x"})
    log.close()
    [entry] = lines(tmp_path / audit.AUDIT_FILE)
    assert entry == {"seq": 1, "time": 5.0, "event": "job_stop", "by": "x"}
