"""A scope required as viewer is not an editor scope; a new row needs its required columns and
only declared ones (the scope columns come from the scope)."""

import uuid

from rag_tenancy import Editor, ProjectScope, RequestContext, ScopedSession, Viewer
from rag_tenancy.repositories import Documents


def narrow(ctx: RequestContext, project: uuid.UUID) -> ProjectScope[Editor]:
    return ctx.project(project).require(Viewer)  # error: Argument 1 to "require" of "ProjectAccess" has incompatible type "type[Viewer]"; expected "type[Editor]"


def insert(tx: ScopedSession[ProjectScope[Editor]], user: uuid.UUID) -> None:
    Documents.insert(tx, {"content_hash": "h"})  # error: Missing key "title" for TypedDict "NewDocument"
    Documents.insert(tx, {"title": "t", "content_hash": "h", "tenant_id": user})  # error: Extra key "tenant_id" for TypedDict "NewDocument"
