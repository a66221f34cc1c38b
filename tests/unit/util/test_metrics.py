"""manta.util.metrics: Ray's constructors and errors, Manta's clash checks, and what a
record leaves in the process's table for its next report."""

from __future__ import annotations

import pickle

import pytest

from manta._private.common import user_metrics as um
from manta.util.metrics import Counter, Gauge, Histogram


@pytest.fixture(autouse=True)
def table(monkeypatch: pytest.MonkeyPatch) -> um.ProcessMetrics:
    """A fresh process table for each test (the real one is the process's)."""
    fresh = um.ProcessMetrics()
    monkeypatch.setattr(um, "_PROCESS", fresh)
    return fresh


def reported(table: um.ProcessMetrics) -> dict[tuple[str, tuple[str, ...]], object]:
    taken = table.take()
    assert taken is not None
    return {(name, tuple(tags)): value for name, tags, value in taken[1]}


def test_values_of_each_kind_are_recorded_with_their_tags(table: um.ProcessMetrics) -> None:
    hits = Counter("hits", description="Cache hits.", tag_keys=("cache",))
    hits.inc(tags={"cache": "users"})
    hits.inc(2.5, tags={"cache": "users"})
    level = Gauge("level", tag_keys=("tank",)).set_default_tags({"tank": "a"})
    level.set(3)
    level.set(7)
    level.set(None)  # nothing, as in Ray
    latency = Histogram("latency", boundaries=[10, 1], tag_keys=())
    for value in (0.5, 1, 5, 50):
        latency.observe(value)
    assert reported(table) == {
        ("hits", ("users",)): 3.5,
        ("level", ("a",)): 7,
        # Boundaries sorted; a value equal to a boundary is in its bucket (Prometheus' le).
        ("latency", ()): [2.0, 1.0, 1.0, 56.5],
    }
    assert table.take() is None  # taken once
    hits.inc(tags={"cache": "users"})
    assert reported(table) == {("hits", ("users",)): 4.5}  # cumulative


def test_tags_given_override_the_defaults(table: um.ProcessMetrics) -> None:
    counter = Counter("requests", tag_keys=("route", "code")).set_default_tags({"route": "/", "code": "200"})
    counter.inc(tags={"code": "500"})
    assert reported(table) == {("requests", ("/", "500")): 1.0}
    assert counter.info == {
        "name": "requests",
        "description": "",
        "tag_keys": ("route", "code"),
        "default_tags": {"route": "/", "code": "200"},
    }


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: Counter("c").inc(0), ValueError, "value must be >0, got 0"),
        (lambda: Counter("c").inc(-1), ValueError, "value must be >0, got -1"),
        (lambda: Counter("c").inc("1"), TypeError, "value must be int or float"),  # type: ignore[arg-type]
        (lambda: Gauge("g").set("x"), TypeError, "value must be int or float"),  # type: ignore[arg-type]
        (lambda: Counter("c", tag_keys=("a", "b")).inc(), ValueError, "Missing value for tag key(s): a,b."),
        (lambda: Counter("c", tag_keys=("a",)).inc(tags={"a": 1}), TypeError, "Tag values must be str"),  # type: ignore[dict-item]
        (
            lambda: Counter("c", tag_keys=("a",)).inc(tags={"a": "1", "zz": "2"}),
            ValueError,
            "Unrecognized tag key zz",
        ),
        (
            lambda: Counter("c", tag_keys=("a",)).set_default_tags({"q": "1"}),
            ValueError,
            "Unrecognized tag key q.",
        ),
        (
            lambda: Counter("c", tag_keys=("a",)).set_default_tags({"a": 1}),
            TypeError,
            "Tag values must be str",
        ),  # type: ignore[dict-item]
        (lambda: Counter(""), ValueError, "Empty name is not allowed"),
        (lambda: Counter("c", tag_keys=["a"]), TypeError, "tag_keys should be a tuple type"),  # type: ignore[arg-type]
        (lambda: Counter("c", tag_keys=(1,)), TypeError, "Tag keys must be str"),  # type: ignore[arg-type]
        (lambda: Counter("c", tag_keys=("a b",)), ValueError, "not a valid Prometheus label name"),
        (lambda: Counter("c", tag_keys=("WorkerId",)), ValueError, "is reserved"),
        (lambda: Histogram("h"), ValueError, "boundaries argument should be provided"),
        (lambda: Histogram("h", boundaries=[]), ValueError, "boundaries argument should be provided"),
        (lambda: Histogram("h", boundaries=[0, 1]), ValueError, "Invalid `boundaries` argument at index 0"),
    ],
)
def test_bad_input_raises_rays_errors(call, error, text) -> None:
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_a_name_prometheus_refuses_warns_and_records_nothing(table: um.ProcessMetrics) -> None:
    with pytest.warns(UserWarning, match="Invalid metric name: bad name"):
        counter = Counter("bad name")
    counter.inc()
    assert table.take() is None
    with pytest.warns(UserWarning):
        with pytest.raises(ValueError, match="Invalid `boundaries`"):
            Histogram("bad name", boundaries=[-1])  # checked all the same, as Ray does


