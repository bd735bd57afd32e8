"""Who may see the scoreboard: a read token in a bearer header or a sign-in cookie, unless it is public."""

# No `from __future__ import annotations`: FastAPI reads the handlers' parameter types at run time.
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from dxpulse.domain.scoreboard import sign_in_target
from services.query.api.access import MAX_TOKEN_LENGTH, Credentials, check_read_token
from services.query.api.deps import PoolDep
from services.query.api.problems import Unauthorized
from services.query.scoreboard.html import SIGN_IN_PATH, esc, page

COOKIE = "dxpulse_read"
"""Holds the read token itself: HttpOnly, so the pages' script never sees it, and SameSite=Strict, so
no other site's page or form sends it (docs/guide/scoreboard.md)."""
MAX_FORM_BYTES = 4 * MAX_TOKEN_LENGTH
"""A sign-in form is a token and a path; anything longer is refused unread."""


class SignInNeeded(Exception):
    """A page was asked for without a live read token: answered by sending the browser to sign in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def presented_token(request: Request, credentials: Credentials) -> str | None:
    """The bearer token if the request sends one, else the sign-in cookie's."""
    if credentials is not None:
        return credentials.credentials
    return request.cookies.get(COOKIE)


async def require_reader_for_data(request: Request, pool: PoolDep, credentials: Credentials) -> None:
    """The change marker's guard: Unauthorized (401 problem+json) without a live read token."""
    await check_read_token(pool, presented_token(request, credentials))


async def require_reader_for_page(request: Request, pool: PoolDep, credentials: Credentials) -> None:
    """A page's guard: without a live read token the browser is sent to sign in, then back here."""
    try:
        await check_read_token(pool, presented_token(request, credentials))
    except Unauthorized:
        query = request.url.query
        raise SignInNeeded(request.url.path + (f"?{query}" if query else "")) from None


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?{urlencode({'next': sign_in_target(next_path)})}"


async def sign_in_needed(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInNeeded)
    return RedirectResponse(sign_in_url(error.next_path), status_code=303)


def sign_in_page(next_path: str, error: str = "") -> str:
    message = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    content = (
        '<section class="intro sign-in"><h1>Sign in</h1>'
        "<p>The scoreboard needs a read token; an operator makes one with"
        " <code>dxpulse token create reader --label &lt;who&gt;</code>.</p>"
        f'{message}<form method="post" action="{SIGN_IN_PATH}">'
        f'<input type="hidden" name="next" value="{esc(sign_in_target(next_path))}">'
        '<label for="token">Read token</label> <input type="password" id="token" name="token"'
        f' required maxlength="{MAX_TOKEN_LENGTH}" autocomplete="off" autofocus>'
        ' <button type="submit">Sign in</button></form></section>'
    )
    return page("Sign in", content, marker="", refresh_s=0)


async def form_fields(request: Request) -> dict[str, str]:
    """The url-encoded form's fields (first value each); empty if the body is too long to be a sign-in."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4)
    except ValueError:  # more fields than a sign-in form has
        return {}
    return {name: values[0] for name, values in fields.items()}


def keep_token(response: Response, token: str, *, https: bool) -> None:
    """Set the sign-in cookie: Secure when the sign-in form came over https."""
    response.set_cookie(COOKIE, token, path="/", secure=https, httponly=True, samesite="strict")


def forget_token(response: Response, *, https: bool) -> None:
    response.delete_cookie(COOKIE, path="/", secure=https, httponly=True, samesite="strict")
