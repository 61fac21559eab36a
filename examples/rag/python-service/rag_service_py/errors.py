"""The HTTP error contract shared with the Rust service (`tenancy_runtime::http::ApiError`):
status plus `{"error": {"code": "...", "message": "..."}}`, and the mapping of database errors
onto it (the Rust runtime's `Error::for_sqlstate`)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError

from rag_tenancy import Forbidden, Misconfigured, NotFound, TenancyError

log = logging.getLogger("rag_service_py")


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, human-readable message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON body of the answer."""
        return {"error": {"code": self.code, "message": self.message}}

    @classmethod
    def unauthorized(cls, message: str) -> ApiError:
        """401 `unauthorized`."""
        return cls(401, "unauthorized", message)

    @classmethod
    def not_found(cls) -> ApiError:
        """404 `not_found` (also for what the caller may not know exists)."""
        return cls(404, "not_found", "not found")

    @classmethod
    def forbidden(cls, message: str = "your role does not allow this") -> ApiError:
        """403 `forbidden`."""
        return cls(403, "forbidden", message)

    @classmethod
    def invalid_field(cls, field: str, problem: str) -> ApiError:
        """422 `invalid_field` naming the offending field."""
        return cls(422, "invalid_field", f"{field}: {problem}")

    @classmethod
    def internal(cls) -> ApiError:
        """500 `internal` with a generic message."""
        return cls(500, "internal", "internal error")


_CONFLICT = {"23505", "23P01"}
_INVALID_INPUT = {"23503", "22P02", "23502", "23514", "22001"}
_TRANSIENT_PREFIXES = ("08",)
_TRANSIENT = {"57P01", "57P02", "57P03", "53300", "40001", "40P01"}


def from_tenancy_error(err: TenancyError) -> ApiError:
    """`NotFound` -> 404, `Forbidden` -> 403, anything else (a misconfiguration) -> 500."""
    if isinstance(err, NotFound):
        return ApiError.not_found()
    if isinstance(err, Forbidden):
        return ApiError.forbidden()
    if isinstance(err, Misconfigured):
        log.error("tenancy misconfigured")
    return ApiError.internal()


def from_db_error(err: DBAPIError) -> ApiError:
    """The answer to a database error, as the Rust runtime maps SQLSTATEs: the signed context
    refused (42501 `tenancy: ...`) -> 403 `context_refused`; 42501 -> 403; 23505/23P01 -> 409;
    23503, 22P02, 23502, 23514, 22001 -> 422 `invalid_input`; connection faults and
    `statement_timeout` -> 503; anything else 500. Only the SQLSTATE is logged (the text may
    quote values)."""
    orig = err.orig
    state = getattr(orig, "sqlstate", None) or ""
    primary = ""
    diag = getattr(orig, "diag", None)
    if diag is not None:
        primary = getattr(diag, "message_primary", None) or ""
    if state == "42501" and primary.startswith("tenancy: "):
        log.warning("context refused by the database")
        return ApiError(403, "context_refused", "the database refused the request context")
    if state == "42501":
        return ApiError.forbidden()
    if state in _CONFLICT:
        return ApiError(409, "conflict", "conflicts with an existing row")
    if state in _INVALID_INPUT:
        return ApiError(
            422,
            "invalid_input",
            "the input violates a constraint (e.g. a reference to a row that does not exist)",
        )
    if state == "57014":
        return ApiError(503, "timeout", "a database statement ran past its time limit; retry later")
    if state.startswith(_TRANSIENT_PREFIXES) or state in _TRANSIENT or not state:
        log.warning("transient database fault (sqlstate %s)", state or "none")
        return ApiError(503, "unavailable", "the database is unavailable for a moment; retry later")
    log.error("database error (sqlstate %s)", state)
    return ApiError.internal()
