"""``semsim annotate``: a local web app in which people annotate reconstructions as the study's annotators did.

- ``storage``: the campaign file (SQLite, WAL): items, annotators, leases, answers; nothing is ever deleted;
- ``server``: the Starlette app (annotator page, JSON API, status page), served by uvicorn;
- ``dataset``: a campaign from a dataset in the SemSim schema, and its answers back into one;
- ``agreement`` / ``status``: Fleiss' kappa and each annotator's agreement with the others.

Needs the ``[annotate]`` extra (``pip install "semsim-metric[annotate]"``) for the server.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = ["Campaign", "create_app", "export_campaign", "open_or_create_campaign"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Campaign": ".storage",
        "create_app": ".server",
        "export_campaign": ".dataset",
        "open_or_create_campaign": ".dataset",
    },
    globals(),
)
