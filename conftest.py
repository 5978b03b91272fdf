"""Root conftest: applies the network guard to the doctests under src/ as well as to tests/."""

import tests._guard  # noqa: F401
