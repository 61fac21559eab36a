"""Reads need a read scope of at least the rule's role; writes a single-project scope of at least
the rule's role (a higher role is accepted)."""

import uuid

import sqlalchemy as sa

from rag_tenancy import (
    Admin,
    Editor,
    Owner,
    ProjectScope,
    ProjectsScope,
    ReadScope,
    ScopedSession,
    Tenancy,
    Viewer,
)
from rag_tenancy.models import Document
from rag_tenancy.repositories import DocumentCursor, Documents, Queries


def reads(tx: ScopedSession[ReadScope[Viewer]], doc: uuid.UUID) -> list[Document]:
    found = Documents.get(tx, doc)
    after: DocumentCursor | None = None if found is None else Documents.cursor(found)
    return Documents.list(tx, after=after, limit=10)


def owner_writes(tx: ScopedSession[ProjectScope[Owner]], user: uuid.UUID) -> Document | None:
    doc = Documents.insert(tx, {"title": "t", "content_hash": "h"})
    Documents.delete(tx, doc.id)
    return Documents.update(tx, doc.id, {"title": "u", "source_uri": None})


def viewer_asks(tx: ScopedSession[ProjectScope[Viewer]], user: uuid.UUID) -> None:
    Queries.insert(tx, {"query_text": "q"})


def whole_flow(engine: sa.Engine, user: uuid.UUID, tenant: uuid.UUID, project: uuid.UUID) -> None:
    tenancy = Tenancy(engine)
    ctx = tenancy.authorize(user, tenant)
    scope = ctx.project(project).require(Editor)
    with tenancy.session(scope) as tx:
        Documents.insert(tx, {"title": "t", "content_hash": "h"})
        tx.commit()
    admin = ctx.project(project).require(Admin)
    with tenancy.session(admin) as tx:
        reads(tx, user)  # a single-project admin scope reads as a viewer
    with tenancy.session(ctx.all_projects().with_at_least(Viewer)) as many:
        reads(many, user)


def several(tx: ScopedSession[ProjectsScope[Owner]], doc: uuid.UUID) -> list[Document]:
    return reads(tx, doc)
