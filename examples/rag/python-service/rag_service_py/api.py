"""The endpoints, as in the Rust service (examples/rag/service/src/api.rs). Every data access
goes through a generated repository or the generated models inside a `ScopedSession` opened
for the scope the caller proved; only the membership audit row and the advisory lock use SQL
of their own (still in the scoped transaction, still under row-level security)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from rag_tenancy import Admin, Editor, ProjectScope, RequestContext, Tenancy, Viewer
from rag_tenancy.models import Chunk, Response, UserProjectRole
from rag_tenancy.repositories import (
    Assertions,
    AssertionCursor,
    Chunks,
    DocumentChanges,
    DocumentCursor,
    Documents,
    NewChunk,
    NewDocument,
    NewQuery,
    Queries,
    QueryCursor,
    ResponseCursor,
    Responses,
)
from rag_tenancy.runtime import Role
from rag_tenancy.runtime import ReadScope, ScopedSession

from .errors import ApiError
from .wire import (
    MAX_BATCH,
    MAX_LONG_TEXT,
    MAX_SHORT_TEXT,
    Reply,
    Request,
    an_uuid,
    any_json,
    check_embedding,
    check_metadata,
    check_non_negative,
    check_optional_text,
    check_text,
    f32,
    floats,
    i32,
    Kind,
    json_body,
    objects,
    query_params,
    row,
    string,
    u32,
)

R = TypeVar("R", bound=Role)
ROLES = ("viewer", "editor", "admin", "owner")
SEARCH_ROUTE_HEADER = "x-search-route"
F32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Limits:
    """Page size, search `k` and body size limits."""

    max_page_size: int = 1000
    max_k: int = 100
    body_limit_bytes: int = 1024 * 1024


@dataclass
class Call:
    """One authorized request: the runtime, the caller's context in the path's tenant, the
    path's other ids and the raw request."""

    tenancy: Tenancy
    limits: Limits
    context: RequestContext
    ids: list[uuid.UUID]
    request: Request

    def body(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of this shape."""
        return json_body(self.request, self.limits.body_limit_bytes, fields)

    def page_params(self) -> dict[str, Any]:
        """`?limit=&after=` parsed (422 for a malformed or unknown parameter); check the range
        with `page_limit` after the role, as the Rust service does."""
        return query_params(self.request, {"limit": (u32, False), "after": (an_uuid, False)})

    def page_limit(self, params: dict[str, Any]) -> tuple[int, uuid.UUID | None]:
        """The page size (100 by default, at most the maximum; 422 outside 1..=max) and the
        `after` cursor."""
        limit: int | None = params.get("limit")
        top = self.limits.max_page_size
        if limit is None:
            limit = min(100, top)
        elif not 1 <= limit <= top:
            raise ApiError.invalid_field("limit", f"must be 1..={top}")
        return limit, params.get("after")

    def project_scope(self, role: type[R]) -> ProjectScope[R]:
        """The path's project at `role` or above (404 without a role there, 403 below)."""
        return self.context.project(self.ids[0]).require(role)


def page(items: list[dict[str, Any]], limit: int, key: str) -> dict[str, Any]:
    """One page; `next_after` is the last row's key when the page is full."""
    return {"items": items, "next_after": items[-1][key] if len(items) == limit else None}


def created(body: Any) -> Reply:
    """201 with `body`."""
    return Reply(201, body)


# ---- projects ----------------------------------------------------------------------------


def my_projects(call: Call) -> Reply:
    """`GET /t/{tenant_id}/projects`: the caller's projects and their role in each."""
    return Reply(200, [{"project_id": m.project, "role": m.role} for m in call.context.memberships])


# ---- documents ---------------------------------------------------------------------------


def create_document(call: Call) -> Reply:
    """`POST .../documents` (editor)."""
    body = call.body(
        {
            "title": (string, True),
            "source_uri": (string, False),
            "mime_type": (string, False),
            "content_hash": (string, True),
            "metadata": (any_json, False),
        }
    )
    scope = call.project_scope(Editor)
    check_text("title", body["title"], MAX_SHORT_TEXT)
    check_text("content_hash", body["content_hash"], MAX_SHORT_TEXT)
    if "source_uri" in body:
        check_optional_text("source_uri", body["source_uri"], MAX_SHORT_TEXT)
    if "mime_type" in body:
        check_text("mime_type", body["mime_type"], MAX_SHORT_TEXT)
    if "metadata" in body:
        check_metadata("metadata", body["metadata"])
    with call.tenancy.session(scope) as tx:
        new: NewDocument = {"title": body["title"], "content_hash": body["content_hash"]}
        if "source_uri" in body:
            new["source_uri"] = body["source_uri"]
        if "mime_type" in body:
            new["mime_type"] = body["mime_type"]
        if "metadata" in body:
            new["metadata_"] = body["metadata"]
        document = Documents.insert(tx, new)
        out = row(document)
        tx.commit()
    return created(out)


def list_documents(call: Call) -> Reply:
    """`GET .../documents` (viewer)."""
    params = call.page_params()
    scope = call.project_scope(Viewer)
    limit, after = call.page_limit(params)
    with call.tenancy.session(scope) as tx:
        cursor = None if after is None else DocumentCursor(scope.project_id, after)
        items = [row(d) for d in Documents.list(tx, after=cursor, limit=limit)]
        tx.commit()
    return Reply(200, page(items, limit, "id"))


def get_document(call: Call) -> Reply:
    """`GET .../documents/{document_id}` (viewer)."""
    scope = call.project_scope(Viewer)
    with call.tenancy.session(scope) as tx:
        document = Documents.get(tx, call.ids[1])
        out = None if document is None else row(document)
        tx.commit()
    if out is None:
        raise ApiError.not_found()
    return Reply(200, out)


def update_document(call: Call) -> Reply:
    """`PATCH .../documents/{document_id}` (editor)."""
    body = call.body(
        {
            "title": (string, False),
            "source_uri": (string, False),
            "mime_type": (string, False),
            "metadata": (any_json, False),
        }
    )
    scope = call.project_scope(Editor)
    changes: DocumentChanges = {}
    if "title" in body:
        check_text("title", body["title"], MAX_SHORT_TEXT)
        changes["title"] = body["title"]
    if "source_uri" in body:
        check_optional_text("source_uri", body["source_uri"], MAX_SHORT_TEXT)
        changes["source_uri"] = body["source_uri"]
    if "mime_type" in body:
        check_text("mime_type", body["mime_type"], MAX_SHORT_TEXT)
        changes["mime_type"] = body["mime_type"]
    if "metadata" in body:
        check_metadata("metadata", body["metadata"])
        changes["metadata_"] = body["metadata"]
    with call.tenancy.session(scope) as tx:
        if not changes:
            # As the Rust service: an empty patch is still an UPDATE under the update policy
            # (its row conditions apply; `updated_at` is stamped), not a read.
            current = Documents.get(tx, call.ids[1])
            changes = {} if current is None else {"title": current.title}
        document = Documents.update(tx, call.ids[1], changes) if changes else None
        out = None if document is None else row(document)
        tx.commit()
    if out is None:
        raise ApiError.not_found()
    return Reply(200, out)


def delete_document(call: Call) -> Reply:
    """`DELETE .../documents/{document_id}` (admin): 204, or 404 when no such document."""
    scope = call.project_scope(Admin)
    with call.tenancy.session(scope) as tx:
        deleted = Documents.delete(tx, call.ids[1])
        tx.commit()
    if not deleted:
        raise ApiError.not_found()
    return Reply(204)


# ---- chunks ------------------------------------------------------------------------------


def chunk_view(chunk: Chunk) -> dict[str, Any]:
    """A chunk without its embedding (the Rust service's `ChunkView`)."""
    return {
        "id": chunk.id,
        "project_id": chunk.project_id,
        "document_id": chunk.document_id,
        "ordinal": chunk.ordinal,
        "content": chunk.content,
        "token_count": chunk.token_count,
        "has_embedding": chunk.embedding is not None,
    }


CHUNK_FIELDS: dict[str, tuple[Kind, bool]] = {
    "ordinal": (i32, True),
    "content": (string, True),
    "token_count": (i32, True),
    "embedding": (floats, False),
}


def ingest_chunks(call: Call) -> Reply:
    """`POST .../documents/{document_id}/chunks` (editor): one transaction for the batch."""
    body = call.body({"chunks": (objects(CHUNK_FIELDS), True)})
    scope = call.project_scope(Editor)
    chunks: list[dict[str, Any]] = body["chunks"]
    if not 1 <= len(chunks) <= MAX_BATCH:
        raise ApiError.invalid_field("chunks", f"must hold 1..={MAX_BATCH} chunks")
    ordinals: set[int] = set()
    for i, chunk in enumerate(chunks):
        check_non_negative(f"chunks[{i}].ordinal", chunk["ordinal"])
        check_non_negative(f"chunks[{i}].token_count", chunk["token_count"])
        check_text(f"chunks[{i}].content", chunk["content"], MAX_LONG_TEXT)
        if "embedding" in chunk:
            check_embedding(f"chunks[{i}].embedding", chunk["embedding"])
        if chunk["ordinal"] in ordinals:
            raise ApiError.invalid_field(f"chunks[{i}].ordinal", "duplicate ordinal in the batch")
        ordinals.add(chunk["ordinal"])
    document = call.ids[1]
    with call.tenancy.session(scope) as tx:
        if Documents.get(tx, document) is None:
            raise ApiError.not_found()
        inserted = []
        for chunk in chunks:
            new: NewChunk = {
                "document_id": document,
                "ordinal": chunk["ordinal"],
                "content": chunk["content"],
                "token_count": chunk["token_count"],
            }
            if "embedding" in chunk:
                new["embedding"] = chunk["embedding"]
            inserted.append(chunk_view(Chunks.insert(tx, new)))
        tx.commit()
    return created(inserted)


def list_chunks(call: Call) -> Reply:
    """`GET .../documents/{document_id}/chunks` (viewer): the document's chunks in key order."""
    params = call.page_params()
    scope = call.project_scope(Viewer)
    limit, after = call.page_limit(params)
    document = call.ids[1]
    with call.tenancy.session(scope) as tx:
        if Documents.get(tx, document) is None:
            raise ApiError.not_found()
        statement = sa.select(Chunk).where(
            Chunk.tenant_id == scope.tenant_id,
            Chunk.project_id == scope.project_id,
            Chunk.document_id == document,
        )
        if after is not None:
            # The project is an equality, so `id >` is where the index scan starts (a row
            # comparison would be positioned on the project only).
            statement = statement.where(Chunk.id > after)
        statement = statement.order_by(Chunk.project_id, Chunk.id).limit(limit)
        items = [chunk_view(c) for c in tx.session.scalars(statement)]
        tx.commit()
    return Reply(200, page(items, limit, "id"))


# ---- search ------------------------------------------------------------------------------


def _search_body(call: Call) -> tuple[list[float], int]:
    body = call.body({"embedding": (floats, True), "k": (u32, False)})
    return body["embedding"], body.get("k", 10)


def _check_search(call: Call, embedding: list[float], k: int) -> None:
    check_embedding("embedding", embedding)
    if not 1 <= k <= call.limits.max_k:
        raise ApiError.invalid_field("k", f"must be 1..={call.limits.max_k}")


def _search(
    tx: ScopedSession[ReadScope[Viewer]], embedding: list[float], k: int
) -> list[dict[str, Any]]:
    # Exact search through the generated repository (cosine distance, nearest first, ties by
    # project id then chunk id): what the Rust gateway answers for scopes below its HNSW tier.
    return [
        {
            "chunk_id": chunk.id,
            "project_id": chunk.project_id,
            "document_id": chunk.document_id,
            "ordinal": chunk.ordinal,
            "content": chunk.content,
            "distance": distance,
        }
        for chunk, distance in Chunks.nearest_by_embedding(tx, embedding, limit=k)
    ]


def search_project(call: Call) -> Reply:
    """`POST .../projects/{project_id}/search` (viewer): nearest chunks of one project."""
    embedding, k = _search_body(call)
    scope = call.project_scope(Viewer)
    _check_search(call, embedding, k)
    with call.tenancy.session(scope) as tx:
        hits = _search(tx, embedding, k)
        tx.commit()
    return Reply(200, hits, {SEARCH_ROUTE_HEADER: "exact"})


def search_tenant(call: Call) -> Reply:
    """`POST /t/{tenant_id}/search` (viewer): nearest chunks of every readable project."""
    embedding, k = _search_body(call)
    _check_search(call, embedding, k)
    scope = call.context.all_projects().with_at_least(Viewer)
    if not scope.project_ids:
        return Reply(200, [], {SEARCH_ROUTE_HEADER: "empty_scope"})
    with call.tenancy.session(scope) as tx:
        hits = _search(tx, embedding, k)
        tx.commit()
    return Reply(200, hits, {SEARCH_ROUTE_HEADER: "exact"})


# ---- queries, responses, assertions ------------------------------------------------------


def create_query(call: Call) -> Reply:
    """`POST .../queries` (viewer)."""
    body = call.body({"query_text": (string, True), "top_k": (i32, False)})
    scope = call.project_scope(Viewer)
    check_text("query_text", body["query_text"], MAX_LONG_TEXT)
    if "top_k" in body and not 1 <= body["top_k"] <= 100:
        raise ApiError.invalid_field("top_k", "must be 1..=100")
    with call.tenancy.session(scope) as tx:
        new: NewQuery = {"query_text": body["query_text"]}
        if "top_k" in body:
            new["top_k"] = body["top_k"]
        query = Queries.insert(tx, new)
        out = row(query)
        tx.commit()
    return created(out)


def list_queries(call: Call) -> Reply:
    """`GET .../queries` (viewer)."""
    params = call.page_params()
    scope = call.project_scope(Viewer)
    limit, after = call.page_limit(params)
    with call.tenancy.session(scope) as tx:
        cursor = None if after is None else QueryCursor(scope.project_id, after)
        items = [row(q) for q in Queries.list(tx, after=cursor, limit=limit)]
        tx.commit()
    return Reply(200, page(items, limit, "id"))


def get_query(call: Call) -> Reply:
    """`GET .../queries/{query_id}` (viewer)."""
    scope = call.project_scope(Viewer)
    with call.tenancy.session(scope) as tx:
        query = Queries.get(tx, call.ids[1])
        out = None if query is None else row(query)
        tx.commit()
    if out is None:
        raise ApiError.not_found()
    return Reply(200, out)


def create_response(call: Call) -> Reply:
    """`POST .../queries/{query_id}/responses` (editor)."""
    body = call.body(
        {
            "answer_text": (string, True),
            "model": (string, True),
            "prompt_tokens": (i32, False),
            "completion_tokens": (i32, False),
            "latency_ms": (i32, False),
        }
    )
    scope = call.project_scope(Editor)
    check_text("answer_text", body["answer_text"], MAX_LONG_TEXT)
    check_text("model", body["model"], MAX_SHORT_TEXT)
    for name in ("prompt_tokens", "completion_tokens", "latency_ms"):
        if name in body:
            check_non_negative(name, body[name])
    with call.tenancy.session(scope) as tx:
        if Queries.get(tx, call.ids[1]) is None:
            raise ApiError.not_found()
        response = Responses.insert(tx, {"query_id": call.ids[1], **body})  # type: ignore[typeddict-item]
        out = row(response)
        tx.commit()
    return created(out)


def _filtered_page(
    tx: ScopedSession[ProjectScope[Viewer]],
    model: Any,
    column: Any,
    value: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> list[Any]:
    scope = tx.scope
    statement = sa.select(model).where(
        model.tenant_id == scope.tenant_id, model.project_id == scope.project_id, column == value
    )
    if after is not None:
        # One project (an equality above): the page starts at the cursor's key.
        statement = statement.where(model.id > after)
    return list(tx.session.scalars(statement.order_by(model.project_id, model.id).limit(limit)))


def list_responses(call: Call) -> Reply:
    """`GET .../queries/{query_id}/responses` (viewer)."""
    params = call.page_params()
    scope = call.project_scope(Viewer)
    limit, after = call.page_limit(params)
    with call.tenancy.session(scope) as tx:
        if Queries.get(tx, call.ids[1]) is None:
            raise ApiError.not_found()
        rows = _filtered_page(tx, Response, Response.query_id, call.ids[1], after, limit)
        items = [row(r) for r in rows]
        tx.commit()
    return Reply(200, page(items, limit, "id"))


def create_assertion(call: Call) -> Reply:
    """`POST .../responses/{response_id}/assertions` (editor)."""
    body = call.body(
        {
            "claim": (string, True),
            "chunk_id": (an_uuid, False),
            "verdict": (string, False),
            "score": (f32, False),
        }
    )
    scope = call.project_scope(Editor)
    check_text("claim", body["claim"], MAX_LONG_TEXT)
    if "score" in body and not abs(body["score"]) <= F32_MAX:
        raise ApiError.invalid_field("score", "must be finite")
    if "verdict" in body:
        check_text("verdict", body["verdict"], MAX_SHORT_TEXT)
    with call.tenancy.session(scope) as tx:
        if Responses.get(tx, call.ids[1]) is None:
            raise ApiError.not_found()
        if "chunk_id" in body and Chunks.get(tx, body["chunk_id"]) is None:
            raise ApiError.invalid_field("chunk_id", "no such chunk in this project")
        assertion = Assertions.insert(tx, {"response_id": call.ids[1], **body})  # type: ignore[typeddict-item]
        out = row(assertion)
        tx.commit()
    return created(out)


def list_assertions(call: Call) -> Reply:
    """`GET .../responses/{response_id}/assertions` (viewer)."""
    from rag_tenancy.models import Assertion

    params = call.page_params()
    scope = call.project_scope(Viewer)
    limit, after = call.page_limit(params)
    with call.tenancy.session(scope) as tx:
        if Responses.get(tx, call.ids[1]) is None:
            raise ApiError.not_found()
        rows = _filtered_page(tx, Assertion, Assertion.response_id, call.ids[1], after, limit)
        items = [row(a) for a in rows]
        tx.commit()
    return Reply(200, page(items, limit, "id"))


# ---- membership administration -----------------------------------------------------------


def _rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else 0


def _parse_role(body: dict[str, Any]) -> str:
    role: str = body["role"]
    if role not in ROLES:
        raise ApiError.invalid_field("role", "must be viewer, editor, admin or owner")
    return role


def _check_within_own_role(call: Call, role: str) -> None:
    """Nobody grants, changes or removes a role above their own."""
    own = next((m.role for m in call.context.memberships if m.project == call.ids[0]), None)
    if own is None:
        raise ApiError.not_found()
    if _rank(role) > _rank(own):
        raise ApiError.forbidden("you cannot grant or change a role above your own")


def _last_owner() -> ApiError:
    return ApiError(
        409,
        "last_owner",
        "the project's last owner cannot be removed or demoted; grant owner to someone else first",
    )


def _lock_memberships(tx: ScopedSession[ProjectScope[Admin]]) -> None:
    """Serialises membership changes of one project (the Rust service's advisory lock key)."""
    tx.session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:key AS text), 0))"),
        {"key": f"memberships:{tx.scope.project_id}"},
    )


