"""Request-level guards of both HTTP APIs: problem+json refusals, a body read timeout, disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dxpulse.http.problem_types import HTTP_ERROR
from dxpulse.http.problems import document_problems, problem

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
"""Status recorded (never sent) for a request whose client went away: nginx's convention."""


class BodyReadTimeout(Exception):
    """The request body did not arrive in time: answered 408 and the connection closed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the request body did not arrive within {timeout_s:g} s")
        self.timeout_s = timeout_s


class BodyReadTimeoutMiddleware:
    """Bounds the time a handler may wait for the request body: the whole body must arrive within
    ``timeout_s`` of the handler's first read, or the read raises BodyReadTimeout.

    Without it a client that declares a Content-Length and sends nothing (or a byte now and then)
    holds a connection and a handler forever: uvicorn has no such timeout of its own.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                # Past the body a read only waits for the disconnect: that may take any time.
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout(self.timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed_receive, send)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown client"


async def _body_timeout(request: Request, error: Exception) -> Response:
    assert isinstance(error, BodyReadTimeout)
    log.info("%s %s from %s: %s; answered 408", request.method, request.url.path, _client(request), error)
    return problem(
        408,
        "body-timeout",
        "Request body not received in time",
        f"{error}; send the request again, with the whole body",
        # What arrived of the body cannot be told from the next request: the connection is closed.
        headers={"Connection": "close"},
    )


async def _client_disconnect(request: Request, error: Exception) -> Response:
    # A client going away is its own business, not the server's failure: one line, no traceback.
    log.info(
        "%s %s from %s: the client went away before the request was answered",
        request.method,
        request.url.path,
        _client(request),
    )
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


async def _http_error(request: Request, error: Exception) -> Response:
    """404 (no route), 405 (no such method on a route) and any other HTTPException, as problems."""
    assert isinstance(error, HTTPException)
    status, method, path = error.status_code, request.method, request.url.path
    phrase = _phrase(status)
    own = error.detail if error.detail != phrase else None
    if status == 404:
        detail = own or f"nothing at {path}; /openapi.json lists this API's paths"
        return problem(404, "not-found", "Not found", detail, headers=error.headers)
    if status == 405:
        allowed = (error.headers or {}).get("Allow", "")
        detail = own or f"{path} does not answer {method}; it answers {allowed}"
        return problem(405, "method-not-allowed", "Method not allowed", detail, headers=error.headers)
    return problem(status, HTTP_ERROR, phrase, own or phrase, headers=error.headers)


def _location(loc: Sequence[Any]) -> tuple[str, str]:
    """(where, field) of a validation error's location, e.g. ("query", "limit")."""
    where = str(loc[0]) if loc else "request"
    field = ".".join(str(part) for part in loc[1:]) or where
    return where, field


async def _invalid_request(request: Request, error: Exception) -> Response:
    """FastAPI's parameter validation, as a problem naming the parameter at fault (and every other)."""
    assert isinstance(error, RequestValidationError)
    errors = []
    for found in error.errors():
        where, field = _location(found.get("loc", ()))
        errors.append({"in": where, "field": field, "detail": str(found.get("msg", "is invalid"))})
    first = errors[0] if errors else {"in": "request", "field": "request", "detail": "is invalid"}
    detail = f"{first['in']} parameter {first['field']}: {first['detail']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more, listed in errors)"
    return problem(422, "invalid-request", "Invalid request", detail, field=first["field"], errors=errors)


async def _internal_error(request: Request, error: Exception) -> Response:
    # Starlette re-raises after answering, so the server still logs the traceback: it is a bug.
    return problem(
        500,
        "internal-error",
        "Internal server error",
        "the server failed on this request; the failure is logged for the operators",
    )


def install_problem_handlers(app: FastAPI, *, body_read_timeout_s: float) -> None:
    """Answer every refusal FastAPI and Starlette make themselves as problem+json, bound the time a
    request body may take, and log a client that goes away as one line.

    404 (no route), 405 (method; with Allow), 408 (body-timeout), 422 (invalid-request: FastAPI's
    parameter validation, in the OpenAPI document too) and 500 (internal-error). Call it after
    ``app.openapi`` is replaced, if it is: the document is amended by wrapping that function.
    """
    app.add_middleware(BodyReadTimeoutMiddleware, timeout_s=body_read_timeout_s)
    app.add_exception_handler(BodyReadTimeout, _body_timeout)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal_error)
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return document_problems(generate())

    app.openapi = openapi  # type: ignore[method-assign]
