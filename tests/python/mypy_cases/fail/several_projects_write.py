"""A several-project scope reads but never writes, whatever its role."""

import uuid

from rag_tenancy import Owner, ProjectsScope, ScopedSession
from rag_tenancy.repositories import Documents


def write(tx: ScopedSession[ProjectsScope[Owner]], user: uuid.UUID) -> None:
    Documents.list(tx)
    Documents.insert(tx, {"title": "t", "content_hash": "h"})  # error: Argument 1 to "insert" of "Documents" has incompatible type "ScopedSession[ProjectsScope[Owner]]"
