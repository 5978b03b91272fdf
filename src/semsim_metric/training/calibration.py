"""Calibration: P(recognised | distance) as a logistic curve, stored in ``config.calibration``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._deps import require
from ..errors import InvalidInputError

__all__ = ["fit_calibration"]


def fit_calibration(distances: np.ndarray, recognized: np.ndarray, *, fitted_on: str) -> dict[str, Any]:
    """Logistic fit of P(recognised | distance) = sigmoid(intercept + slope * distance).

    SemSim is a distance (``[0, 2]``, lower = more leakage), so a useful fit has a negative ``slope``: the
    closer a reconstruction lies to its original, the likelier people recognised it.

    Args:
        distances: SemSim distances (``[0, 2]``) of annotated rows the model did not train on.
        recognized: their labels, 1 (or ``True``) = recognised, 0 = not; both must occur.
        fitted_on: what the rows were and who annotated them (kept in the model's config).

    Raises:
        InvalidInputError: all rows have the same label.

    Examples:
        >>> cal = fit_calibration(np.array([0.1, 0.2, 0.3, 1.1, 1.2, 1.3, 0.25, 1.0]),
        ...                       np.array([1, 1, 1, 0, 0, 0, 0, 1]), fitted_on="example")
        >>> cal["slope"] < 0, cal["n"]
        (True, 8)
    """
    linear_model = require("sklearn.linear_model", "fitting the calibration")
    y = np.asarray(recognized, dtype=int)
    if y.min() == y.max():
        raise InvalidInputError("calibration needs both recognised and unrecognised rows.")
    lr = linear_model.LogisticRegression(C=1e4, max_iter=1000).fit(np.asarray(distances).reshape(-1, 1), y)
    return {
        "intercept": float(lr.intercept_[0]),
        "slope": float(lr.coef_[0, 0]),
        "fitted_on": fitted_on,
        "n": len(y),
    }
