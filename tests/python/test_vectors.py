"""The shared test vectors (context_vectors.json): the Python runtime mints the same tokens and
claims as the Rust runtime (tests/python_vectors.rs checks the Rust side)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, cast

import pytest

from rag_tenancy.runtime import (
    ContextKey,
    Membership,
    Misconfigured,
    ProjectScope,
    ProjectsScope,
    RequestContext,
    ScopedSession,
    begin_statement,
    context_claims,
)

with open(os.path.join(os.path.dirname(__file__), "context_vectors.json"), encoding="utf-8") as f:
    VECTORS: dict[str, Any] = json.load(f)


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=lambda v: v["token"][:12])
def test_python_mints_the_committed_tokens(vector: dict[str, Any]) -> None:
    key = ContextKey.parse(vector["key"])
    assert key.mint_until(vector["claims"], vector["expires"]) == vector["token"]


@pytest.mark.parametrize("vector", VECTORS["claims"], ids=lambda v: v["claims"][-12:])
def test_python_builds_the_committed_claims(vector: dict[str, Any]) -> None:
    memberships = None
    if vector["memberships"] is not None:
        memberships = [Membership(uuid.UUID(p), "r", rank) for p, rank in vector["memberships"]]
    claims = context_claims(uuid.UUID(vector["tenant"]), uuid.UUID(vector["user"]), memberships)
    assert claims == vector["claims"]


def test_keys_are_parsed_and_refused_like_the_rust_runtime() -> None:
    key = ContextKey.parse("k-1:" + "0b" * 32)
    assert key.kid == "k-1"
    assert "0b0b" not in repr(key) and "redacted" in repr(key)
    for bad in ["nocolon", "k1:" + "0b" * 31, "k1:zz", "bad kid:" + "0b" * 32, "k1:abc"]:
        with pytest.raises(Misconfigured):
            ContextKey.parse(bad)


def test_the_statement_pads_the_token_out_of_pg_stat_activity() -> None:
    token = ContextKey.parse("k1:" + "0b" * 32).mint_until("t;u", 1)
    statement = begin_statement(token, 1024)
    assert statement.startswith("BEGIN; /*" + "." * 1024 + "*/ SELECT ")
    assert statement.endswith(f"SELECT \"tenancy\".install_context('{token}')")
    assert statement.index(token) > 1024


def test_scopes_come_only_from_the_runtime() -> None:
    t, u, p = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    owner = [Membership(p, "owner", 3)]
    for make in (
        lambda: ProjectScope(object(), t, u, owner),
        lambda: ProjectsScope(None, t, u, owner),
        lambda: RequestContext(object(), t, u, owner),
        lambda: ScopedSession(object(), cast(Any, None), cast(Any, None)),
    ):
        with pytest.raises(TypeError, match="come"):
            make()
