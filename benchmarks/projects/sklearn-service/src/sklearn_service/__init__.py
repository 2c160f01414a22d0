"""sklearn-service: a logistic regression on the iris data set (shipped inside scikit-learn), served."""

from __future__ import annotations

from functools import cache
from typing import Any

__version__ = "0.1.0"


@cache
def model() -> Any:
    """The fitted model: trained once per process on the iris measurements scikit-learn ships."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_iris()
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(data.data, data.target)


def predict(rows: list[list[float]]) -> list[str]:
    """The iris species of each row of (sepal length, sepal width, petal length, petal width) in cm."""
    from sklearn.datasets import load_iris

    names = load_iris().target_names
    return [str(names[i]) for i in model().predict(rows)]
