"""A write through a viewer scope is rejected: documents need an editor to insert and update,
an admin to delete."""

import uuid

from rag_tenancy import ProjectScope, ScopedSession, Viewer
from rag_tenancy.repositories import Documents


def write(tx: ScopedSession[ProjectScope[Viewer]], user: uuid.UUID) -> None:
    Documents.insert(tx, {"title": "t", "content_hash": "h"})  # error: Argument 1 to "insert" of "Documents" has incompatible type "ScopedSession[ProjectScope[Viewer]]"; expected "ScopedSession[ProjectScope[Editor]]"
    Documents.update(tx, user, {"title": "t"})  # error: Argument 1 to "update" of "Documents" has incompatible type "ScopedSession[ProjectScope[Viewer]]"; expected "ScopedSession[ProjectScope[Editor]]"
