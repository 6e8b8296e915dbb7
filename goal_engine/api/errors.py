"""One JSON shape for every error the API returns: ``{"error": {code, message, details}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from goal_engine.configuration.store import Conflict, NotFound, Unprocessable
from goal_engine.core.database import UNAVAILABLE as DATABASE_UNAVAILABLE

_NOT_VALID: dict[str, Any] = {
    "code": "unprocessable",
    "message": "the request is not valid",
    "details": ["goal_type: Input should be 'tag_added', 'purchase_made', ..."],
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_NOT_VALID]})

    code: str
    message: str
    details: list[str] = []


class ErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"error": _NOT_VALID}]})

    error: ErrorDetail


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable",
    503: "unavailable",
}


def error_response(
    status: int, message: str, details: list[str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(code=_CODES.get(status, "error"), message=message, details=details or [])
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


#: For the OpenAPI document: when each error status is answered, and an example of it.
_DOCUMENTED: dict[int, tuple[str, str, list[str]]] = {
    400: ("the body could not be read", "There was an error parsing the body", []),
    401: ("no bearer token, or not a valid one", "invalid token: Signature has expired", []),
    403: ("the token lacks the scope the operation needs", "the token lacks the scope workflows:write", []),
    404: ("no such workflow, goal or enrollment in the token's tenant (or nothing at this path)",
          "workflow not found", []),
    409: ("the workflow already has a goal of this type and criteria", "the workflow already has a goal "
          "of this type with these criteria", []),
    413: ("the body is larger than GOAL_ENGINE_MAX_BODY_BYTES", "the body may be at most 65536 bytes", []),
    422: ("the request is not valid, or cannot be applied: details lists every problem",
          "the request is not valid", ["criteria: tag_added needs tag_id and/or tag_name"]),
    503: ("PostgreSQL cannot be reached (or is restarting): retry later",
          "the database is unavailable, retry later", ["ConnectionRefusedError: Connect call failed"]),
}  # fmt: skip


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route or router for these error statuses, all of them ErrorBody."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        when, message, details = _DOCUMENTED[status]
        example = {"error": {"code": _CODES[status], "message": message, "details": details}}
        documented[status] = {
            "model": ErrorBody,
            "description": when,
            "content": {"application/json": {"example": example}},
        }
    return documented


#: What any operation of the API can answer: every one needs a token and validates its input.
ERROR_RESPONSES = error_responses(400, 401, 403, 413, 422, 503)
#: What an operation under /workflows/{workflow_id} adds: another tenant's resources are 404 too.
NOT_FOUND = error_responses(404)


def _describe(err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path.

    Starlette's own 405 names only the methods of the first route whose path
    matched, though GET and POST of one path are two routes here.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods - {"HEAD"}))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [_describe(e)[:500] for e in exc.errors()]
        return error_response(422, "the request is not valid", details)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, str(exc))

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        # A failure of the connection or the server, not of the request: say so, never a 500.
        reason = f"{type(exc).__name__}: {exc}"[:300]
        return error_response(503, "the database is unavailable, retry later", [reason], {"Retry-After": "5"})

    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, unavailable)

    @app.exception_handler(Unprocessable)
    async def unprocessable(_: Request, exc: Unprocessable) -> JSONResponse:
        return error_response(422, "the request cannot be applied", exc.errors)
