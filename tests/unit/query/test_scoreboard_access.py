"""Who sees the scoreboard: a reader (bearer header or sign-in cookie) unless it is public."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from dxpulse.domain.scenario import sample_reports
from dxpulse.domain.scoreboard import sign_in_target
from services.query.app import create_app
from services.query.scoreboard.pages import Scoreboard
from services.query.scoreboard.routes import get_scoreboard
from services.query.scoreboard.signin import COOKIE
from services.query.settings import QuerySettings
from tests.unit.query.scoreboard_fakes import READ_TOKEN, REPORTER_TOKEN, MemoryReads, TokenPool

PAGES = ("/", "/?period=2024-H1", "/indicators/emc_connection", "/units/province:79")


def _client(
    catalog: Catalog, registry: Registry, *, public: bool, base_url: str = "http://scoreboard"
) -> httpx.AsyncClient:
    settings = QuerySettings(query_public=public)
    app = create_app(settings, catalog=catalog, registry=registry)
    app.state.pool = TokenPool()
    reads = MemoryReads(catalog, registry, sample_reports(catalog, registry))
    board = Scoreboard(catalog, registry, reads, 5.0, lambda: date(2026, 1, 1), sign_out=not public)  # type: ignore[arg-type]
    app.dependency_overrides[get_scoreboard] = lambda: board
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def private(catalog: Catalog, registry: Registry) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(catalog, registry, public=False) as http:
        yield http


def _sign_in_next(answer: httpx.Response) -> str:
    """The ``next`` of a redirect to the sign-in form."""
    assert answer.status_code == 303, answer.text
    location = urlsplit(answer.headers["location"])
    assert location.path == "/sign-in"
    return parse_qs(location.query)["next"][0]


async def test_a_private_page_sends_the_browser_to_sign_in_and_back(private: httpx.AsyncClient) -> None:
    for path in PAGES:
        assert _sign_in_next(await private.get(path)) == path
    # An unknown name says nothing either before signing in.
    assert (
        _sign_in_next(await private.get("/indicators/no_such_indicator")) == "/indicators/no_such_indicator"
    )
    form = await private.get("/sign-in", params={"next": "/units/province:79"})
    assert form.status_code == 200
    assert '<input type="hidden" name="next" value="/units/province:79">' in form.text


async def test_the_marker_answers_401_problem_json_without_a_token(private: httpx.AsyncClient) -> None:
    refused = await private.get("/scoreboard/marker")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://dxpulse.dev/problems/unauthorized"
    assert (await private.get("/scoreboard/marker", headers={"Cookie": f"{COOKIE}={READ_TOKEN}"})).json() == {
        "marker": "1"
    }


async def test_signing_in_sets_a_strict_http_only_cookie_and_goes_to_next(private: httpx.AsyncClient) -> None:
    answer = await private.post(
        "/sign-in", data={"token": READ_TOKEN, "next": "/units/province:79?period=2024"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/units/province:79?period=2024"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={READ_TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # asked for over http: a browser would not send a Secure cookie back


async def test_the_cookie_is_secure_when_signing_in_over_https(catalog: Catalog, registry: Registry) -> None:
    async with _client(catalog, registry, public=False, base_url="https://scoreboard") as http:
        answer = await http.post("/sign-in", data={"token": READ_TOKEN, "next": "/"})
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


async def test_a_bad_token_shows_the_form_again_with_401(private: httpx.AsyncClient) -> None:
    for token in ("dxp_wrong", "", "x" * 600):
        answer = await private.post("/sign-in", data={"token": token, "next": "/indicators/emc_connection"})
        assert answer.status_code == 401, token[:20]
        assert "set-cookie" not in answer.headers
        assert "unknown, revoked or not a read token" in answer.text
        assert 'name="next" value="/indicators/emc_connection"' in answer.text
    # A body far longer than a sign-in form is not read to its end.
    oversized = await private.post("/sign-in", data={"token": "x" * 1_000_000, "next": "/"})
    assert (oversized.status_code, oversized.headers.get("set-cookie")) == (401, None)


async def test_the_cookie_grants_the_pages_and_signing_out_forgets_it(private: httpx.AsyncClient) -> None:
    await private.post("/sign-in", data={"token": READ_TOKEN, "next": "/"})
    assert private.cookies.get(COOKIE) == READ_TOKEN
    for path in PAGES:
        page = await private.get(path)
        assert page.status_code == 200, path
        assert 'action="/sign-out"' in page.text
    signed_out = await private.post("/sign-out")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/sign-in")
    assert private.cookies.get(COOKIE) is None
    assert _sign_in_next(await private.get("/")) == "/"


async def test_a_bearer_read_token_grants_the_pages(private: httpx.AsyncClient) -> None:
    bearer = {"Authorization": f"Bearer {READ_TOKEN}"}
    for path in (*PAGES, "/scoreboard/marker"):
        assert (await private.get(path, headers=bearer)).status_code == 200, path


async def test_a_reporters_token_is_refused(private: httpx.AsyncClient) -> None:
    bearer = {"Authorization": f"Bearer {REPORTER_TOKEN}"}
    assert _sign_in_next(await private.get("/", headers=bearer)) == "/"
    assert (await private.get("/scoreboard/marker", headers=bearer)).status_code == 401
    assert _sign_in_next(await private.get("/", headers={"Cookie": f"{COOKIE}={REPORTER_TOKEN}"})) == "/"
    refused = await private.post("/sign-in", data={"token": REPORTER_TOKEN, "next": "/"})
    assert refused.status_code == 401


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
async def test_next_never_leaves_the_site(private: httpx.AsyncClient, target: str) -> None:
    answer = await private.post("/sign-in", data={"token": READ_TOKEN, "next": target})
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    assert "evil" not in (await private.get("/sign-in", params={"next": target})).text


URL_LIKE = st.text(alphabet=st.sampled_from("/\\\t\n:@e"), max_size=6)
"""Texts made of what turns a path into another site's address."""


@given(st.one_of(st.text(), URL_LIKE, URL_LIKE.map(lambda rest: "/" + rest)))
@example("//evil.example")
@example("/\\evil.example")
@example("/\n/evil.example")
def test_a_sign_in_target_is_a_path_on_this_site(requested: str) -> None:
    target = sign_in_target(requested)
    assert target.startswith("/")
    assert not target.startswith("//")
    assert "\\" not in target
    assert target.isprintable()
    assert (urlsplit(target).scheme, urlsplit(target).netloc) == ("", "")
    assert target in (requested, "/")


async def test_a_public_scoreboard_needs_no_token(catalog: Catalog, registry: Registry) -> None:
    async with _client(catalog, registry, public=True) as anonymous:
        for path in (*PAGES, "/scoreboard/marker"):
            page = await anonymous.get(path)
            assert page.status_code == 200, path
            assert "sign-out" not in page.text


async def test_the_assets_need_no_token(private: httpx.AsyncClient) -> None:
    for asset in ("scoreboard.js", "scoreboard.css"):
        assert (await private.get(f"/scoreboard/assets/{asset}")).status_code == 200, asset
