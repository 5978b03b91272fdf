"""The annotation web app (Starlette): the annotator page, a JSON API and a campaign status page.

Who may do what (the trust model, in full in ``docs/reliability.md``):

- the **campaign token** (optional, shared by everyone the owner invites) is needed to *join* and to read the
  status; it travels in the ``X-Campaign-Token`` header, never in a URL;
- joining gives each annotator **a secret of their own** (an HttpOnly, SameSite=Strict cookie, or
  ``Authorization: Bearer`` for scripts) and shows it as their *resume code*; every call that reads an image or
  records, undoes or asks for an answer is made with it, so nobody can act as another annotator;
- every request passes ``security.RequestGuard`` (Host, Origin and content-type checks, no framing), and a
  client that fails secrets too often is answered 429.

Routes:

- ``GET /`` - the annotator page; ``GET /status`` - the status page (asks for the token when there is one);
- ``GET /api/campaign`` - class names and whether a token is needed;
- ``POST /api/join`` ``{"name", "resume_code"?}`` - start, or come back under a name that joined before;
- ``GET /api/me`` - who this session is, and their progress;
- ``POST /api/next`` - the item on the annotator's screen (``item_id``, ``ticket``), ``waiting`` or ``done``;
- ``GET /api/image/{item_id}?ticket=`` - that item's PNG, nothing else;
- ``POST /api/answer`` ``{"item_id", "ticket", "answer"}`` - record an answer;
- ``POST /api/undo`` - take back the last answer and show that item again;
- ``GET /api/status`` (JSON) and ``GET /api/status.html`` - the status page's numbers.

Refused requests get a 4xx JSON ``{"error": message}`` (503 when the campaign file cannot be written) and
change nothing.

The route handlers are methods of the private ``_Handlers`` class, which holds the app's state (campaign, pages,
session cookie name, failure limiter); ``create_app`` builds one and hands its methods to the routes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import sqlite3
from importlib import resources
from typing import Any

from .._deps import require
from .._progress import logger
from .security import FailureLimiter, HostRule, RequestGuard
from .status import campaign_status
from .storage import AnnotationError, Campaign, CampaignItem, name_key

starlette = require("starlette", "the annotation app")

from starlette.applications import Starlette  # noqa: E402 - after require(), which names the extra to install
from starlette.concurrency import run_in_threadpool  # noqa: E402 - after require(), which names the extra to install
from starlette.middleware import Middleware  # noqa: E402 - after require(), which names the extra to install
from starlette.requests import Request  # noqa: E402 - after require(), which names the extra to install
from starlette.responses import HTMLResponse, JSONResponse, Response  # noqa: E402 - after require(), which names the extra to install
from starlette.routing import Route  # noqa: E402 - after require(), which names the extra to install

__all__ = ["MAX_BODY_BYTES", "create_app"]

#: Largest request body accepted (an answer is under 200 bytes).
MAX_BODY_BYTES = 4096
#: How long the session cookie lasts (the resume code works as long as the campaign).
SESSION_SECONDS = 30 * 24 * 3600
#: How long the page waits before asking again when everything left is on others' screens.
RETRY_SECONDS = 15


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise AnnotationError(f"request body too large (limit {MAX_BODY_BYTES} bytes).", 413)
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise AnnotationError(f"request body too large (limit {MAX_BODY_BYTES} bytes).", 413)
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AnnotationError("the request body must be a JSON object.", 400) from None
    if not isinstance(body, dict):
        raise AnnotationError("the request body must be a JSON object.", 400)
    return body


def _csp(page: str) -> str:
    """A Content-Security-Policy that allows exactly the page's own inline ``<script>`` and ``<style>``."""

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        return " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks
        )

    return (
        f"default-src 'none'; script-src {hashes('script') or chr(39) + 'none' + chr(39)}; "
        f"style-src {hashes('style') or chr(39) + 'none' + chr(39)}; img-src 'self'; connect-src 'self'; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _page(name: str, title: str) -> tuple[str, dict[str, str]]:
    text = resources.files(__package__).joinpath(f"static/{name}").read_text(encoding="utf-8")
    text = text.replace("{{title}}", html.escape(title))
    return text, {"Cache-Control": "no-store", "Content-Security-Policy": _csp(text)}


class _Handlers:
    """The app's state (campaign, pages, session cookie name, failure limiter) and its route handlers."""

    def __init__(
        self,
        campaign: Campaign,
        title: str,
        leases_per_client: int | None,
        max_failures: int,
        failure_window_seconds: float,
    ) -> None:
        """Load the two pages, name the session cookie after the campaign's seed and start the failure limiter."""
        self.campaign = campaign
        self.title = title
        self.page, self.page_headers = _page("annotate.html", title)
        self.status_shell, self.status_headers = _page("status.html", title)
        self.cookie = f"semsim_session_{campaign.meta['seed'][:8]}"
        self.limiter = FailureLimiter(max_failures, failure_window_seconds)
        self.leases_per_client = leases_per_client

    @staticmethod
    def client_of(request: Request) -> str:
        """The client's address (empty when unknown)."""
        return request.client.host if request.client else ""

    def checked(self, request: Request, check: Any, value: Any) -> Any:
        """Run a secret check, counting failures per client and refusing clients over the limit."""
        client = self.client_of(request)
        if self.limiter.blocked(client):
            raise AnnotationError(
                f"too many wrong tokens or resume codes from this address; wait "
                f"{self.limiter.retry_after(client)} s.",
                429,
            )
        try:
            return check(value)
        except AnnotationError as err:
            if err.status == 401:
                self.limiter.failed(client)
            raise

    def check_campaign_token(self, request: Request) -> None:
        """Refuse a request without the campaign token (when the campaign has one)."""
        self.checked(request, self.campaign.check_token, request.headers.get("x-campaign-token"))

    def session_secret(self, request: Request) -> str | None:
        """The annotator's secret: ``Authorization: Bearer``, else the session cookie."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.cookies.get(self.cookie)

    def annotator(self, request: Request, body: dict[str, Any] | None = None) -> str:
        """The name the session's secret belongs to; a body naming someone else is refused."""
        name = self.checked(request, self.campaign.annotator_for, self.session_secret(request))
        claimed = (body or {}).get("name")
        if claimed is not None and (not isinstance(claimed, str) or name_key(claimed) != name_key(name)):
            raise AnnotationError(f"you are signed in as {name!r}; you cannot act for anyone else.", 403)
        return name

    def guarded(self, handler: Any) -> Any:
        """The endpoint that runs ``handler`` and answers its errors as JSON (429, 503, 500 included)."""

        async def endpoint(request: Request) -> Response:
            """Run the handler; turn its errors into JSON answers."""
            try:
                return await handler(request)
            except AnnotationError as err:
                retry = (
                    {"Retry-After": str(self.limiter.retry_after(self.client_of(request)))}
                    if err.status == 429
                    else None
                )
                return _error(str(err), err.status, retry)
            except sqlite3.OperationalError as err:
                logger.error("campaign %s cannot be written: %s", self.campaign.path, err)
                return _error(
                    "the campaign file cannot be written right now (read-only or disk full); nothing was "
                    "recorded. Tell the person who runs the campaign.",
                    503,
                )
            except Exception:
                logger.exception("annotation app: unexpected error on %s", request.url.path)
                return _error("internal error; nothing was recorded.", 500)

        return endpoint

    def item_json(self, name: str, item: CampaignItem | None) -> dict[str, Any]:
        """The answer to next/undo: the item to show, ``waiting``, or ``done``, with the progress."""
        progress = self.campaign.progress(name)
        if item is not None:
            return {
                "done": False,
                "item_id": item.item_id,
                "ticket": item.ticket,
                "progress": progress,
                "image": f"/api/image/{item.item_id}?ticket={item.ticket}",
            }
        if progress["held_by_others"]:
            return {"done": False, "waiting": True, "retry_after": RETRY_SECONDS, "progress": progress}
        return {"done": True, "progress": progress}

    async def index(self, request: Request) -> Response:
        """``GET /``: the annotator page."""
        return HTMLResponse(self.page, headers=self.page_headers)

    async def status_page(self, request: Request) -> Response:
        """``GET /status``: the status page's shell."""
        return HTMLResponse(self.status_shell, headers=self.status_headers)

    async def info(self, request: Request) -> Response:
        """``GET /api/campaign``: class names and whether a token is needed."""
        return JSONResponse(
            {
                "title": self.title,
                "class_names": self.campaign.class_names,
                "requires_token": self.campaign.requires_token,
                "votes_per_item": self.campaign.votes_per_item,
            }
        )

    async def join(self, request: Request) -> Response:
        """``POST /api/join``: start or resume under a name; sets the session cookie."""
        body = await _body(request)
        self.check_campaign_token(request)
        resume = (
            body.get("resume_code")
            if isinstance(body.get("resume_code"), str)
            else self.session_secret(request)
        )
        secret = await run_in_threadpool(self.campaign.join, body.get("name"), resume_code=resume)
        name = await run_in_threadpool(self.campaign.annotator_for, secret)
        response = JSONResponse(
            {
                "name": name,
                "resume_code": secret,
                "progress": await run_in_threadpool(self.campaign.progress, name),
            }
        )
        response.set_cookie(self.cookie, secret, max_age=SESSION_SECONDS, httponly=True, samesite="strict")
        return response

    async def me(self, request: Request) -> Response:
        """``GET /api/me``: who this session is, and their progress."""
        name = self.annotator(request)
        return JSONResponse({"name": name, "progress": await run_in_threadpool(self.campaign.progress, name)})

    async def next_item(self, request: Request) -> Response:
        """``POST /api/next``: the item on the annotator's screen, ``waiting`` or ``done``."""
        name = self.annotator(request, await _body(request))
        item = await run_in_threadpool(
            self.campaign.next_item,
            name,
            client=self.client_of(request),
            max_client_leases=self.leases_per_client,
        )
        return JSONResponse(await run_in_threadpool(self.item_json, name, item))

    async def image(self, request: Request) -> Response:
        """``GET /api/image/{item_id}?ticket=``: that item's PNG."""
        name = self.annotator(request)
        png = await run_in_threadpool(
            self.campaign.image, name, request.path_params["item_id"], request.query_params.get("ticket")
        )
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def answer(self, request: Request) -> Response:
        """``POST /api/answer``: record an answer."""
        body = await _body(request)
        unknown = sorted(set(body) - {"name", "item_id", "ticket", "answer"})
        if unknown:
            raise AnnotationError(
                f"unexpected field(s) {unknown}; an answer has item_id, ticket, answer.", 422
            )
        name = self.annotator(request, body)
        progress = await run_in_threadpool(
            self.campaign.answer, name, body.get("item_id"), body.get("ticket"), body.get("answer")
        )
        return JSONResponse({"recorded": True, "progress": progress})

    async def undo(self, request: Request) -> Response:
        """``POST /api/undo``: take back the last answer and show that item again."""
        name = self.annotator(request, await _body(request))
        item = await run_in_threadpool(self.campaign.undo, name)
        return JSONResponse(await run_in_threadpool(self.item_json, name, item))

    async def status_json(self, request: Request) -> Response:
        """``GET /api/status``: the status numbers as JSON."""
        self.check_campaign_token(request)
        return JSONResponse(await run_in_threadpool(campaign_status, self.campaign))

    async def status_html(self, request: Request) -> Response:
        """``GET /api/status.html``: the status numbers as the status page's HTML."""
        self.check_campaign_token(request)
        status = await run_in_threadpool(campaign_status, self.campaign)
        return HTMLResponse(render_status(status, self.title), headers={"Cache-Control": "no-store"})

    @staticmethod
    async def not_found(request: Request, exc: Exception) -> Response:
        """The JSON 404."""
        return _error(f"no such page: {request.url.path[:80]}", 404)

    @staticmethod
    async def not_allowed(request: Request, exc: Exception) -> Response:
        """The JSON 405."""
        return _error(f"{request.method} is not allowed on {request.url.path[:80]}", 405)

    def routes(self) -> list[Route]:
        """Every route: the two pages unguarded, the API behind ``guarded``."""
        guarded = self.guarded
        return [
            Route("/", self.index),
            Route("/status", self.status_page),
            Route("/api/campaign", guarded(self.info)),
            Route("/api/join", guarded(self.join), methods=["POST"]),
            Route("/api/me", guarded(self.me)),
            Route("/api/next", guarded(self.next_item), methods=["POST"]),
            Route("/api/image/{item_id:int}", guarded(self.image)),
            Route("/api/answer", guarded(self.answer), methods=["POST"]),
            Route("/api/undo", guarded(self.undo), methods=["POST"]),
            Route("/api/status", guarded(self.status_json)),
            Route("/api/status.html", guarded(self.status_html)),
        ]


def create_app(
    campaign: Campaign | str,
    *,
    title: str = "SemSim annotation",
    hosts: HostRule | None = None,
    leases_per_client: int | None = 4,
    max_failures: int = 10,
    failure_window_seconds: float = 60.0,
) -> Starlette:
    """The ASGI app for ``campaign`` (a ``Campaign`` or the path of its file).

    Args:
        campaign: the campaign, or the path of its file.
        title: the page title.
        hosts: the ``Host`` names it answers (default: the loopback names, for a server on 127.0.0.1).
        leases_per_client: at most this many images on screen at once from one client address across all names
            (``None``: no limit), so that one computer cannot reserve every image under many names.
        max_failures: wrong tokens or session secrets a client address may send within
            ``failure_window_seconds`` before it is answered 429 for the rest of the window.
        failure_window_seconds: see ``max_failures``.

    Raises:
        AnnotationError: the campaign file does not exist or is not a campaign.

    Examples:
        >>> from semsim_metric.annotate import create_app  # doctest: +SKIP
        >>> import uvicorn; uvicorn.run(create_app("campaign.sqlite"), host="127.0.0.1", port=8765)  # doctest: +SKIP
    """
    campaign = campaign if isinstance(campaign, Campaign) else Campaign(campaign)
    handlers = _Handlers(campaign, title, leases_per_client, max_failures, failure_window_seconds)
    app = Starlette(
        routes=handlers.routes(),
        exception_handlers={404: handlers.not_found, 405: handlers.not_allowed},
        middleware=[Middleware(RequestGuard, hosts=hosts or HostRule.for_bind_address("127.0.0.1"))],
    )
    app.state.campaign = campaign
    return app


def render_status(status: dict[str, Any], title: str) -> str:
    """The status page's body (HTML, every value escaped): items complete, answers per annotator, agreement."""
    esc = html.escape
    kappa = status["fleiss_kappa"]
    rows = "".join(
        f"<tr><td>{esc(a['name'])}</td><td>{a['answers']}</td><td>{a['agreement_items']}</td>"
        f"<td>{'' if a['agreement'] is None else format(a['agreement'], '.1%')}</td></tr>"
        for a in status["annotators"]
    )
    few = " (too few complete items to trust yet)" if 0 < status["kappa_items"] < 20 else ""
    kinds = "".join(
        f"<tr><td>{esc(k)}</td><td>{v['items']}</td><td>{v['complete']}</td><td>{v['answers']}</td></tr>"
        for k, v in status["items"].items()
    )
    return f"""<h1>{esc(title)}: campaign status</h1>
<p>{status["answers"]} answers from {len(status["annotators"])} annotators; each item needs
{status["votes_per_item"]} different annotators. The page refreshes every 10 s.</p>
<table><tr><th>items</th><th>total</th><th>complete</th><th>answers</th></tr>{kinds}</table>
<p><b>Fleiss' kappa</b> over the {status["kappa_items"]} complete items:
{"not defined yet" if kappa is None else format(kappa, ".3f")}{few}</p>
<table><tr><th>annotator</th><th>answers</th><th>items shared with others</th>
<th>agreement with that majority</th></tr>{rows}</table>"""