def _audit(tx: ScopedSession[ProjectScope[Admin]], action: str, subject: dict[str, Any]) -> None:
    """One `tenancy.audit_log` row in the same transaction (actor = the caller)."""
    scope = tx.scope
    tx.session.execute(
        sa.text(
            "INSERT INTO tenancy.audit_log (tenant_id, project_id, actor, action, subject) "
            "VALUES (:tenant, :project, :actor, :action, CAST(:subject AS jsonb))"
        ),
        {
            "tenant": scope.tenant_id,
            "project": scope.project_id,
            "actor": str(scope.user_id),
            "action": action,
            "subject": json.dumps(subject, default=str),
        },
    )


def _member(tx: ScopedSession[ProjectScope[Admin]], user: uuid.UUID) -> UserProjectRole | None:
    scope = tx.scope
    return tx.session.scalars(
        sa.select(UserProjectRole).where(
            UserProjectRole.tenant_id == scope.tenant_id,
            UserProjectRole.project_id == scope.project_id,
            UserProjectRole.user_id == user,
        )
    ).first()


def _owner_count(tx: ScopedSession[ProjectScope[Admin]]) -> int:
    scope = tx.scope
    return int(
        tx.session.execute(
            sa.select(sa.func.count()).where(
                UserProjectRole.tenant_id == scope.tenant_id,
                UserProjectRole.project_id == scope.project_id,
                UserProjectRole.role == "owner",
            )
        ).scalar_one()
    )


