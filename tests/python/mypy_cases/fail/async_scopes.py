"""The async repositories refuse what the sync ones refuse: a viewer scope writing, a
several-project scope writing, a sync session, and a plain AsyncSession."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from rag_tenancy import AsyncScopedSession, ProjectScope, ProjectsScope, ScopedSession, Viewer
from rag_tenancy.repositories import AsyncDocuments


async def misuse(
    viewer: AsyncScopedSession[ProjectScope[Viewer]],
    several: AsyncScopedSession[ProjectsScope[Viewer]],
    sync: ScopedSession[ProjectScope[Viewer]],
    plain: AsyncSession,
    doc: uuid.UUID,
) -> None:
    await AsyncDocuments.insert(viewer, {"title": "t", "content_hash": "h"})  # error: Argument 1 to "insert" of "AsyncDocuments" has incompatible type "AsyncScopedSession[ProjectScope[Viewer]]"; expected "AsyncScopedSession[ProjectScope[Editor]]"
    await AsyncDocuments.delete(several, doc)  # error: Argument 1 to "delete" of "AsyncDocuments" has incompatible type "AsyncScopedSession[ProjectsScope[Viewer]]"; expected "AsyncScopedSession[ProjectScope[Admin]]"
    await AsyncDocuments.get(sync, doc)  # error: Argument 1 to "get" of "AsyncDocuments" has incompatible type "ScopedSession[ProjectScope[Viewer]]"; expected "AsyncScopedSession[ReadScope[Viewer]]"
    await AsyncDocuments.list(plain)  # error: Argument 1 to "list" of "AsyncDocuments" has incompatible type "AsyncSession"; expected "AsyncScopedSession[ReadScope[Viewer]]"
