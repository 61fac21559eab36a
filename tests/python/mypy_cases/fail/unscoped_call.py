"""A repository call with a plain SQLAlchemy session (no scope, no context) is rejected."""

import uuid

from sqlalchemy.orm import Session

from rag_tenancy.repositories import Documents


def read(session: Session, doc: uuid.UUID) -> None:
    Documents.get(session, doc)  # error: Argument 1 to "get" of "Documents" has incompatible type "Session"; expected "ScopedSession[ReadScope[Viewer]]"
