"""The async repositories take an `AsyncScopedSession` with the same scope and role typing as the
sync ones: reads with a read scope, writes with a single-project scope of the rule's role or
above, each method awaited."""

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from rag_tenancy import (
    AsyncScopedSession,
    AsyncTenancy,
    Editor,
    Owner,
    ProjectScope,
    ReadScope,
    Viewer,
)
from rag_tenancy.models import Chunk, Document
from rag_tenancy.repositories import AsyncChunks, AsyncDocuments, AsyncQueries


async def reads(tx: AsyncScopedSession[ReadScope[Viewer]], doc: uuid.UUID) -> list[Document]:
    found = await AsyncDocuments.get(tx, doc)
    after = None if found is None else AsyncDocuments.cursor(found)
    return await AsyncDocuments.list(tx, after=after, limit=10)


async def nearest(tx: AsyncScopedSession[ReadScope[Viewer]]) -> list[tuple[Chunk, float]]:
    return await AsyncChunks.nearest_by_embedding(tx, [1.0] * 384, limit=3)


async def owner_writes(tx: AsyncScopedSession[ProjectScope[Owner]]) -> Document | None:
    doc = await AsyncDocuments.insert(tx, {"title": "t", "content_hash": "h"})
    deleted: bool = await AsyncDocuments.delete(tx, doc.id)
    assert deleted in (True, False)
    return await AsyncDocuments.update(tx, doc.id, {"title": "u"})


async def viewer_asks(tx: AsyncScopedSession[ProjectScope[Viewer]]) -> None:
    await AsyncQueries.insert(tx, {"query_text": "q"})


async def whole_flow(engine: AsyncEngine, user: uuid.UUID, tenant: uuid.UUID, project: uuid.UUID) -> None:
    tenancy = AsyncTenancy(engine)
    ctx = await tenancy.authorize(user, tenant)
    async with tenancy.session(ctx.project(project).require(Editor)) as tx:
        await AsyncDocuments.insert(tx, {"title": "t", "content_hash": "h"})
        await reads(tx, user)
        await tx.commit()
    async with tenancy.session(ctx.all_projects().with_at_least(Viewer)) as many:
        await reads(many, user)