def list_members(call: Call) -> Reply:
    """`GET .../members` (admin)."""
    params = call.page_params()
    scope = call.project_scope(Admin)
    limit, after = call.page_limit(params)
    with call.tenancy.session(scope) as tx:
        statement = sa.select(UserProjectRole).where(
            UserProjectRole.tenant_id == scope.tenant_id,
            UserProjectRole.project_id == scope.project_id,
        )
        if after is not None:
            statement = statement.where(UserProjectRole.user_id > after)
        statement = statement.order_by(UserProjectRole.user_id).limit(limit)
        items = [row(m) for m in tx.session.scalars(statement)]
        tx.commit()
    return Reply(200, page(items, limit, "user_id"))


def add_member(call: Call) -> Reply:
    """`POST .../members` (admin; owners only for `owner`)."""
    body = call.body({"user_id": (an_uuid, True), "role": (string, True)})
    scope = call.project_scope(Admin)
    role = _parse_role(body)
    _check_within_own_role(call, role)
    with call.tenancy.session(scope) as tx:
        _lock_memberships(tx)
        member = tx.session.scalars(
            sa.insert(UserProjectRole)
            .values(
                tenant_id=scope.tenant_id,
                project_id=scope.project_id,
                user_id=body["user_id"],
                role=role,
            )
            .returning(UserProjectRole)
        ).one()
        out = row(member)
        _audit(tx, "member.add", {"user_id": str(body["user_id"]), "role": role})
        tx.commit()
    return created(out)


