"""Row-wise features, the grouped imputer, the baseline rule and the model factory."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score

from level1_notebooks.data import build_titanic_csv, load_titanic
from level1_notebooks.features import (
    FEATURE_COLUMNS,
    MODEL_NAMES,
    GroupMedianImputer,
    SexOnlyRule,
    add_features,
    extract_title,
    make_model,
)


@pytest.fixture(scope="module")
def featured(tmp_path_factory):
    path = build_titanic_csv(tmp_path_factory.mktemp("data") / "titanic.csv")
    return add_features(load_titanic(path))


def test_titles_are_extracted_merged_and_grouped():
    names = pd.Series(
        [
            "Allen, Miss. Elisabeth Walton",
            "Allison, Master. Hudson Trevor",
            "Aubart, Mme. Leontine Pauline",
            "Rothes, the Countess. of (Lucy",
            "Smith, Ms. Jane",
            "Brown, Dr. Arthur",
        ]
    )
    assert extract_title(names).tolist() == ["Miss", "Master", "Mrs", "Rare", "Miss", "Rare"]


def test_every_passenger_gets_a_title_and_a_family(featured):
    assert featured["title"].notna().all()
    assert set(featured["title"]) == {"Mr", "Mrs", "Miss", "Master", "Rare"}
    assert (featured["family_size"] == featured["sibsp"] + featured["parch"] + 1).all()
    assert featured["surname"].nunique() == 875
    # Titles carry sex: no "Mr" is a woman, no "Mrs" a man.
    assert (featured.loc[featured["title"] == "Mr", "sex"] == "male").all()
    assert (featured.loc[featured["title"] == "Mrs", "sex"] == "female").all()


def test_group_median_imputer_matches_pandas_on_the_fitted_rows(featured):
    expected = featured["age"].fillna(featured.groupby("title")["age"].transform("median"))
    filled = GroupMedianImputer().fit_transform(featured[["age", "title"]])
    np.testing.assert_allclose(filled.ravel(), expected.to_numpy())


def test_group_median_imputer_learns_from_training_rows_only():
    train = pd.DataFrame({"age": [2.0, 4.0, 30.0, 40.0], "title": ["Master"] * 2 + ["Mr"] * 2})
    test = pd.DataFrame(
        {"age": [np.nan, np.nan, np.nan, 70.0], "title": ["Master", "Mr", "Dr", "Mr"]}
    )
    imputer = GroupMedianImputer().fit(train)
    # Test rows' own values (70) never change what is filled in; an unseen group gets the
    # overall training median.
    assert imputer.transform(test).ravel().tolist() == [3.0, 35.0, 17.0, 70.0]
    assert imputer.get_feature_names_out().tolist() == ["age"]


def test_sex_only_rule_learns_women_survive(featured):
    rule = SexOnlyRule().fit(featured, featured["survived"])
    predictions = rule.predict(pd.DataFrame({"sex": ["female", "male"]}))
    assert predictions.tolist() == [1, 0]
    assert (rule.predict(featured) == featured["survived"]).mean() == pytest.approx(0.780, abs=1e-3)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_default_model_beats_chance_in_a_pipeline(featured, name):
    # The file is sorted by class, so the folds must be shuffled.
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(
        make_model(name, seed=0), featured[FEATURE_COLUMNS], featured["survived"], cv=folds
    )
    assert scores.mean() > 0.75


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        make_model("svm", seed=0)
