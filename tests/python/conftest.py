"""Fixtures of the Python suite (docs/python.md). `tests/python_live.rs` runs it with a fresh
migrated database; the live tests fail (never skip) when the database variables are missing."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from rag_tenancy import Tenancy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run this suite through `cargo test --test python_live`")
    return value


def psycopg_url(url: str) -> str:
    """`postgres://...` -> `postgresql+psycopg://...` (SQLAlchemy with psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass
class Fixture:
    """The tenants `tests/python_live.rs` seeded (tenancy_tests::TwoTenants)."""

    tenant_a: uuid.UUID
    a1: uuid.UUID
    tenant_b: uuid.UUID
    b1: uuid.UUID
    alice: uuid.UUID
    bob: uuid.UUID
    a_docs: list[uuid.UUID]
    b_docs: list[uuid.UUID]


@pytest.fixture(scope="session")
def fixture() -> Fixture:
    raw: dict[str, Any] = json.loads(_env("TENANCY_TEST_FIXTURE"))
    ids = {k: uuid.UUID(v) for k, v in raw.items() if isinstance(v, str)}
    return Fixture(
        a_docs=[uuid.UUID(d) for d in raw["a_docs"]],
        b_docs=[uuid.UUID(d) for d in raw["b_docs"]],
        **ids,
    )


@pytest.fixture(scope="session")
def app_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(psycopg_url(_env("TENANCY_TEST_APP_URL")), pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def admin_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(psycopg_url(_env("TENANCY_TEST_ADMIN_URL")))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def tenancy(app_engine: sa.Engine) -> Tenancy:
    _env("TENANCY_CONTEXT_KEY")
    tenancy = Tenancy(app_engine)
    tenancy.check()
    return tenancy


def add_member(admin: sa.Engine, tenant: uuid.UUID, project: uuid.UUID, role: str) -> uuid.UUID:
    """A new user holding `role` in `project` (inserted as the superuser)."""
    user = uuid.uuid4()
    with admin.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) "
                "VALUES (:t, :p, :u, CAST(:r AS tenancy.project_role))"
            ),
            {"t": tenant, "p": project, "u": user, "r": role},
        )
    return user
