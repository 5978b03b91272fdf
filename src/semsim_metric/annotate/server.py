"""The annotation web app (Starlette): the annotator page, a JSON API and a campaign status page.

Routes (every ``/api`` request carries the annotator's name and, when the campaign has one, its token in the
``X-Campaign-Token`` header):

- ``GET /`` - the annotator page; ``GET /status`` - the campaign's status page (``?token=`` when needed);
- ``GET /api/campaign`` - class names and whether a token is needed;
- ``POST /api/join`` ``{"name"}`` - start or resume as ``name``;
- ``POST /api/next`` ``{"name"}`` - the item on the annotator's screen (``item_id``, ``ticket``) or ``done``;
- ``GET /api/image/{item_id}?name=&ticket=`` - that item's PNG, nothing else;
- ``POST /api/answer`` ``{"name", "item_id", "ticket", "answer"}`` - record an answer;
- ``POST /api/undo`` ``{"name"}`` - take back the last answer and show that item again;
- ``GET /api/status`` - the status page's numbers as JSON.

Refused requests get a 4xx JSON ``{"error": message}`` and change nothing.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from .._deps import require
from .status import campaign_status
from .storage import AnnotationError, Campaign, CampaignItem

starlette = require("starlette", "the annotation app")

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

__all__ = ["MAX_BODY_BYTES", "create_app"]

#: Largest request body accepted (an answer is under 200 bytes).
MAX_BODY_BYTES = 4096


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise AnnotationError(f"request body too large (limit {MAX_BODY_BYTES} bytes).", 413)
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise AnnotationError(f"request body too large (limit {MAX_BODY_BYTES} bytes).", 413)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise AnnotationError("the request body must be a JSON object.", 400) from None
    if not isinstance(body, dict):
        raise AnnotationError("the request body must be a JSON object.", 400)
    return body


def _item_json(campaign: Campaign, name: str, item: CampaignItem | None) -> dict[str, Any]:
    progress = campaign.progress(name)
    if item is None:
        return {"done": True, "progress": progress}
    return {"done": False, "item_id": item.item_id, "ticket": item.ticket, "progress": progress,
            "image": f"/api/image/{item.item_id}?ticket={item.ticket}"}


def create_app(campaign: Campaign | str, *, title: str = "SemSim annotation") -> Starlette:
    """The ASGI app for ``campaign`` (a ``Campaign`` or the path of its file).

    Examples:
        >>> from semsim_metric.annotate import create_app  # doctest: +SKIP
        >>> import uvicorn; uvicorn.run(create_app("campaign.sqlite"), host="127.0.0.1", port=8765)  # doctest: +SKIP
    """
    campaign = campaign if isinstance(campaign, Campaign) else Campaign(campaign)
    page = resources.files(__package__).joinpath("static/annotate.html").read_text(encoding="utf-8")
    page = page.replace("{{title}}", html.escape(title))

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                if request.url.path.startswith("/api/") and request.url.path != "/api/campaign":
                    campaign.check_token(request.headers.get("x-campaign-token") or request.query_params.get("token"))
                return await handler(request)
            except AnnotationError as err:
                return _error(str(err), err.status)
        return endpoint

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse({"title": title, "class_names": campaign.class_names,
                             "requires_token": campaign.requires_token, "votes_per_item": campaign.votes_per_item})

    async def join(request: Request) -> Response:
        body = await _body(request)
        await run_in_threadpool(campaign.join, body.get("name"))
        return JSONResponse({"name": body["name"], "progress": await run_in_threadpool(campaign.progress, body["name"])})

    async def next_item(request: Request) -> Response:
        body = await _body(request)
        item = await run_in_threadpool(campaign.next_item, body.get("name"))
        return JSONResponse(await run_in_threadpool(_item_json, campaign, body.get("name"), item))

    async def image(request: Request) -> Response:
        png = await run_in_threadpool(campaign.image, request.query_params.get("name"),
                                      request.path_params["item_id"], request.query_params.get("ticket"))
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def answer(request: Request) -> Response:
        body = await _body(request)
        unknown = sorted(set(body) - {"name", "item_id", "ticket", "answer"})
        if unknown:
            raise AnnotationError(f"unexpected field(s) {unknown}; an answer has name, item_id, ticket, answer.", 422)
        progress = await run_in_threadpool(campaign.answer, body.get("name"), body.get("item_id"), body.get("ticket"),
                                           body.get("answer"))
        return JSONResponse({"recorded": True, "progress": progress})

    async def undo(request: Request) -> Response:
        body = await _body(request)
        item = await run_in_threadpool(campaign.undo, body.get("name"))
        return JSONResponse(await run_in_threadpool(_item_json, campaign, body["name"], item))

    async def status_json(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(campaign_status, campaign))

    async def status_page(request: Request) -> Response:
        try:
            campaign.check_token(request.query_params.get("token"))
        except AnnotationError as err:
            return HTMLResponse(f"<p>{html.escape(str(err))} Open /status?token=...</p>", status_code=401)
        return HTMLResponse(render_status(campaign_status(campaign), title), headers={"Cache-Control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(f"no such page: {request.url.path[:80]}", 404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(f"{request.method} is not allowed on {request.url.path[:80]}", 405)

    routes = [
        Route("/", index),
        Route("/status", status_page),
        Route("/api/campaign", guarded(info)),
        Route("/api/join", guarded(join), methods=["POST"]),
        Route("/api/next", guarded(next_item), methods=["POST"]),
        Route("/api/image/{item_id:int}", guarded(image)),
        Route("/api/answer", guarded(answer), methods=["POST"]),
        Route("/api/undo", guarded(undo), methods=["POST"]),
        Route("/api/status", guarded(status_json)),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    app.state.campaign = campaign
    return app


def render_status(status: dict[str, Any], title: str) -> str:
    """The status page: items complete, answers per annotator, agreement."""
    esc = html.escape
    kappa = status["fleiss_kappa"]
    rows = "".join(
        f"<tr><td>{esc(a['name'])}</td><td>{a['answers']}</td><td>{a['agreement_items']}</td>"
        f"<td>{'' if a['agreement'] is None else format(a['agreement'], '.1%')}</td></tr>"
        for a in status["annotators"])
    few = " (too few complete items to trust yet)" if 0 < status["kappa_items"] < 20 else ""
    kinds = "".join(f"<tr><td>{esc(k)}</td><td>{v['items']}</td><td>{v['complete']}</td><td>{v['answers']}</td></tr>"
                    for k, v in status["items"].items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}: status</title>
<meta http-equiv="refresh" content="10"><style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .7rem;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>{esc(title)}: campaign status</h1>
<p>{status['answers']} answers from {len(status['annotators'])} annotators; each item needs
{status['votes_per_item']} different annotators. The page refreshes every 10 s.</p>
<table><tr><th>items</th><th>total</th><th>complete</th><th>answers</th></tr>{kinds}</table>
<p><b>Fleiss' kappa</b> over the {status['kappa_items']} complete items:
{'not defined yet' if kappa is None else format(kappa, '.3f')}{few}</p>
<table><tr><th>annotator</th><th>answers</th><th>items shared with others</th>
<th>agreement with that majority</th></tr>{rows}</table></body></html>"""
