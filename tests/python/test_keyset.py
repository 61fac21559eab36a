"""Keyset pages of the generated Python repositories against a real migrated PostgreSQL
(tests/python_live.rs, `python_keyset_pages_seek`, sets the database up): `list` sends the
statements the Rust repositories send (tenancy-core/src/rust/statements.rs): the first page;
in a one-project scope with the cursor in it, `project_id = .. AND id > ..`; otherwise the
union of the rest of the cursor's project and the scope's later projects. Walking every page
gives exactly what one ORDER BY gives, and a late page is an index scan that starts at the
cursor (a row comparison `(project_id, id) > (..)` positions the scan by the project only and
reads the cursor's project from its start)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import psycopg_url
from rag_tenancy import AsyncTenancy, Tenancy, Viewer
from rag_tenancy.models import Document
from rag_tenancy.repositories import AsyncDocuments, Documents, DocumentCursor

# Rows per project, in project id order: a large project, a small one, an empty one (the user
# is a member; it has no rows) and another large one. 6,300 rows make the row comparison read
# about 40 more index pages for a cursor near the end of the project than for the first page;
# 6,300 and 6,307 are multiples of 7 and 6,300 of 100: pages of 7 and of 100 end at the last
# row of a project.
SIZES = [6300, 7, 0, 2500]


@dataclass
class Seed:
    tenant: uuid.UUID
    user: uuid.UUID
    #: The user's projects, sorted (the scope's order).
    projects: list[uuid.UUID]
    #: A project of the same tenant, between the user's projects, the user is no member of.
    foreign: uuid.UUID


@pytest.fixture(scope="module")
def seed(admin_engine: sa.Engine) -> Seed:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    ids = sorted(uuid.uuid4() for _ in range(len(SIZES) + 1))
    # The project the user is no member of sits between the first and the second of theirs.
    foreign = ids.pop(1)
    with admin_engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO tenants (id, name, slug) VALUES (:t, 'keyset', 'keyset')"),
            {"t": tenant},
        )
        for k, project in enumerate([*ids, foreign]):
            conn.execute(
                sa.text(
                    "INSERT INTO projects (tenant_id, id, name, slug) VALUES (:t, :p, :n, :n)"
                ),
                {"t": tenant, "p": project, "n": f"p{k}"},
            )
        for project in ids:
            conn.execute(
                sa.text(
                    "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) "
                    "VALUES (:t, :p, :u, 'viewer')"
                ),
                {"t": tenant, "p": project, "u": user},
            )
        for project, size in [*zip(ids, SIZES), (foreign, 500)]:
            conn.execute(
                sa.text(
                    "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) "
                    "SELECT :t, :p, 'd' || n, 'h' || n, :u FROM generate_series(1, :size) AS n"
                ),
                {"t": tenant, "p": project, "u": user, "size": size},
            )
    with admin_engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE documents"
        )
    return Seed(tenant, user, ids, foreign)


@pytest.fixture
def statements(app_engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the app engine sends while the test runs, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(app_engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(app_engine, "before_cursor_execute", record)


def _walk(
    tx: Any, limit: int, total: int
) -> tuple[list[tuple[uuid.UUID, uuid.UUID]], list[DocumentCursor]]:
    """Every page of `Documents.list`: the rows' (project_id, id) and each page's cursor. A walk
    longer than the scope's `total` rows fails (a page that repeats a row never ends)."""
    seen: list[tuple[uuid.UUID, uuid.UUID]] = []
    cursors: list[DocumentCursor] = []
    page = Documents.list(tx, limit=limit)
    while page:
        assert len(page) <= limit
        assert len(seen) + len(page) <= total, "more rows than the scope holds"
        seen.extend((d.project_id, d.id) for d in page)
        cursors.append(Documents.cursor(page[-1]))
        page = Documents.list(tx, after=cursors[-1], limit=limit)
    return seen, cursors


