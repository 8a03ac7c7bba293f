"""The raw Titanic CSV: the join of the two R datasets is checked row by row, loads fail clearly."""

import numpy as np
import pandas as pd
import pytest

from level1_notebooks.data import (
    EXPECTED_ROWS,
    TITANIC_SCHEMA,
    build_titanic_csv,
    join_passenger_lists,
    load_titanic,
)
from ml_common.datasets import DataError, load_rdataset


@pytest.fixture(scope="module")
def sources():
    titanicp = load_rdataset("vcdExtra", "Titanicp")
    survival = load_rdataset("carData", "TitanicSurvival", {"rownames": "string"})
    return titanicp, survival


def test_join_gives_every_passenger_a_name(sources):
    passengers = join_passenger_lists(*sources)
    assert len(passengers) == EXPECTED_ROWS
    assert list(passengers.columns) == list(TITANIC_SCHEMA)
    assert passengers["name"].str.contains(",").all()
    assert passengers.loc[0, "name"].startswith("Allen, Miss.")
    assert set(passengers["pclass"]) == {1, 2, 3}
    assert set(passengers["survived"]) == {0, 1}
    assert passengers["age"].isna().sum() == 263
    assert passengers["survived"].mean() == pytest.approx(500 / 1309)


def test_join_refuses_a_shifted_name_list(sources):
    titanicp, survival = sources
    shifted = survival.iloc[np.r_[1 : len(survival), 0]].reset_index(drop=True)
    with pytest.raises(DataError, match="Titanic join refused.*age differs"):
        join_passenger_lists(titanicp, shifted)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("sex", "female", "sex differs in 1 rows"),
        ("age", 99.0, "age differs in 1 rows"),
        ("survived", "died", "survived differs in 1 rows"),
        ("pclass", "3rd", "pclass differs in 1 rows"),
    ],
)
def test_join_refuses_one_disagreeing_row(sources, column, value, problem):
    titanicp, survival = sources
    broken = titanicp.copy()
    row = 1  # a surviving first-class boy aged 0.92: every replacement above disagrees
    broken.loc[row, column] = value
    with pytest.raises(DataError, match=problem):
        join_passenger_lists(broken, survival)


def test_join_refuses_lists_of_different_length(sources):
    titanicp, survival = sources
    with pytest.raises(DataError, match="1308 rows"):
        join_passenger_lists(titanicp.iloc[:-1], survival)


def test_built_csv_reads_back_like_a_download(tmp_path):
    path = build_titanic_csv(tmp_path / "data" / "titanic.csv")
    passengers = load_titanic(path)
    assert passengers.shape == (EXPECTED_ROWS, len(TITANIC_SCHEMA))
    assert pd.read_csv(path).columns.tolist() == list(TITANIC_SCHEMA)


def test_missing_column_is_one_clear_error(tmp_path):
    path = build_titanic_csv(tmp_path / "titanic.csv")
    pd.read_csv(path).drop(columns="sex").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"titanic\.csv: missing column 'sex'"):
        load_titanic(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a readable CSV"), (b"\xff\xfe\x00\x81garbage", "not a readable CSV")],
)
def test_unreadable_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "titanic.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_titanic(path)


def test_absent_file_says_how_to_build_it(tmp_path):
    with pytest.raises(DataError, match="python -m level1_notebooks data"):
        load_titanic(tmp_path / "nowhere.csv")


def test_outcome_outside_zero_one_is_refused(tmp_path):
    path = build_titanic_csv(tmp_path / "titanic.csv")
    frame = pd.read_csv(path)
    frame.loc[:2, "survived"] = 2
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="'survived' must hold 0 or 1, found 3"):
        load_titanic(path)
