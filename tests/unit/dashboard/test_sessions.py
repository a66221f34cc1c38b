"""Browser sessions: ids are random and opaque, end at logout, when idle, at their age
limit, and the oldest go past the bound."""

from __future__ import annotations

from manta.dashboard.sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_gives_back_its_token_until_it_ends() -> None:
    sessions = Sessions(Clock())
    first, second = sessions.create(b"tok-a"), sessions.create(b"tok-b")
    assert first != second and len(first) == 43
    assert sessions.token(first) == b"tok-a" and sessions.token(second) == b"tok-b"
    sessions.end(first)
    assert sessions.token(first) is None and sessions.token(second) == b"tok-b"
    sessions.end(first)  # twice, or an unknown id: nothing happens
    sessions.end(None)


def test_unknown_and_malformed_ids_are_nobody() -> None:
    sessions = Sessions(Clock())
    real = sessions.create(b"tok")
    for bad in (None, "", "x", real[:-1], real + "x", "é" * 43, "\x00" * 43):
        assert sessions.token(bad) is None


def test_sessions_end_when_idle_or_too_old_and_use_keeps_them_alive() -> None:
    clock = Clock()
    sessions = Sessions(clock, idle_s=10.0, max_age_s=25.0)
    used, unused = sessions.create(b"a"), sessions.create(b"b")
    clock.now += 8
    assert sessions.token(used) == b"a"
    clock.now += 8  # 16 s: the unused one was idle too long, the used one only 8 s
    assert sessions.token(unused) is None
    assert sessions.token(used) == b"a"
    clock.now += 9  # 25 s old: past its age limit however much it is used
    assert sessions.token(used) == b"a"
    clock.now += 0.5
    assert sessions.token(used) is None and len(sessions) == 0


def test_past_the_bound_the_oldest_session_goes() -> None:
    sessions = Sessions(Clock(), limit=2)
    ids = [sessions.create(str(i).encode()) for i in range(3)]
    assert [sessions.token(i) for i in ids] == [None, b"1", b"2"]


def test_one_token_logging_in_again_and_again_pushes_out_only_its_own_sessions() -> None:
    sessions = Sessions(Clock(), limit=10, per_token=3)
    admin = sessions.create(b"admin")
    flood = [sessions.create(b"reader") for _ in range(20)]
    assert sessions.token(admin) == b"admin"
    assert [sessions.token(s) for s in flood[-3:]] == [b"reader"] * 3
    assert all(sessions.token(s) is None for s in flood[:-3]) and len(sessions) == 4