def _ordered(tx: Any, projects: list[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """The scope's rows by one ORDER BY, through the same scoped session."""
    rows = tx.session.execute(
        sa.select(Document.project_id, Document.id)
        .where(Document.tenant_id == tx.scope.tenant_id, Document.project_id.in_(projects))
        .order_by(Document.project_id, Document.id)
    )
    return [(r[0], r[1]) for r in rows]


def _scopes(tenancy: Tenancy, seed: Seed) -> dict[str, Any]:
    ctx = tenancy.authorize(seed.user, seed.tenant)
    return {
        "one project": ctx.project(seed.projects[0]).require(Viewer),
        "several projects": ctx.all_projects().with_at_least(Viewer),
    }


def test_seed(tenancy: Tenancy, seed: Seed) -> None:
    """The scope of several projects is the user's four; the foreign project has rows."""
    scope = _scopes(tenancy, seed)["several projects"]
    assert scope.project_ids == seed.projects
    assert seed.projects[0] < seed.foreign < seed.projects[1]


@pytest.mark.parametrize("limit", [100, 7, 1000])
def test_walking_every_page_gives_one_order_by(
    tenancy: Tenancy, seed: Seed, statements: list[tuple[str, Any]], limit: int
) -> None:
    for name, scope in _scopes(tenancy, seed).items():
        with tenancy.session(scope) as tx:
            expected = _ordered(tx, scope.project_ids)
            statements.clear()
            seen, cursors = _walk(tx, limit, len(expected))
            tx.commit()
        assert len(expected) == (SIZES[0] if name == "one project" else sum(SIZES)), name
        assert seen == expected, f"{name}, limit {limit}: the pages are not the ORDER BY"
        assert len(set(seen)) == len(seen)
        assert {p for p, _ in seen} <= set(scope.project_ids)
        later = [s for s, _ in statements if "public.documents" in s][1:]
        assert len(later) == len(cursors)
        if name == "one project":
            # Every later page is the in-project form: no union, no row comparison.
            assert all("UNION" not in s and re.search(r"\.id > ", s) for s in later), later[:1]
        else:
            assert all("UNION ALL" in s for s in later), later[:1]
            # A page ended at the last row of the first project (and the pages still equal
            # the ORDER BY: the next one started at the next project's first row).
            last_rows = {p: max(i for q, i in expected if q == p) for p, _ in expected}
            ends = {(c.project_id, c.id) for c in cursors}
            if limit in (100, 7):
                assert (seed.projects[0], last_rows[seed.projects[0]]) in ends


def test_a_cursor_at_the_last_row_of_a_project(tenancy: Tenancy, seed: Seed) -> None:
    scope = _scopes(tenancy, seed)["several projects"]
    with tenancy.session(scope) as tx:
        expected = _ordered(tx, scope.project_ids)
        for project in seed.projects:
            rows = [i for p, i in expected if p == project]
            if not rows:
                continue
            at = expected.index((project, rows[-1]))
            page = Documents.list(tx, after=DocumentCursor(project, rows[-1]), limit=50)
            assert [(d.project_id, d.id) for d in page] == expected[at + 1 : at + 51]
        # A cursor in the empty project and one in the foreign project (not in the scope).
        for project in (seed.projects[2], seed.foreign):
            page = Documents.list(tx, after=DocumentCursor(project, uuid.UUID(int=0)), limit=50)
            first = next(k for k, (p, _) in enumerate(expected) if p > project)
            assert [(d.project_id, d.id) for d in page] == expected[first : first + 50]
        tx.commit()
    # A one-project scope with the cursor in another project: the rows after the cursor in
    # key order, as in a scope of several (all of the small project's, or none).
    small = tenancy.authorize(seed.user, seed.tenant).project(seed.projects[1]).require(Viewer)
    with tenancy.session(small) as tx:
        rows = _ordered(tx, [seed.projects[1]])
        assert len(rows) == SIZES[1]
        before = DocumentCursor(seed.projects[0], max(i for p, i in expected if p == seed.projects[0]))
        page = Documents.list(tx, after=before, limit=50)
        assert [(d.project_id, d.id) for d in page] == rows
        beyond = DocumentCursor(seed.projects[3], uuid.UUID(int=0))
        assert Documents.list(tx, after=beyond, limit=50) == []
        tx.commit()


def test_the_async_repository_walks_the_same_pages(tenancy: Tenancy, seed: Seed) -> None:
    scopes = _scopes(tenancy, seed)

    async def run() -> dict[str, list[tuple[uuid.UUID, uuid.UUID]]]:
        engine = create_async_engine(psycopg_url(os.environ["TENANCY_TEST_APP_URL"]), pool_size=1)
        out: dict[str, list[tuple[uuid.UUID, uuid.UUID]]] = {}
        try:
            async_tenancy = AsyncTenancy(engine)
            for name, scope in scopes.items():
                seen: list[tuple[uuid.UUID, uuid.UUID]] = []
                async with async_tenancy.session(scope) as tx:
                    page = await AsyncDocuments.list(tx, limit=250)
                    while page:
                        seen.extend((d.project_id, d.id) for d in page)
                        assert len(seen) <= sum(SIZES), "more rows than the scope holds"
                        after = AsyncDocuments.cursor(page[-1])
                        page = await AsyncDocuments.list(tx, after=after, limit=250)
                    await tx.commit()
                out[name] = seen
        finally:
            await engine.dispose()
        return out

    walked = asyncio.run(run())
    for name, scope in scopes.items():
        with tenancy.session(scope) as tx:
            assert walked[name] == _ordered(tx, scope.project_ids), name
            tx.commit()


# ---- the plans -----------------------------------------------------------------------------


def _explain(tx: Any, statement: str, parameters: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of a captured statement, in the scoped session (the app role
    and the same context)."""
    raw = (
        tx.session.connection()
        .exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters)
        .scalar_one()
    )
    plan: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_nodes(child))
    return out


def _buffers(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def _document_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _nodes(plan) if n.get("Relation Name") == "documents"]


def _sent(statements: list[tuple[str, Any]], call: Any) -> tuple[str, Any]:
    """The one statement `call()` sends."""
    statements.clear()
    call()
    assert len(statements) == 1, statements
    return statements[0]


def _row_comparison(tx: Any, after: DocumentCursor) -> None:
    """The former statement of a later page, for comparison: the row comparison."""
    scope = tx.scope
    tx.session.scalars(
        sa.select(Document)
        .where(
            Document.tenant_id == scope.tenant_id,
            Document.project_id.in_(scope.project_ids),
            sa.tuple_(Document.project_id, Document.id) > sa.tuple_(*[sa.literal(v) for v in after]),
        )
        .order_by(Document.project_id, Document.id)
        .limit(10)
    ).all()


@pytest.mark.parametrize("name", ["one project", "several projects"])
def test_a_late_page_is_an_index_scan_from_the_cursor(
    tenancy: Tenancy, seed: Seed, statements: list[tuple[str, Any]], name: str
) -> None:
    scope = _scopes(tenancy, seed)[name]
    big = seed.projects[0]
    with tenancy.session(scope) as tx:
        ids = [i for p, i in _ordered(tx, [big])]
        # Near the end of the 6,000 rows: the row comparison reads the project up to here.
        late = DocumentCursor(big, ids[-100])
        first = _sent(statements, lambda: Documents.list(tx, limit=10))
        after = _sent(statements, lambda: Documents.list(tx, after=late, limit=10))
        old = _sent(statements, lambda: _row_comparison(tx, late))
        first_plan = _explain(tx, *first)
        plan = _explain(tx, *after)
        old_plan = _explain(tx, *old)
        tx.commit()

    scans = _document_scans(plan)
    assert all(s["Node Type"] in ("Index Scan", "Index Only Scan") for s in scans), plan
    conds = [s.get("Index Cond", "") for s in scans]
    cursor_project = f"project_id = '{big}'"
    cursor_id = f"id > '{late.id}'"
    # The branch in the cursor's project: the project an equality and the cursor a range of
    # the index condition, so the scan starts at the cursor.
    seeks = [s for s, c in zip(scans, conds) if cursor_project in c and cursor_id in c]
    assert seeks, f"no index scan starts at the cursor: {conds}"
    assert seeks[0]["Actual Rows"] == 10, seeks[0]
    if name == "one project":
        assert "UNION" not in after[0]
        assert len(scans) == 1, conds
    else:
        assert "UNION ALL" in after[0]
        # Two branches, two index scans; the later projects' one starts after the cursor's
        # project (`project_id > ..` in its index condition).
        assert len(scans) == 2, conds
        assert any(f"project_id > '{big}'" in c for c in conds), conds
        assert plan["Actual Rows"] == 10
    # What seeking buys: the late page reads about what the first page reads; the row
    # comparison, positioned by the project only, walks the ~6,200 rows before the cursor.
    first_buffers, buffers, old_buffers = map(_buffers, (first_plan, plan, old_plan))
    assert buffers <= first_buffers + 12, (first_buffers, buffers, old_buffers)
    assert old_buffers >= first_buffers + 30, (
        "the data is too small to tell a seek from a walk",
        first_buffers,
        buffers,
        old_buffers,
    )
