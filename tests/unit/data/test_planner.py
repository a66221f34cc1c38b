"""The planner's fusion rules and row counting, without a cluster."""

from __future__ import annotations

from manta.data._internal import logical, planner, transforms
from manta.data._internal.logical import ActorPoolStrategy, TaskPoolStrategy


class _Source:
    def get_name(self) -> str:
        return "Range"


def _read() -> logical.Read:
    return logical.Read((), "ReadRange", _Source(), -1)


def _map(parent: logical.LogicalOp, name: str, **kwargs) -> logical.MapOp:
    step = transforms.MapRows(transforms.UserFn(lambda row: row))
    step.name = name
    return logical.MapOp((parent,), name, step, **kwargs)


def test_consecutive_task_maps_fuse_into_the_read():
    root = planner.plan(_map(_map(_read(), "Map(f)"), "Map(g)"))
    assert root.kind == "read"
    assert root.name == "ReadRange->Map(f)->Map(g)"
    assert [step.name for step in root.chain] == ["Map(f)", "Map(g)"]


def test_a_map_with_other_resources_does_not_fuse():
    root = planner.plan(_map(_map(_read(), "Map(f)"), "Map(g)", remote_args={"num_gpus": 1}))
    assert root.kind == "map" and root.name == "Map(g)"
    assert root.inputs[0].name == "ReadRange->Map(f)"


def test_default_resources_compare_equal_to_explicit_ones():
    root = planner.plan(_map(_read(), "Map(f)", remote_args={"num_cpus": 1, "num_gpus": 0}))
    assert root.name == "ReadRange->Map(f)"


def test_an_actor_map_takes_in_task_maps_but_not_the_read():
    read_then_actor = planner.plan(_map(_read(), "MapBatches(M)", compute=ActorPoolStrategy(size=2)))
    assert read_then_actor.kind == "map" and read_then_actor.inputs[0].kind == "read"
    chain = _map(_map(_map(_read(), "Map(f)", remote_args={"num_cpus": 2}), "Map(g)", remote_args={"num_cpus": 2}),
                 "MapBatches(M)", compute=ActorPoolStrategy(size=2), remote_args={"num_cpus": 2})  # fmt: skip
    root = planner.plan(chain)
    assert root.name == "Map(f)->Map(g)->MapBatches(M)"
    assert isinstance(root.compute, ActorPoolStrategy)


def test_nothing_fuses_after_an_actor_map():
    actor = _map(_read(), "MapBatches(M)", compute=ActorPoolStrategy(size=1))
    root = planner.plan(_map(actor, "Map(g)"))
    assert root.name == "Map(g)" and root.inputs[0].name == "MapBatches(M)"


def test_different_concurrency_caps_do_not_fuse():
    root = planner.plan(_map(_map(_read(), "Map(f)"), "Map(g)", compute=TaskPoolStrategy(size=1)))
    assert root.name == "Map(g)"


def test_a_batched_map_does_not_fuse_into_a_read_but_does_into_a_map():
    batched = planner.plan(_map(_read(), "MapBatches(f)", min_rows_per_bundle=100))
    assert batched.name == "MapBatches(f)"
    fused = planner.plan(
        _map(_map(_map(_read(), "A"), "B", min_rows_per_bundle=10), "C", min_rows_per_bundle=50)
    )
    assert fused.name == "B->C" and fused.min_rows_per_bundle == 50


def test_limits_and_all_to_all_stay_stages_of_their_own():
    limited = planner.plan(logical.Limit((_map(_read(), "Map(f)"),), "limit=5", 5))
    assert limited.kind == "limit" and limited.inputs[0].name == "ReadRange->Map(f)"
    shuffled = planner.plan(_map(logical.AllToAll((_read(),), "RandomShuffle", "random_shuffle"), "Map(g)"))
    assert shuffled.name == "Map(g)" and shuffled.inputs[0].kind == "all_to_all"


def test_a_dataset_used_twice_gets_a_tree_of_its_own_on_each_side():
    base = _map(_read(), "Map(f)")
    root = planner.plan(logical.Union((base, base), "Union"))
    left, right = root.inputs
    assert left is not right and left.name == right.name == "ReadRange->Map(f)"


def test_known_row_counts():
    def rows(read: logical.Read) -> int:
        return 100

    read = _read()
    assert planner.known_num_rows(read, rows) == 100
    assert planner.known_num_rows(_map(read, "Map(f)", keeps_rows=True), rows) == 100
    assert planner.known_num_rows(_map(read, "Filter(f)"), rows) is None
    assert planner.known_num_rows(logical.Limit((read,), "limit", 7), rows) == 7
    assert planner.known_num_rows(logical.Union((read, read), "Union"), rows) == 200
    assert planner.known_num_rows(read, lambda r: None) is None


def test_schemas_known_without_running():
    import pyarrow as pa

    schema = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.float64())])
    read = _read()

    def known(op):
        return planner.known_schema(op, lambda r: schema, lambda blocks: None)

    shuffled = logical.AllToAll((read,), "RandomShuffle", "random_shuffle")
    assert known(logical.Limit((shuffled,), "limit", 3)) == schema
    projected = logical.MapOp((read,), "Project", transforms.Project(select=["c", "a"]))
    assert known(projected).names == ["c", "a"]
    renamed = logical.MapOp((read,), "Rename", transforms.Project(rename={"a": "x"}))
    assert known(renamed).names == ["x", "b", "c"]
    assert known(logical.MapOp((read,), "Drop", transforms.Project(drop=["b"]))).names == ["a", "c"]
    assert known(logical.MapOp((read,), "Project", transforms.Project(select=["nope"]))) is None
    assert known(_map(read, "Map(f)")) is None  # a function's output is known only by running it
    assert known(logical.AllToAll((read,), "Aggregate", "aggregate")) is None
