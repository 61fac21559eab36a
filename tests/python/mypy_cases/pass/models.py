"""The models are typed: nullable columns are optional, the role is a string."""

import datetime
import uuid

from rag_tenancy.models import Document, UserProjectRole


def fields(doc: Document, member: UserProjectRole) -> tuple[uuid.UUID, str | None, datetime.datetime, str]:
    return doc.id, doc.source_uri, doc.created_at, member.role
