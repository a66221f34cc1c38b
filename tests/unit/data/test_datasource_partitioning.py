import pyarrow as pa
import pytest

from manta.data.datasource.partitioning import (
    Partitioning,
    PathPartitionFilter,
    PathPartitionParser,
    add_partition_columns,
)


def test_hive_parser_reads_key_value_directories_as_strings():
    parser = PathPartitionParser.of()
    assert parser("/d/year=2020/city=New%20York/f.parquet") == {"year": "2020", "city": "New York"}
    assert parser("/d/plain/f.parquet") == {}


def test_field_types_cast_values():
    parser = PathPartitionParser.of(field_types={"year": int, "ok": bool, "w": float})
    assert parser("/year=2020/ok=True/w=1.5/f") == {"year": 2020, "ok": True, "w": 1.5}


def test_base_dir_limits_where_partitions_are_read(tmp_path):
    parser = PathPartitionParser.of(base_dir=str(tmp_path / "data"))
    assert parser(f"{tmp_path}/data/k=v/f") == {"k": "v"}
    assert parser(f"{tmp_path}/other/k=v/f") == {}


def test_hive_field_names_must_match():
    parser = PathPartitionParser.of(field_names=["year"])
    with pytest.raises(ValueError, match="Expected partition keys"):
        parser("/month=1/f")


def test_directory_style_needs_field_names_and_matching_depth(tmp_path):
    with pytest.raises(ValueError, match="field_names"):
        Partitioning("dir")
    parser = PathPartitionParser.of(style="dir", base_dir=str(tmp_path), field_names=["year", "month"])
    assert parser(f"{tmp_path}/2020/01/f.csv") == {"year": "2020", "month": "01"}
    with pytest.raises(ValueError, match="Expected 2 partition value"):
        parser(f"{tmp_path}/2020/f.csv")


def test_bad_field_type_is_refused():
    with pytest.raises(ValueError, match="field_types"):
        Partitioning("hive", field_types={"a": list})


def test_filter_keeps_paths_whose_partitions_pass():
    keep = PathPartitionFilter.of(lambda p: p.get("year") == "2021")
    paths = ["/year=2020/a", "/year=2021/b", "/c"]
    assert keep(paths) == ["/year=2021/b"]
    assert keep.apply("/year=2021/x") and not keep.apply("/c")


def test_add_partition_columns_appends_typed_constants():
    scheme = Partitioning("hive", field_types={"year": int})
    table = add_partition_columns(pa.table({"x": [1, 2]}), {"year": 2020, "c": "a"}, scheme)
    assert table.schema.field("year").type == pa.int64()
    assert table.to_pylist() == [{"x": 1, "year": 2020, "c": "a"}, {"x": 2, "year": 2020, "c": "a"}]


def test_add_partition_columns_checks_existing_data_column():
    scheme = Partitioning("hive")
    same = add_partition_columns(pa.table({"k": [3, 3]}), {"k": "3"}, scheme)
    assert same.column("k").to_pylist() == [3, 3]
    with pytest.raises(ValueError, match="differs from the data"):
        add_partition_columns(pa.table({"k": [3, 4]}), {"k": "3"}, scheme)
