"""The scoreboard's routes: its pages, its change marker for live updates, signing in and its assets."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time.
import pathlib
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from dxpulse.domain.scoreboard import sign_in_target
from schemas.events import REPORTER_PATTERN
from services.query.api.access import check_read_token
from services.query.api.deps import INDICATOR_PATTERN, PERIOD_PATTERN, PoolDep
from services.query.api.problems import Unauthorized
from services.query.scoreboard.html import ASSETS, MARKER_PATH, SIGN_IN_PATH, SIGN_OUT_PATH, esc, page
from services.query.scoreboard.pages import Scoreboard, UnknownName
from services.query.scoreboard.reads import ScoreboardReads
from services.query.scoreboard.signin import (
    SignInNeeded,
    forget_token,
    form_fields,
    keep_token,
    require_reader_for_data,
    require_reader_for_page,
    sign_in_needed,
    sign_in_page,
)

ASSETS_DIR = pathlib.Path(__file__).resolve().parent / "assets"
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'"
"""The pages load nothing from another origin: a browser refuses even a stray external link."""

PeriodParam = Annotated[
    str | None, Query(pattern=PERIOD_PATTERN, description="The period shown, e.g. 2024-H1.")
]


async def get_scoreboard(request: Request, pool: PoolDep) -> Scoreboard:
    settings = request.app.state.settings
    lookup = request.app.state.lookup
    return Scoreboard(
        lookup.catalog,
        lookup.registry,
        ScoreboardReads(pool),
        settings.query_scoreboard_refresh_s,
        sign_out=not settings.query_public,
    )


ScoreboardDep = Annotated[Scoreboard, Depends(get_scoreboard)]


def html_response(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body,
        status_code=status,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


router = APIRouter(include_in_schema=False)
"""The pages: behind ``require_reader_for_page`` unless the scoreboard is public."""
data_router = APIRouter(include_in_schema=False)
"""What the pages' script fetches: behind ``require_reader_for_data`` unless the scoreboard is public."""
sign_in_router = APIRouter(include_in_schema=False)


@router.get("/")
async def national_page(scoreboard: ScoreboardDep, period: PeriodParam = None) -> HTMLResponse:
    return html_response(await scoreboard.national(period))


@router.get("/indicators/{indicator}")
async def indicator_page(
    scoreboard: ScoreboardDep,
    indicator: Annotated[str, Path(pattern=INDICATOR_PATTERN)],
    period: PeriodParam = None,
    map: Literal["today"] | None = None,
) -> HTMLResponse:
    return html_response(await scoreboard.indicator(indicator, period, today_map=map == "today"))


@router.get("/units/{reporter}")
async def unit_page(
    scoreboard: ScoreboardDep,
    reporter: Annotated[str, Path(pattern=REPORTER_PATTERN)],
    period: PeriodParam = None,
) -> HTMLResponse:
    return html_response(await scoreboard.unit(reporter, period))


@data_router.get(MARKER_PATH)
async def change_marker(scoreboard: ScoreboardDep) -> Response:
    """Changes whenever a figure or an alert does; the pages poll it and refetch themselves."""
    marker = await scoreboard.reads.change_marker()
    return Response(
        f'{{"marker":"{marker}"}}', media_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def unknown_name(request: Request, error: Exception) -> Response:
    content = (
        f'<section class="intro"><h1>Not found</h1><p>{esc(error)}.</p>'
        '<p><a href="/">National scoreboard</a></p></section>'
    )
    return html_response(page("Not found", content, marker="", refresh_s=0), status=404)


@sign_in_router.get(SIGN_IN_PATH)
async def sign_in_form(next: str = "/") -> HTMLResponse:
    return html_response(sign_in_page(next))


@sign_in_router.post(SIGN_IN_PATH)
async def sign_in(request: Request, pool: PoolDep) -> Response:
    """A live read token is kept in the sign-in cookie and the browser goes on to ``next``."""
    fields = await form_fields(request)
    token, next_path = fields.get("token", "").strip(), fields.get("next", "/")
    try:
        await check_read_token(pool, token or None)
    except Unauthorized:
        refused = sign_in_page(next_path, "That token is unknown, revoked or not a read token.")
        answer = html_response(refused, status=401)
        answer.headers["WWW-Authenticate"] = 'Bearer realm="dxpulse"'
        return answer
    signed_in = RedirectResponse(sign_in_target(next_path), status_code=303)
    keep_token(signed_in, token, https=request.url.scheme == "https")
    return signed_in


@sign_in_router.post(SIGN_OUT_PATH)
async def sign_out(request: Request) -> Response:
    signed_out = RedirectResponse(SIGN_IN_PATH, status_code=303)
    forget_token(signed_out, https=request.url.scheme == "https")
    return signed_out


def install_scoreboard(app: FastAPI, *, public: bool) -> None:
    """Serve the scoreboard's pages at /, /indicators/<id> and /units/<id>, its assets from this package;
    unless ``public``, only to a reader (a read token as a bearer header or the sign-in cookie)."""
    app.include_router(router, dependencies=[] if public else [Depends(require_reader_for_page)])
    app.include_router(data_router, dependencies=[] if public else [Depends(require_reader_for_data)])
    app.include_router(sign_in_router)
    app.mount(ASSETS, StaticFiles(directory=str(ASSETS_DIR)), name="scoreboard-assets")
    app.add_exception_handler(UnknownName, unknown_name)
    app.add_exception_handler(SignInNeeded, sign_in_needed)
