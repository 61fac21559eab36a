"""Request parsing with the Rust service's answers (examples/rag/service/src/input.rs): bodies
must be `application/json` (else 415) within the size limit (else 413), valid JSON (else 422
`malformed_json`) and of the endpoint's shape, unknown fields refused (else 422
`invalid_field`); query strings likewise; unparsable path ids are unknown ids (404)."""

from __future__ import annotations

import datetime
import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import sqlalchemy as sa

from .errors import ApiError

I32_MAX = 2**31 - 1
U32_MAX = 2**32 - 1
MAX_SHORT_TEXT = 1_000
MAX_LONG_TEXT = 100_000
EMBEDDING_DIMENSIONS = 384
MAX_BATCH = 1_000


@dataclass
class Request:
    """One HTTP request as the handlers see it."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Reply:
    """One HTTP answer: status, JSON body (None: empty) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# ---- field kinds -------------------------------------------------------------------------

Kind = Callable[[str, Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def i32(name: str, value: Any) -> int:
    """A signed 32-bit integer."""
    if not _is_int(value) or not -(2**31) <= value <= I32_MAX:
        raise ApiError.invalid_field(name, "expected a 32-bit integer")
    return int(value)


def u32(name: str, value: Any) -> int:
    """An unsigned 32-bit integer."""
    if not _is_int(value) or not 0 <= value <= U32_MAX:
        raise ApiError.invalid_field(name, "expected a non-negative 32-bit integer")
    return int(value)


def f32(name: str, value: Any) -> float:
    """A number (stored as a 32-bit float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError.invalid_field(name, "expected a number")
    return float(value)


def string(name: str, value: Any) -> str:
    """A string."""
    if not isinstance(value, str):
        raise ApiError.invalid_field(name, "expected a string")
    return value


def an_uuid(name: str, value: Any) -> uuid.UUID:
    """A UUID in a string."""
    try:
        return uuid.UUID(string(name, value))
    except ValueError:
        raise ApiError.invalid_field(name, "expected a UUID") from None


def any_json(name: str, value: Any) -> Any:
    """Any JSON value."""
    return value


def floats(name: str, value: Any) -> list[float]:
    """An array of numbers."""
    if not isinstance(value, list):
        raise ApiError.invalid_field(name, "expected an array of numbers")
    return [f32(f"{name}[{i}]", v) for i, v in enumerate(value)]


def objects(item: dict[str, tuple[Kind, bool]]) -> Kind:
    """An array of objects of shape `item`."""

    def parse(name: str, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise ApiError.invalid_field(name, "expected an array")
        return [shape(f"{name}[{i}]", v, item) for i, v in enumerate(value)]

    return parse


def shape(where: str, value: Any, fields: dict[str, tuple[Kind, bool]]) -> dict[str, Any]:
    """`value` as an object with exactly these fields (name -> (kind, required)); a JSON null
    is an absent optional field."""
    if not isinstance(value, dict):
        raise ApiError.invalid_field(where or "body", "expected a JSON object")
    prefix = f"{where}." if where else ""
    for name in value:
        if name not in fields:
            expected = ", ".join(f"`{f}`" for f in fields)
            raise ApiError.invalid_field(
                f"{prefix}{name}", f"unknown field `{name}`, expected one of {expected}"
            )
    out: dict[str, Any] = {}
    for name, (kind, required) in fields.items():
        raw = value.get(name)
        if raw is None:
            if required:
                raise ApiError.invalid_field(f"{prefix}{name}", f"missing field `{name}`")
            continue
        out[name] = kind(f"{prefix}{name}", raw)
    return out


def _no_constants(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def json_body(request: Request, limit: int, fields: dict[str, tuple[Kind, bool]]) -> dict[str, Any]:
    """The request's JSON body of shape `fields`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")):
        raise ApiError(415, "unsupported_media_type", "expected `Content-Type: application/json`")
    if len(request.body) > limit:
        raise ApiError(413, "payload_too_large", "the body exceeds the size limit")
    try:
        value = json.loads(request.body.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "malformed_json", "the body is not valid JSON") from None
    return shape("", value, fields)


def query_params(request: Request, fields: dict[str, tuple[Kind, bool]]) -> dict[str, Any]:
    """The query string as `fields` (values are strings: numbers and UUIDs are parsed)."""
    try:
        parsed = parse_qs(request.query_string, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise ApiError.invalid_field("query string", "unreadable") from None
    raw: dict[str, Any] = {}
    for name, values in parsed.items():
        if len(values) != 1:
            raise ApiError.invalid_field(name, "given more than once")
        text = values[0]
        kind = fields.get(name, (any_json, False))[0]
        if kind in (u32, i32):
            if not text.lstrip("-").isdigit():
                raise ApiError.invalid_field(name, "expected a whole number")
            raw[name] = int(text)
        else:
            raw[name] = text
    return shape("", raw, fields)


def path_uuid(text: str) -> uuid.UUID:
    """A path segment as a UUID; anything else is an unknown id (404)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ApiError.not_found() from None


# ---- checks (examples/rag/service/src/input.rs) ------------------------------------------


def check_text(name: str, value: str, limit: int) -> None:
    """Not blank, at most `limit` bytes, no NUL."""
    if not value.strip():
        raise ApiError.invalid_field(name, "must not be empty")
    check_optional_text(name, value, limit)


def check_optional_text(name: str, value: str, limit: int) -> None:
    """At most `limit` bytes, no NUL."""
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise ApiError.invalid_field(name, f"longer than {limit} bytes")
    if "\0" in value:
        raise ApiError.invalid_field(name, "must not contain NUL")


def check_metadata(name: str, value: Any) -> None:
    """A JSON object without NUL in any string or key."""
    if not isinstance(value, dict):
        raise ApiError.invalid_field(name, "must be a JSON object")

    def has_nul(v: Any) -> bool:
        if isinstance(v, str):
            return "\0" in v
        if isinstance(v, list):
            return any(has_nul(i) for i in v)
        if isinstance(v, dict):
            return any("\0" in k or has_nul(i) for k, i in v.items())
        return False

    if has_nul(value):
        raise ApiError.invalid_field(name, "must not contain NUL")


def check_embedding(name: str, values: list[float]) -> None:
    """384 finite numbers whose cosine distance is defined (the sum of squares in f32 is a
    normal positive number at most f32::MAX / 4)."""
    if len(values) != EMBEDDING_DIMENSIONS:
        raise ApiError.invalid_field(
            name, f"expected {EMBEDDING_DIMENSIONS} numbers, got {len(values)}"
        )
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        array = np.asarray(values, dtype=np.float64).astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ApiError.invalid_field(name, "every number must be finite")
        squares = np.float32(0.0)
        for v in array:
            squares = np.float32(squares + v * v)
    info = np.finfo(np.float32)
    if not math.isfinite(float(squares)) or float(squares) < float(info.tiny):
        raise ApiError.invalid_field(
            name, "must have a non-zero norm (its cosine distance would be undefined)"
        )
    if float(squares) > float(info.max) / 4.0:
        raise ApiError.invalid_field(
            name, "its norm is too large (its cosine distance would be undefined)"
        )


def check_non_negative(name: str, value: int) -> None:
    """Not negative."""
    if value < 0:
        raise ApiError.invalid_field(name, "must not be negative")


# ---- JSON out ----------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [float(v) for v in value]
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> bytes:
    """`value` as JSON (UUIDs as strings, timestamps RFC 3339)."""
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def row(model: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A model instance as a JSON object keyed by column name (as the Rust rows serialize).

    Masked columns (deferred, never loaded: the app role cannot select them) are left out, as
    the Rust row types leave them out."""
    state = sa.inspect(model)
    return {
        attr.columns[0].name: getattr(model, attr.key)
        for attr in state.mapper.column_attrs
        if attr.columns[0].name not in skip and attr.key not in state.unloaded
    }
