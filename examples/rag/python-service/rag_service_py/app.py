"""The WSGI application: routing, authentication and the error contract. A `/t/{tenant_id}/...`
request is answered in the Rust service's order: bearer token (401), tenant (404 unless the
user holds a role there), the other path ids (404 unless UUIDs), then the handler (query
string and body, role, checks, database). Unknown paths are 404 and known paths with another
method 405 `method_not_allowed`; every error is `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import DBAPIError

from rag_tenancy import NotFound, Tenancy, TenancyError

from .api import ROUTES, Call, Handler, Limits
from .auth import AuthFailure, JwtVerifier
from .errors import ApiError, from_db_error, from_tenancy_error
from .wire import Reply, Request, path_uuid, to_json

log = logging.getLogger("rag_service_py")

StartResponse = Callable[..., Any]

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[a-z_]+\}", "([^/]+)", pattern) + "$")


_TABLE = [(method, _compile(pattern), handler) for method, pattern, _, handler in ROUTES]


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization")
    if value is None:
        raise AuthFailure("missing_token")
    scheme, sep, token = value.partition(" ")
    if not sep or scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure("malformed_token")
    return token.strip()


class App:
    """The service: a WSGI callable over the application-role `Tenancy` (its `check()` must
    have passed) and the JWT verifier."""

    def __init__(self, tenancy: Tenancy, verifier: JwtVerifier, limits: Limits | None = None) -> None:
        self.tenancy = tenancy
        self.verifier = verifier
        self.limits = limits or Limits()

    def handle(self, request: Request) -> Reply:
        """The answer to one request (errors included)."""
        try:
            return self._route(request)
        except ApiError as err:
            return Reply(err.status, err.body())
        except TenancyError as err:
            api = from_tenancy_error(err)
            return Reply(api.status, api.body())
        except DBAPIError as err:
            api = from_db_error(err)
            # Transient faults: retry after a second, as the Rust service says.
            headers = {"retry-after": "1"} if api.status == 503 else {}
            return Reply(api.status, api.body(), headers)
        except Exception:  # the contract: a generic 500, details only in the log
            log.exception("unhandled error")
            return Reply(500, ApiError.internal().body())

    def _route(self, request: Request) -> Reply:
        if request.path == "/healthz":
            if request.method != "GET":
                raise ApiError(405, "method_not_allowed", "method not allowed")
            return Reply(200, None, {"content-type": "text/plain"})
        matched: tuple[Handler, tuple[str, ...]] | None = None
        path_known = False
        for method, pattern, handler in _TABLE:
            found = pattern.match(request.path)
            if found:
                path_known = True
                if method == request.method:
                    matched = (handler, found.groups())
                    break
        if matched is None:
            if path_known:
                raise ApiError(405, "method_not_allowed", "method not allowed")
            raise ApiError.not_found()
        handler, segments = matched
        try:
            user = self.verifier.verify(_bearer(request))
        except AuthFailure as failure:
            raise ApiError.unauthorized(
                f"a valid bearer token is required ({failure.reason})"
            ) from None
        try:
            tenant = uuid.UUID(segments[0])
        except ValueError:
            raise ApiError.not_found() from None
        try:
            context = self.tenancy.authorize(user, tenant)
        except NotFound:
            raise ApiError.not_found() from None
        ids = [path_uuid(s) for s in segments[1:]]
        return handler(Call(self.tenancy, self.limits, context, ids, request))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """WSGI entry point."""
        body = b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.limits.body_limit_bytes:
            reply = Reply(413, ApiError(413, "payload_too_large", "the body exceeds the size limit").body())
        else:
            if length > 0:
                body = environ["wsgi.input"].read(length)
            headers = {
                key[5:].replace("_", "-").lower(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            if "CONTENT_TYPE" in environ:
                headers["content-type"] = environ["CONTENT_TYPE"]
            request = Request(
                method=environ.get("REQUEST_METHOD", "GET"),
                path=environ.get("PATH_INFO", "/"),
                query_string=environ.get("QUERY_STRING", ""),
                headers=headers,
                body=body,
            )
            reply = self.handle(request)
        if reply.status == 200 and reply.headers.get("content-type") == "text/plain":
            payload = b"ok"
        elif reply.status == 204:
            payload = b""
        else:
            payload = to_json(reply.body)
            reply.headers.setdefault("content-type", "application/json")
        out_headers = [(k, v) for k, v in reply.headers.items()]
        out_headers.append(("content-length", str(len(payload))))
        start_response(f"{reply.status} {_REASONS.get(reply.status, '')}".strip(), out_headers)
        return [payload]