def test_a_name_with_a_colon_still_works_with_rays_future_warning(table: um.ProcessMetrics) -> None:
    with pytest.warns(FutureWarning, match="contains a : character"):
        Gauge("a:b").set(1)
    assert reported(table) == {("a:b", ()): 1}


def test_the_same_metric_may_be_defined_again(table: um.ProcessMetrics) -> None:
    Counter("runs", tag_keys=("fn",)).inc(tags={"fn": "f"})
    Counter("runs", description="another text is fine", tag_keys=("fn",)).inc(tags={"fn": "f"})
    assert reported(table) == {("runs", ("f",)): 2.0}


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        (lambda: Counter("x"), lambda: Gauge("x"), "already defined as a counter with no tag keys"),
        (lambda: Counter("x", tag_keys=("a",)), lambda: Counter("x", tag_keys=("b",)), "tag keys ('a',)"),
        (
            lambda: Histogram("x", boundaries=[1]),
            lambda: Histogram("x", boundaries=[2]),
            "boundaries [1.0]",
        ),
        # Exported under one name: ray_x (the counter's samples are ray_x_total).
        (lambda: Counter("x_total"), lambda: Gauge("x"), "would be exported as 'ray_x'"),
        (
            lambda: Histogram("x", boundaries=[1]),
            lambda: Gauge("x_count"),
            "would be exported as 'ray_x_count'",
        ),
    ],
)
def test_a_clashing_name_is_an_error_at_definition(first, second, text) -> None:
    first()
    with pytest.raises(ValueError, match="choose another name") as info:
        second()
    assert text in str(info.value)


@pytest.mark.parametrize(
    "make", [lambda: Gauge("tasks"), lambda: Counter("actors"), lambda: Gauge("node_mem_used")]
)
def test_a_name_of_mantas_own_metrics_is_an_error(make) -> None:
    with pytest.raises(ValueError, match="clashes with Manta's own metric"):
        make()


def test_metrics_pickle_as_ray_pickles_them(table: um.ProcessMetrics) -> None:
    histogram = Histogram("sizes", "Sizes.", boundaries=[1.0, 2.0], tag_keys=("k",))
    copy = pickle.loads(pickle.dumps(histogram))
    assert isinstance(copy, Histogram) and copy.info["boundaries"] == [1.0, 2.0]
    assert copy.info["tag_keys"] == ("k",)
    counter = pickle.loads(pickle.dumps(Counter("n", tag_keys=("k",))))
    counter.inc(tags={"k": "v"})
    assert reported(table) == {("n", ("v",)): 1.0}


def test_a_pickled_metric_leaves_its_default_tags_behind_as_rays_does(table: um.ProcessMetrics) -> None:
    # Ray 2.60: pickle.loads(pickle.dumps(Counter("c", tag_keys=("a",)).set_default_tags(
    # {"a": "x"}))).info["default_tags"] == {}
    counter = Counter("n", tag_keys=("k",)).set_default_tags({"k": "v"})
    copy = pickle.loads(pickle.dumps(counter))
    assert copy.info["default_tags"] == {} and copy.info["tag_keys"] == ("k",)
    with pytest.raises(ValueError, match="Missing value for tag key"):
        copy.inc()
