"""The generated Python package against a real migrated PostgreSQL (tests/python_live.rs sets
the database up): the models match the database, the scoped session isolates tenants exactly
as the Rust runtime does, and a Rust-minted and a Python-minted context are interchangeable."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any, cast

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa

from conftest import Fixture, add_member
from rag_tenancy import (
    Admin,
    ContextKey,
    Editor,
    Forbidden,
    Misconfigured,
    NotFound,
    Owner,
    Tenancy,
    Viewer,
    tenancy_session,
)
from rag_tenancy.models import Base, Chunk, Document
from rag_tenancy.repositories import Chunks, Documents, Queries
from rag_tenancy.runtime import begin_statement


def sqlstate(err: sa.exc.DBAPIError) -> str | None:
    return cast("str | None", getattr(err.orig, "sqlstate", None))


# ---- the models are the database -------------------------------------------------------


def _default(text: str | None) -> str | None:
    """A server default without its cast: `'text/plain'::text` -> `'text/plain'`."""
    return None if text is None else re.sub(r"::[a-z ]+$", "", text)


def test_models_match_the_migrated_database(admin_engine: sa.Engine) -> None:
    inspector = sa.inspect(admin_engine)
    dialect = admin_engine.dialect
    assert Base.metadata.tables, "no models"
    for table in Base.metadata.tables.values():
        name = table.name
        db_columns = inspector.get_columns(name, schema="public")
        assert [c["name"] for c in db_columns] == [c.name for c in table.columns], name
        for model_col, db_col in zip(table.columns, db_columns, strict=True):
            where = f"{name}.{model_col.name}"
            assert model_col.nullable == db_col["nullable"], where
            assert model_col.type.compile(dialect=dialect).lower() == str(
                db_col["type"].compile(dialect=dialect)
            ).lower().replace("public.", ""), where
            model_default = model_col.server_default
            if isinstance(model_default, sa.DefaultClause) or model_default is None:
                model_text = None if model_default is None else str(model_default.arg)
                assert _default(model_text) == _default(db_col["default"]), where
            else:
                # A stamped column (sa.FetchedValue()): the database's trigger writes it.
                assert isinstance(model_default, sa.FetchedValue), where
                with admin_engine.connect() as conn:
                    triggers = conn.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal "
                            "AND tgrelid = CAST(:t AS regclass) AND tgname = :n"
                        ),
                        {"t": f"public.{name}", "n": f"{name}_stamp"},
                    ).scalar_one()
                assert triggers == 1, where
        pk = inspector.get_pk_constraint(name, schema="public")["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], name
        db_fks = sorted(
            (
                fk["constrained_columns"],
                fk["referred_table"],
                fk["referred_columns"],
                (fk["options"].get("ondelete") or "").upper(),
            )
            for fk in inspector.get_foreign_keys(name, schema="public")
        )
        model_fks = sorted(
            (
                [c.name for c in fk.columns],
                fk.referred_table.name,
                [e.column.name for e in fk.elements],
                # SQLAlchemy's reflection drops SET NULL's column list: checked below.
                re.sub(r" \(.*\)$", "", fk.ondelete or "").upper(),
            )
            for fk in table.foreign_key_constraints
        )
        assert model_fks == db_fks, name
        with admin_engine.connect() as conn:
            definitions = conn.execute(
                sa.text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"
                ),
                {"t": f"public.{name}"},
            ).scalars().all()
        for fk in table.foreign_key_constraints:
            if fk.ondelete and "(" in fk.ondelete:
                assert any(d.endswith(f"ON DELETE {fk.ondelete}") for d in definitions), definitions
        db_uniques = sorted(u["column_names"] for u in inspector.get_unique_constraints(name, schema="public"))
        model_uniques = sorted(
            [c.name for c in u.columns]
            for u in table.constraints
            if isinstance(u, sa.UniqueConstraint)
        )
        assert model_uniques == db_uniques, name
    # Every table of the database's public schema has a model.
    assert set(inspector.get_table_names(schema="public")) == {
        t.name for t in Base.metadata.tables.values()
    }



# ---- tenant-wide roles (docs/dsl.md, "Tenant-wide roles") -----------------------------------


def _tenant_admin(admin: sa.Engine, tenant: uuid.UUID, role: str) -> uuid.UUID:
    """A new user holding `role` in every project of `tenant` (inserted as the superuser)."""
    user = uuid.uuid4()
    with admin.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tenant_user_roles (tenant_id, user_id, role) "
                "VALUES (:t, :u, CAST(:r AS tenancy.project_role))"
            ),
            {"t": tenant, "u": user, "r": role},
        )
    return user


def test_a_tenant_wide_role_counts_in_every_project_of_the_tenant(
    tenancy: Tenancy, admin_engine: sa.Engine, fixture: Fixture
) -> None:
    tara = _tenant_admin(admin_engine, fixture.tenant_a, "admin")
    ctx = tenancy.authorize(tara, fixture.tenant_a)
    assert {m.project for m in ctx.memberships} >= {fixture.a1}
    assert all(m.role == "admin" for m in ctx.memberships)
    with pytest.raises(NotFound):
        ctx.project(fixture.b1)
    with pytest.raises(Forbidden):
        ctx.project(fixture.a1).require(Owner)
    scope = ctx.project(fixture.a1).require(Admin)
    # The same claims the Rust runtime signs for the same scope.
    assert tenancy.context_claims(scope).startswith(f"{fixture.tenant_a};{tara};")
    with tenancy.session(scope) as tx:
        listed = Documents.list(tx, limit=1000)
        assert sorted(d.id for d in listed) == fixture.a_docs
    # Another tenant: no role there, the same answer as for anybody.
    with pytest.raises(NotFound):
        tenancy.authorize(tara, fixture.tenant_b)

# ---- isolation ----------------------------------------------------------------------------


def test_tenant_a_never_sees_tenant_b(tenancy: Tenancy, fixture: Fixture) -> None:
    ctx = tenancy.authorize(fixture.alice, fixture.tenant_a)
    scope = ctx.project(fixture.a1).require(Viewer)
    with tenancy.session(scope) as tx:
        listed = Documents.list(tx, limit=1000)
        assert sorted(d.id for d in listed) == fixture.a_docs
        assert all(d.tenant_id == fixture.tenant_a for d in listed)
        for b_doc in fixture.b_docs:
            assert Documents.get(tx, b_doc) is None
        # Raw ORM queries without any tenant predicate: row-level security still filters.
        every = tx.session.scalars(sa.select(Document)).all()
        assert {d.tenant_id for d in every} == {fixture.tenant_a}
        tenants = tx.session.execute(sa.text("SELECT id FROM tenants")).scalars().all()
        assert tenants == [fixture.tenant_a]
    # Bob is not a member of tenant A: the same answer as a tenant that does not exist.
    with pytest.raises(NotFound):
        tenancy.authorize(fixture.bob, fixture.tenant_a)
    with pytest.raises(NotFound):
        ctx.project(fixture.b1)


def test_cross_tenant_writes_are_refused(tenancy: Tenancy, fixture: Fixture) -> None:
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Owner)
    with tenancy.session(scope) as tx:
        with pytest.raises(sa.exc.DBAPIError) as refused:
            tx.session.execute(
                sa.insert(Document).values(
                    tenant_id=fixture.tenant_b,
                    project_id=fixture.b1,
                    title="forged",
                    content_hash="forged",
                    created_by=fixture.alice,
                )
            )
        assert sqlstate(refused.value) == "42501"
    with tenancy.session(scope) as tx:
        # Updates and deletes of B's rows match nothing.
        changed = tx.session.execute(
            sa.update(Document).where(Document.tenant_id == fixture.tenant_b).values(title="x")
        )
        assert changed.rowcount == 0
        assert Documents.delete(tx, fixture.b_docs[0]) is False
        tx.commit()


def test_a_viewer_cannot_write(tenancy: Tenancy, admin_engine: sa.Engine, fixture: Fixture) -> None:
    vic = add_member(admin_engine, fixture.tenant_a, fixture.a1, "viewer")
    access = tenancy.authorize(vic, fixture.tenant_a).project(fixture.a1)
    with pytest.raises(Forbidden):
        access.require(Editor)
    viewer = access.require(Viewer)
    with tenancy.session(viewer) as tx:
        # mypy --strict rejects this call (tests/python/mypy_cases/fail/viewer_write.py); forced
        # through anyway, the database refuses it.
        with pytest.raises(sa.exc.DBAPIError) as refused:
            Documents.insert(
                cast(Any, tx),
                {"title": "t", "content_hash": "viewer"},
            )
        assert sqlstate(refused.value) == "42501"
    with tenancy.session(viewer) as tx:
        assert Documents.update(cast(Any, tx), fixture.a_docs[0], {"title": "x"}) is None
        assert Documents.delete(cast(Any, tx), fixture.a_docs[0]) is False
        # Queries allow insert to viewers.
        query = Queries.insert(tx, {"query_text": "why?"})
        assert query.asked_by == vic  # stamped by the database
        assert query.top_k == 10 and query.tenant_id == fixture.tenant_a
        tx.commit()


def test_no_context_no_rows(app_engine: sa.Engine, fixture: Fixture) -> None:
    with app_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM tenants")).scalar_one() == 0
        with pytest.raises(sa.exc.DBAPIError) as refused:
            conn.execute(
                sa.insert(Document).values(
                    tenant_id=fixture.tenant_a,
                    project_id=fixture.a1,
                    title="no context",
                    content_hash="no context",
                    created_by=fixture.alice,
                )
            )
        assert sqlstate(refused.value) == "42501"


def test_the_context_ends_with_the_transaction(tenancy: Tenancy, fixture: Fixture) -> None:
    engine = sa.create_engine(tenancy.engine.url, pool_size=1, max_overflow=0)
    try:
        scoped = Tenancy(engine)
        scope = scoped.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Viewer)
        with scoped.session(scope) as tx:
            assert len(Documents.list(tx)) == len(fixture.a_docs)
            pid = tx.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as conn:  # the same pooled connection, without a scope
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == pid
            assert conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT tenancy.context_claims()")).scalar_one() is None
    finally:
        engine.dispose()


def test_leaving_without_commit_rolls_back(tenancy: Tenancy, fixture: Fixture) -> None:
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Editor)
    with tenancy.session(scope) as tx:
        doc = Documents.insert(
            tx, {"title": "rolled back", "content_hash": "rb"}
        )
    with tenancy.session(scope) as tx:
        assert Documents.get(tx, doc.id) is None


def test_a_commit_behind_the_scoped_session_ends_the_context(
    tenancy: Tenancy, fixture: Fixture
) -> None:
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Viewer)
    with tenancy.session(scope) as tx:
        assert Documents.list(tx)
        tx.session.commit()  # not tx.commit(): the transaction and its context end here
        # Later statements of this session run without a context: no rows.
        assert Documents.list(tx) == []
        assert tx.session.execute(sa.text("SELECT tenancy.context_claims()")).scalar_one() is None


def test_a_wrong_key_is_refused(app_engine: sa.Engine, fixture: Fixture, tenancy: Tenancy) -> None:
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Viewer)
    wrong = ContextKey("tenancy-test-only", b"\x01" * 32)
    with pytest.raises(Misconfigured, match="refused this runtime's context key") as refused:
        Tenancy(app_engine, key=wrong).check()
    assert "\n" not in str(refused.value), "one sentence, without the CONTEXT lines"
    with tenancy_session(app_engine, scope, key=wrong) as tx:
        with pytest.raises(sa.exc.DBAPIError) as refused:
            Documents.list(tx)
        assert sqlstate(refused.value) == "42501"
        assert "signature does not verify" in str(refused.value)


# ---- repositories -------------------------------------------------------------------------


def test_repositories_round_trip(tenancy: Tenancy, fixture: Fixture) -> None:
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Owner)
    with tenancy.session(scope) as tx:
        doc = Documents.insert(
            tx,
            {
                "title": "written by python",
                "content_hash": "python-1",
                "metadata_": {"lang": "en"},
            },
        )
        assert doc.tenant_id == fixture.tenant_a and doc.project_id == fixture.a1
        assert doc.mime_type == "text/plain" and doc.metadata_ == {"lang": "en"}
        # Stamped: the database writes the caller, whatever the statement says.
        assert doc.created_by == fixture.alice
        forged = tx.session.scalars(
            sa.insert(Document)
            .values(tenant_id=fixture.tenant_a, project_id=fixture.a1, title="f",
                    content_hash="python-forged", created_by=fixture.bob)
            .returning(Document)
        ).one()
        assert forged.created_by == fixture.alice
        assert Documents.delete(tx, forged.id) is True
        updated = Documents.update(tx, doc.id, {"source_uri": "s3://x"})
        assert updated is not None
        # `source_uri` is masked from viewers: never loaded with the row, and the app role
        # cannot select it on the table; the masked view shows it to an editor or above.
        with pytest.raises(sa.exc.InvalidRequestError):
            _ = updated.source_uri
        shown = tx.session.execute(
            sa.text("SELECT source_uri FROM tenancy.documents_masked WHERE id = :id"),
            {"id": doc.id},
        ).scalar_one()
        assert shown == "s3://x"
        tx.session.execute(sa.text("SAVEPOINT masked"))
        with pytest.raises(sa.exc.DBAPIError) as refused:
            tx.session.execute(sa.select(Document.source_uri).where(Document.id == doc.id))
        assert sqlstate(refused.value) == "42501"
        tx.session.execute(sa.text("ROLLBACK TO SAVEPOINT masked"))
        # Keyset pagination visits every row once, in key order.
        seen: list[uuid.UUID] = []
        page = Documents.list(tx, limit=2)
        while page:
            seen.extend(d.id for d in page)
            page = Documents.list(tx, after=Documents.cursor(page[-1]), limit=2)
        assert seen == sorted(fixture.a_docs + [doc.id])
        near = np.zeros(384, dtype=np.float32)
        near[0] = 1.0
        far = np.zeros(384, dtype=np.float32)
        far[1] = 1.0
        c1 = Chunks.insert(
            tx,
            {"document_id": doc.id, "ordinal": 0, "content": "a", "token_count": 1, "embedding": near},
        )
        Chunks.insert(
            tx,
            {"document_id": doc.id, "ordinal": 1, "content": "b", "token_count": 1, "embedding": far},
        )
        hits = Chunks.nearest_by_embedding(tx, [1.0] + [0.0] * 383, limit=2)
        assert [c.id for c, _ in hits][0] == c1.id
        assert hits[0][1] == pytest.approx(0.0) and hits[1][1] == pytest.approx(1.0)
        assert isinstance(c1.embedding, np.ndarray) and c1.embedding.shape == (384,)
        temp = Documents.insert(
            tx, {"title": "temp", "content_hash": "python-temp"}
        )
        assert Documents.delete(tx, temp.id) is True
        assert Documents.get(tx, temp.id) is None
        tx.commit()


# ---- Rust and Python contexts are interchangeable ---------------------------------------


def test_a_rust_minted_statement_works_in_python(
    tenancy: Tenancy, app_engine: sa.Engine, fixture: Fixture
) -> None:
    statement = os.environ["TENANCY_TEST_RUST_STATEMENT"]
    token = statement[statement.index("install_context('") + len("install_context('") : -2]
    pad = statement.index("*/") - len("BEGIN; /*")
    # Same statement text, byte for byte, around the token.
    assert begin_statement(token, pad) == statement
    with app_engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        driver.autocommit = True
        try:
            driver.execute(statement)
            count = driver.execute("SELECT count(*) FROM documents").fetchone()
            assert count is not None and count[0] >= len(fixture.a_docs)
            tenants = driver.execute("SELECT DISTINCT tenant_id FROM documents").fetchall()
            assert tenants == [(fixture.tenant_a,)]
        finally:
            driver.rollback()
            driver.autocommit = False
    # The same scope has the same claims in both runtimes.
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Viewer)
    assert tenancy.context_claims(scope) == os.environ["TENANCY_TEST_RUST_CLAIMS"]


def test_a_python_minted_statement_for_rust(tenancy: Tenancy, fixture: Fixture) -> None:
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Viewer)
    with open(os.environ["TENANCY_TEST_PYTHON_OUT"], "w", encoding="utf-8") as out:
        out.write(tenancy.begin_statement(scope))


def test_a_several_project_scope_reads_but_never_writes(
    tenancy: Tenancy, admin_engine: sa.Engine, fixture: Fixture
) -> None:
    with admin_engine.begin() as conn:
        a2 = uuid.uuid4()
        conn.execute(
            sa.text("INSERT INTO projects (tenant_id, id, name, slug) VALUES (:t, :p, 'a2', 'a2')"),
            {"t": fixture.tenant_a, "p": a2},
        )
    ed = add_member(admin_engine, fixture.tenant_a, fixture.a1, "viewer")
    with admin_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) "
                "VALUES (:t, :p, :u, 'admin')"
            ),
            {"t": fixture.tenant_a, "p": a2, "u": ed},
        )
    ctx = tenancy.authorize(ed, fixture.tenant_a)
    every = ctx.all_projects().with_at_least(Viewer)
    assert every.project_ids == sorted([fixture.a1, a2])
    assert tenancy.context_claims(every) == (
        f"{fixture.tenant_a};{ed};{{{','.join(str(p) for p in sorted([fixture.a1, a2]))}}}"
        f";{{{a2}}};{{{a2}}}"
    )
    admins = ctx.all_projects().with_at_least(Admin)
    assert admins.project_ids == [a2]
    with pytest.raises(Forbidden):
        ctx.all_projects().require(Editor)
    with tenancy.session(every) as tx:
        assert {d.project_id for d in Documents.list(tx, limit=1000)} == {fixture.a1}


# ---- the async session ------------------------------------------------------------------


def test_the_async_session_speaks_the_same_context(tenancy: Tenancy, fixture: Fixture) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from conftest import psycopg_url
    from rag_tenancy import AsyncTenancy, async_tenancy_session

    async def run() -> None:
        engine = create_async_engine(psycopg_url(os.environ["TENANCY_TEST_APP_URL"]), pool_size=1)
        try:
            async_tenancy = AsyncTenancy(engine)
            await async_tenancy.check()
            ctx = await async_tenancy.authorize(fixture.alice, fixture.tenant_a)
            scope = ctx.project(fixture.a1).require(Viewer)
            assert async_tenancy.context_claims(scope) == tenancy.context_claims(scope)
            async with async_tenancy.session(scope) as tx:
                docs = (await tx.session.scalars(sa.select(Document))).all()
                assert set(fixture.a_docs) <= {d.id for d in docs}
                assert {d.tenant_id for d in docs} == {fixture.tenant_a}
            async with engine.connect() as conn:  # the same pooled connection, no context
                count = (await conn.execute(sa.text("SELECT count(*) FROM documents"))).scalar_one()
                assert count == 0
            owner = ctx.project(fixture.a1).require(Owner)
            async with async_tenancy_session(engine, owner) as tx:
                tx.session.add(
                    Document(title="async", content_hash="async-1", created_by=fixture.alice,
                             tenant_id=fixture.tenant_a, project_id=fixture.a1)
                )
                await tx.session.flush()
                await tx.commit()
            wrong = ContextKey("tenancy-test-only", b"\x01" * 32)
            with pytest.raises(Misconfigured):
                await AsyncTenancy(engine, key=wrong).check()
        finally:
            await engine.dispose()

    asyncio.run(run())
    scope = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Viewer)
    with tenancy.session(scope) as tx:
        titles = tx.session.scalars(sa.select(Document.title)).all()
        assert "async" in titles


def test_the_async_repositories(tenancy: Tenancy, fixture: Fixture) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from conftest import psycopg_url
    from rag_tenancy import AsyncTenancy
    from rag_tenancy.repositories import AsyncChunks, AsyncDocuments, AsyncQueries

    async def run() -> None:
        engine = create_async_engine(psycopg_url(os.environ["TENANCY_TEST_APP_URL"]), pool_size=2)
        try:
            async_tenancy = AsyncTenancy(engine)
            ctx = await async_tenancy.authorize(fixture.alice, fixture.tenant_a)
            owner = ctx.project(fixture.a1).require(Owner)
            async with async_tenancy.session(owner) as tx:
                listed = await AsyncDocuments.list(tx, limit=1000)
                assert set(fixture.a_docs) <= {d.id for d in listed}
                assert {d.tenant_id for d in listed} == {fixture.tenant_a}
                for b_doc in fixture.b_docs:  # tenant B's keys find nothing
                    assert await AsyncDocuments.get(tx, b_doc) is None
                    assert await AsyncDocuments.update(tx, b_doc, {"title": "x"}) is None
                    assert await AsyncDocuments.delete(tx, b_doc) is False
                doc = await AsyncDocuments.insert(tx, {"title": "async repo", "content_hash": "async-repo"})
                assert doc.tenant_id == fixture.tenant_a and doc.project_id == fixture.a1
                assert doc.created_by == fixture.alice  # stamped
                seen: list[uuid.UUID] = []
                page = await AsyncDocuments.list(tx, limit=2)
                while page:
                    seen.extend(d.id for d in page)
                    page = await AsyncDocuments.list(tx, after=AsyncDocuments.cursor(page[-1]), limit=2)
                assert seen == sorted({d.id for d in listed} | {doc.id})
                changed = await AsyncDocuments.update(tx, doc.id, {"title": "async renamed"})
                assert changed is not None and changed.title == "async renamed"
                axis = np.zeros(384, dtype=np.float32)
                axis[5] = 1.0
                chunk = await AsyncChunks.insert(
                    tx,
                    {"document_id": doc.id, "ordinal": 0, "content": "c", "token_count": 1, "embedding": axis},
                )
                hits = await AsyncChunks.nearest_by_embedding(tx, axis, limit=1)
                assert [(c.id, d) for c, d in hits] == [(chunk.id, pytest.approx(0.0))]
                assert await AsyncDocuments.delete(tx, doc.id) is True
                assert await AsyncDocuments.get(tx, doc.id) is None
                # Left without commit: rolled back, nothing of this test remains.
            async with async_tenancy.session(owner) as tx:
                assert await AsyncDocuments.get(tx, doc.id) is None
            viewer_scope = ctx.project(fixture.a1).require(Viewer)
            async with async_tenancy.session(viewer_scope) as tx:
                # Queries allow insert to viewers; `asked_by` is stamped by the database.
                query = await AsyncQueries.insert(tx, {"query_text": "async?"})
                assert query.asked_by == fixture.alice and query.tenant_id == fixture.tenant_a
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_an_async_write_through_a_viewer_scope_is_refused(
    tenancy: Tenancy, admin_engine: sa.Engine, fixture: Fixture
) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from conftest import psycopg_url
    from rag_tenancy import AsyncTenancy
    from rag_tenancy.repositories import AsyncDocuments

    vic = add_member(admin_engine, fixture.tenant_a, fixture.a1, "viewer")

    async def run() -> None:
        engine = create_async_engine(psycopg_url(os.environ["TENANCY_TEST_APP_URL"]), pool_size=1)
        try:
            async_tenancy = AsyncTenancy(engine)
            viewer = (await async_tenancy.authorize(vic, fixture.tenant_a)).project(fixture.a1).require(Viewer)
            async with async_tenancy.session(viewer) as tx:
                # mypy --strict rejects this (mypy_cases/fail/async_scopes.py); forced, the
                # database refuses it.
                with pytest.raises(sa.exc.DBAPIError) as refused:
                    await AsyncDocuments.insert(cast(Any, tx), {"title": "t", "content_hash": "async-viewer"})
                assert sqlstate(refused.value) == "42501"
            async with async_tenancy.session(viewer) as tx:
                assert await AsyncDocuments.delete(cast(Any, tx), fixture.a_docs[0]) is False
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_row_conditions_apply_as_the_repositories_document(
    tenancy: Tenancy, admin_engine: sa.Engine, fixture: Fixture
) -> None:
    """`Documents.update`: editors change the documents they created, admins any; a row the
    conditions refuse is treated as absent (None), sync and async."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from conftest import psycopg_url
    from rag_tenancy import AsyncTenancy
    from rag_tenancy.repositories import AsyncDocuments

    ed = add_member(admin_engine, fixture.tenant_a, fixture.a1, "editor")
    alices = fixture.a_docs[0]
    editor = tenancy.authorize(ed, fixture.tenant_a).project(fixture.a1).require(Editor)
    with tenancy.session(editor) as tx:
        before = Documents.get(tx, alices)
        assert before is not None and before.created_by != ed
        assert Documents.update(tx, alices, {"title": "not yours"}) is None
        own = Documents.insert(tx, {"title": "mine", "content_hash": "row-condition"})
        assert own.created_by == ed
        changed = Documents.update(tx, own.id, {"title": "still mine"})
        assert changed is not None and changed.title == "still mine"
        unchanged = Documents.get(tx, alices)
        assert unchanged is not None and unchanged.title == before.title

    async def run() -> None:
        engine = create_async_engine(psycopg_url(os.environ["TENANCY_TEST_APP_URL"]), pool_size=1)
        try:
            async_tenancy = AsyncTenancy(engine)
            scope = (await async_tenancy.authorize(ed, fixture.tenant_a)).project(fixture.a1).require(Editor)
            async with async_tenancy.session(scope) as tx:
                assert await AsyncDocuments.update(tx, alices, {"title": "not yours"}) is None
        finally:
            await engine.dispose()

    asyncio.run(run())
    admin = tenancy.authorize(fixture.alice, fixture.tenant_a).project(fixture.a1).require(Admin)
    with tenancy.session(admin) as tx:  # the admin rule has no condition (rolled back)
        assert Documents.update(tx, alices, {"title": "any"}) is not None
