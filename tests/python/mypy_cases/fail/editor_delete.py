"""Deleting a document needs an admin: an editor scope is rejected."""

import uuid

from rag_tenancy import Editor, ProjectScope, ScopedSession
from rag_tenancy.repositories import Documents


def delete(tx: ScopedSession[ProjectScope[Editor]], doc: uuid.UUID) -> None:
    Documents.delete(tx, doc)  # error: expected "ScopedSession[ProjectScope[Admin]]"
