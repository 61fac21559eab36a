"""Stamped columns are written by the database: a new row or a change that names one is
rejected (the database would overwrite it anyway)."""

import uuid

from rag_tenancy import Editor, ProjectScope, ScopedSession
from rag_tenancy.repositories import Documents


def forge(tx: ScopedSession[ProjectScope[Editor]], other: uuid.UUID, doc: uuid.UUID) -> None:
    Documents.insert(tx, {"title": "t", "content_hash": "h", "created_by": other})  # error: Extra key "created_by" for TypedDict "NewDocument"
    Documents.update(tx, doc, {"updated_at": None})  # error: Extra key "updated_at" for TypedDict "DocumentChanges"