def change_role(call: Call) -> Reply:
    """`PUT .../members/{user_id}` (admin): never demotes the last owner."""
    body = call.body({"role": (string, True)})
    scope = call.project_scope(Admin)
    role = _parse_role(body)
    _check_within_own_role(call, role)
    user = call.ids[1]
    with call.tenancy.session(scope) as tx:
        _lock_memberships(tx)
        current = _member(tx, user)
        if current is None:
            raise ApiError.not_found()
        previous = current.role
        _check_within_own_role(call, previous)
        if previous == "owner" and role != "owner" and _owner_count(tx) <= 1:
            raise _last_owner()
        member = tx.session.scalars(
            sa.update(UserProjectRole)
            .where(
                UserProjectRole.tenant_id == scope.tenant_id,
                UserProjectRole.project_id == scope.project_id,
                UserProjectRole.user_id == user,
            )
            .values(role=role)
            .returning(UserProjectRole)
            .execution_options(synchronize_session=False, populate_existing=True)
        ).first()
        if member is None:
            raise ApiError.not_found()
        out = row(member)
        _audit(
            tx,
            "member.set_role",
            {"user_id": str(user), "role": role, "previous_role": previous},
        )
        tx.commit()
    return Reply(200, out)


def remove_member(call: Call) -> Reply:
    """`DELETE .../members/{user_id}` (admin): never removes the last owner."""
    scope = call.project_scope(Admin)
    user = call.ids[1]
    with call.tenancy.session(scope) as tx:
        _lock_memberships(tx)
        current = _member(tx, user)
        if current is None:
            raise ApiError.not_found()
        previous = current.role
        _check_within_own_role(call, previous)
        if previous == "owner" and _owner_count(tx) <= 1:
            raise _last_owner()
        deleted = tx.session.execute(
            sa.delete(UserProjectRole)
            .where(
                UserProjectRole.tenant_id == scope.tenant_id,
                UserProjectRole.project_id == scope.project_id,
                UserProjectRole.user_id == user,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not deleted:
            raise ApiError.not_found()
        _audit(tx, "member.remove", {"user_id": str(user), "previous_role": previous})
        tx.commit()
    return Reply(204)


Handler = Callable[[Call], Reply]

#: Every tenant route: (method, path pattern, minimum role, handler). `{...}` segments after
#: the tenant are ids (404 when not a UUID).
ROUTES: Sequence[tuple[str, str, str, Handler]] = (
    ("GET", "/t/{tenant_id}/projects", "viewer", my_projects),
    ("POST", "/t/{tenant_id}/search", "viewer", search_tenant),
    ("GET", "/t/{tenant_id}/projects/{project_id}/documents", "viewer", list_documents),
    ("POST", "/t/{tenant_id}/projects/{project_id}/documents", "editor", create_document),
    ("GET", "/t/{tenant_id}/projects/{project_id}/documents/{document_id}", "viewer", get_document),
    ("PATCH", "/t/{tenant_id}/projects/{project_id}/documents/{document_id}", "editor", update_document),
    ("DELETE", "/t/{tenant_id}/projects/{project_id}/documents/{document_id}", "admin", delete_document),
    ("GET", "/t/{tenant_id}/projects/{project_id}/documents/{document_id}/chunks", "viewer", list_chunks),
    ("POST", "/t/{tenant_id}/projects/{project_id}/documents/{document_id}/chunks", "editor", ingest_chunks),
    ("POST", "/t/{tenant_id}/projects/{project_id}/search", "viewer", search_project),
    ("GET", "/t/{tenant_id}/projects/{project_id}/queries", "viewer", list_queries),
    ("POST", "/t/{tenant_id}/projects/{project_id}/queries", "viewer", create_query),
    ("GET", "/t/{tenant_id}/projects/{project_id}/queries/{query_id}", "viewer", get_query),
    ("GET", "/t/{tenant_id}/projects/{project_id}/queries/{query_id}/responses", "viewer", list_responses),
    ("POST", "/t/{tenant_id}/projects/{project_id}/queries/{query_id}/responses", "editor", create_response),
    ("GET", "/t/{tenant_id}/projects/{project_id}/responses/{response_id}/assertions", "viewer", list_assertions),
    ("POST", "/t/{tenant_id}/projects/{project_id}/responses/{response_id}/assertions", "editor", create_assertion),
    ("GET", "/t/{tenant_id}/projects/{project_id}/members", "admin", list_members),
    ("POST", "/t/{tenant_id}/projects/{project_id}/members", "admin", add_member),
    ("PUT", "/t/{tenant_id}/projects/{project_id}/members/{user_id}", "admin", change_role),
    ("DELETE", "/t/{tenant_id}/projects/{project_id}/members/{user_id}", "admin", remove_member),
)
