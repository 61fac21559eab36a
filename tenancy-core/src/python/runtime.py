"""The tenancy runtime for Python: context keys, signed context tokens, scopes and the scoped
session (docs/python.md). The Python twin of `tenancy-runtime` (docs/context.md is the wire
contract both speak): the same claims, the same HMAC-SHA256 token under the same `kid:hex`
key, and the same single `BEGIN; /*pad*/ SELECT "<schema>".install_context('<token>')`
statement, so the database cannot tell a Python transaction from a Rust one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from ._model import (
    HELPER_SCHEMA,
    MEMBERSHIPS_TABLE,
    PROJECTS_TABLE,
    ROLE_NAMES,
    TABLE_SCHEMA,
    TENANT_MEMBERSHIPS_TABLE,
)

__all__ = [
    "AsyncScopedSession",
    "AsyncTenancy",
    "CONTEXT_CONTRACT",
    "CONTEXT_KEY_ENV",
    "CONTEXT_KEY_FILE_ENV",
    "ContextKey",
    "Forbidden",
    "Membership",
    "Misconfigured",
    "NotFound",
    "ProjectAccess",
    "ProjectScope",
    "ProjectsAccess",
    "ProjectsScope",
    "ReadScope",
    "RequestContext",
    "Role",
    "ScopedSession",
    "Tenancy",
    "TenancyError",
    "async_tenancy_session",
    "begin_statement",
    "context_claims",
    "tenancy_session",
]

#: The signed context contract this runtime speaks (docs/context.md).
CONTEXT_CONTRACT = 3
#: The environment variable holding the context key as `<kid>:<hex secret>`.
CONTEXT_KEY_ENV = "TENANCY_CONTEXT_KEY"
#: The environment variable naming a file that holds the context key as `<kid>:<hex secret>`.
CONTEXT_KEY_FILE_ENV = "TENANCY_CONTEXT_KEY_FILE"
#: The bytes of a query `pg_stat_activity` shows when `track_activity_query_size` is unknown.
DEFAULT_ACTIVITY_QUERY_SIZE = 1024

_KID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class TenancyError(Exception):
    """Base class of the errors this runtime raises itself."""


class Misconfigured(TenancyError):
    """The key, the engine or the database is not usable (one sentence)."""


class NotFound(TenancyError):
    """No such tenant or project for this user (the same answer as one that does not exist)."""


class Forbidden(TenancyError):
    """The user's role in the project is below the role asked for."""


# ---- roles -------------------------------------------------------------------------------


class Role:
    """Base of the generated role marker classes (`roles.py`). Each role subclasses the role
    ranked just below it, so `Owner` is a subclass of `Admin`, ... of `Viewer`: a scope typed
    with a higher role is accepted wherever a lower one is required, and never the reverse.

    The rank only drives the check in `require`; what the database enforces is the user's actual
    role, read from the memberships table."""

    NAME: ClassVar[str] = ""
    RANK: ClassVar[int] = -1


R = TypeVar("R", bound=Role)
R_co = TypeVar("R_co", bound=Role, covariant=True)


# ---- keys and tokens ---------------------------------------------------------------------


class ContextKey:
    """The secret context tokens are signed with and its id in the database's key table
    (`tenancy key install`). Its repr never shows the secret."""

    __slots__ = ("_kid", "_secret")

    def __init__(self, kid: str, secret: bytes) -> None:
        if not _KID.fullmatch(kid):
            raise Misconfigured(f"context key id {kid!r} does not match [A-Za-z0-9_-]{{1,64}}")
        if len(secret) < 32:
            raise Misconfigured(
                f"context key {kid!r} has {len(secret)} bytes of secret; at least 32 are needed"
            )
        self._kid = kid
        self._secret = bytes(secret)

    @classmethod
    def parse(cls, text: str) -> ContextKey:
        """Parses `<kid>:<hex secret>` (what `tenancy key install --generate` writes)."""
        kid, sep, hex_secret = text.strip().partition(":")
        if not sep:
            raise Misconfigured("a context key must be written as <kid>:<hex secret>")
        hex_secret = hex_secret.strip()
        if len(hex_secret) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", hex_secret):
            raise Misconfigured(
                f"the secret of context key {kid!r} is not an even number of hex digits"
            )
        return cls(kid, bytes.fromhex(hex_secret))

    @classmethod
    def from_env(cls) -> ContextKey | None:
        """The key from `TENANCY_CONTEXT_KEY` or, when unset, from the file named by
        `TENANCY_CONTEXT_KEY_FILE`; None when neither is set (the Rust runtime's order)."""
        text = os.environ.get(CONTEXT_KEY_ENV, "").strip()
        if text:
            try:
                return cls.parse(text)
            except Misconfigured as err:
                raise Misconfigured(f"{CONTEXT_KEY_ENV}: {err}") from None
        path = os.environ.get(CONTEXT_KEY_FILE_ENV, "").strip()
        if path:
            try:
                with open(path, encoding="utf-8") as file:
                    content = file.read()
            except OSError as err:
                raise Misconfigured(f"{CONTEXT_KEY_FILE_ENV}: cannot read {path}: {err}") from None
            try:
                return cls.parse(content)
            except Misconfigured as err:
                raise Misconfigured(f"{CONTEXT_KEY_FILE_ENV} ({path}): {err}") from None
        return None

    @property
    def kid(self) -> str:
        """The key's id, as recorded in the database's key table."""
        return self._kid

    def sign(self, domain: str, body: str) -> str:
        """Lower-case hex HMAC-SHA256 of `<domain>;<body>`."""
        message = domain.encode() + b";" + body.encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def mint_until(self, claims: str, expires: int) -> str:
        """A token carrying `claims`, valid until `expires` (unix seconds) on any backend:
        `<hmac>.<kid>;<expires>;*;<claims>` (byte-identical to `ContextKey::mint_until` in
        Rust; `tests/python/context_vectors.json` holds the shared vectors)."""
        if expires < 0:
            raise Misconfigured("a context token cannot expire before 1970")
        body = f"{self._kid};{expires};*;{claims}"
        return f"{self.sign('token', body)}.{body}"

    def mint(self, claims: str, lifetime: float) -> str:
        """A token carrying `claims`, valid for `lifetime` seconds from now."""
        return self.mint_until(claims, int(time.time() + lifetime))

    def __repr__(self) -> str:
        return f"ContextKey(kid={self._kid!r}, secret=<redacted>)"


def context_claims(
    tenant: uuid.UUID, user: uuid.UUID, memberships: Sequence[Membership] | None
) -> str:
    """The claims of a context (docs/context.md): `tenant;user` followed, for every rank from
    0 to the highest the user holds in the scope, by `{projects of at least that rank}`
    (projects sorted by id). `None` for the authorization transaction (tenant and user only)."""
    claims = f"{tenant};{user}"
    members = sorted(memberships or (), key=lambda m: m.project)
    if members:
        for rank in range(max(m.rank for m in members) + 1):
            claims += ";{" + ",".join(str(m.project) for m in members if m.rank >= rank) + "}"
    return claims


def begin_statement(token: str, pad: int = DEFAULT_ACTIVITY_QUERY_SIZE) -> str:
    """`BEGIN; /*<pad dots>*/ SELECT "<schema>".install_context('<token>')`: one simple query
    that opens the transaction and installs the context (the pad keeps the token out of
    `pg_stat_activity`). It holds a live token: never log it."""
    if "'" in token:
        raise Misconfigured("a context token never contains a quote")
    return (
        "BEGIN; /*" + "." * pad + f"*/ SELECT \"{HELPER_SCHEMA}\".install_context('{token}')"
    )


# ---- scopes ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Membership:
    """The user's actual role in one project, with its rank in the database enum."""

    project: uuid.UUID
    role: str
    rank: int


_SEAL = object()


class ReadScope(Generic[R_co]):
    """What a transaction may see: one tenant, one user, projects with the user's actual role
    in each, proven to be at least `R_co` in every one. Only `RequestContext` hands scopes out;
    the context the database receives is built from the actual roles, never from `R_co`."""

    __slots__ = ("_tenant", "_user", "_memberships")

    def __init__(
        self, seal: object, tenant: uuid.UUID, user: uuid.UUID, memberships: Iterable[Membership]
    ) -> None:
        if seal is not _SEAL:
            raise TypeError("scopes come from RequestContext (Tenancy.authorize)")
        self._tenant = tenant
        self._user = user
        self._memberships = tuple(sorted(memberships))

    @property
    def tenant_id(self) -> uuid.UUID:
        """The tenant every row of the transaction belongs to."""
        return self._tenant

    @property
    def user_id(self) -> uuid.UUID:
        """The user on whose behalf the transaction runs."""
        return self._user

    @property
    def project_ids(self) -> list[uuid.UUID]:
        """The scope's projects, sorted."""
        return [m.project for m in self._memberships]

    @property
    def memberships(self) -> tuple[Membership, ...]:
        """The scope's projects with the user's actual role, sorted by project id."""
        return self._memberships

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tenant={self._tenant}, user={self._user}, "
            f"projects={[str(p) for p in self.project_ids]})"
        )


class ProjectsScope(ReadScope[R_co]):
    """A read scope over several projects (never a write scope)."""

    __slots__ = ()


class ProjectScope(ReadScope[R_co]):
    """One project with a role of at least `R_co`: the only kind of scope repositories write
    through."""

    __slots__ = ()

    @property
    def project_id(self) -> uuid.UUID:
        """The project new rows are written into."""
        return self._memberships[0].project


class RequestContext:
    """Who is asking, in which tenant, with which role in which project. Built only by
    `Tenancy.authorize` from the memberships table; narrow it to a scope."""

    __slots__ = ("_tenant", "_user", "_memberships")

    def __init__(
        self, seal: object, tenant: uuid.UUID, user: uuid.UUID, memberships: Iterable[Membership]
    ) -> None:
        if seal is not _SEAL:
            raise TypeError("a RequestContext comes from Tenancy.authorize")
        best: dict[uuid.UUID, Membership] = {}
        for m in memberships:
            if m.project not in best or best[m.project].rank < m.rank:
                best[m.project] = m
        self._tenant = tenant
        self._user = user
        self._memberships = tuple(sorted(best.values()))

    @property
    def tenant_id(self) -> uuid.UUID:
        """The tenant this context was authorized for."""
        return self._tenant

    @property
    def user_id(self) -> uuid.UUID:
        """The authenticated user."""
        return self._user

    @property
    def memberships(self) -> tuple[Membership, ...]:
        """Every project of the tenant the user holds a role in, sorted by project id."""
        return self._memberships

    def project(self, project_id: uuid.UUID) -> ProjectAccess:
        """The user's access to one project; `NotFound` when they hold no role there."""
        for m in self._memberships:
            if m.project == project_id:
                return ProjectAccess(_SEAL, self, m)
        raise NotFound("no such project")

    def projects(self, project_ids: Iterable[uuid.UUID]) -> ProjectsAccess:
        """Several projects (for read scopes); `NotFound` if any is not the user's."""
        chosen = {p: self.project(p).membership for p in project_ids}
        return ProjectsAccess(_SEAL, self, chosen.values())

    def all_projects(self) -> ProjectsAccess:
        """Every project of this tenant the user holds a role in."""
        return ProjectsAccess(_SEAL, self, self._memberships)


def _check_role(role: type[Role]) -> None:
    if role.NAME not in ROLE_NAMES or ROLE_NAMES.index(role.NAME) != role.RANK:
        raise Misconfigured(f"{role.__name__} is not a role of this model")


class ProjectAccess:
    """The user's access to one project, before a role is required."""

    __slots__ = ("_ctx", "membership")

    def __init__(self, seal: object, ctx: RequestContext, membership: Membership) -> None:
        if seal is not _SEAL:
            raise TypeError("a ProjectAccess comes from RequestContext.project")
        self._ctx = ctx
        #: The user's actual role in the project.
        self.membership = membership

    def require(self, role: type[R]) -> ProjectScope[R]:
        """A scope of this project when the user's role is at least `role`, else `Forbidden`."""
        _check_role(role)
        if self.membership.rank < role.RANK:
            raise Forbidden(f"this needs the role {role.NAME} or above in the project")
        return ProjectScope(_SEAL, self._ctx.tenant_id, self._ctx.user_id, [self.membership])


class ProjectsAccess:
    """The user's access to several projects, before a role is required."""

    __slots__ = ("_ctx", "_memberships")

    def __init__(
        self, seal: object, ctx: RequestContext, memberships: Iterable[Membership]
    ) -> None:
        if seal is not _SEAL:
            raise TypeError("a ProjectsAccess comes from RequestContext")
        self._ctx = ctx
        self._memberships = tuple(memberships)

    def require(self, role: type[R]) -> ProjectsScope[R]:
        """A read scope of all these projects when the role is at least `role` in each."""
        _check_role(role)
        if any(m.rank < role.RANK for m in self._memberships):
            raise Forbidden(f"this needs the role {role.NAME} or above in every project")
        return ProjectsScope(_SEAL, self._ctx.tenant_id, self._ctx.user_id, self._memberships)

    def with_at_least(self, role: type[R]) -> ProjectsScope[R]:
        """A read scope of those of these projects where the role is at least `role`."""
        _check_role(role)
        kept = [m for m in self._memberships if m.rank >= role.RANK]
        return ProjectsScope(_SEAL, self._ctx.tenant_id, self._ctx.user_id, kept)


# ---- the scoped session ------------------------------------------------------------------

S_co = TypeVar("S_co", bound=ReadScope[Role], covariant=True)
S = TypeVar("S", bound=ReadScope[Role])


class ScopedSession(Generic[S_co]):
    """A SQLAlchemy session inside a transaction that carries a scope's context: the only door
    to the generated repositories. Rolled back unless `commit()` is called."""

    __slots__ = ("_session", "_scope", "_open")

    def __init__(self, seal: object, session: Session, scope: S_co) -> None:
        if seal is not _SEAL:
            raise TypeError("a ScopedSession comes from Tenancy.session / tenancy_session")
        self._session = session
        self._scope = scope
        self._open = True

    @property
    def scope(self) -> S_co:
        """The scope the transaction was opened with."""
        return self._scope

    @property
    def session(self) -> Session:
        """The ORM session (still under row-level security and the scope's context)."""
        if not self._open:
            raise TenancyError("this scoped session has ended (committed or rolled back)")
        return self._session

    def commit(self) -> None:
        """Commits; the context ends with the transaction and the session is closed."""
        session = self.session
        self._open = False
        session.commit()

    def rollback(self) -> None:
        """Rolls back explicitly (leaving the `with` block without `commit` does the same)."""
        session = self.session
        self._open = False
        session.rollback()


#: The role and its rank in the role enum: the select list of the membership reads.
_ROLE_AND_RANK = (
    "role::pg_catalog.text, pg_catalog.array_position(pg_catalog.enum_range("
    f'NULL::"{HELPER_SCHEMA}".project_role), role) - 1'
)


def _memberships_query() -> Any:
    return text(
        f"SELECT project_id, {_ROLE_AND_RANK} "
        f'FROM "{TABLE_SCHEMA}"."{MEMBERSHIPS_TABLE}" '
        "WHERE tenant_id = :tenant AND user_id = :user ORDER BY project_id"
    )


def _tenant_role_query() -> Any:
    return text(
        f"SELECT {_ROLE_AND_RANK} "
        f'FROM "{TABLE_SCHEMA}"."{TENANT_MEMBERSHIPS_TABLE}" '
        "WHERE tenant_id = :tenant AND user_id = :user"
    )


_PROJECTS_QUERY = text(
    f'SELECT id FROM "{TABLE_SCHEMA}"."{PROJECTS_TABLE}" WHERE tenant_id = :tenant ORDER BY id'
)


def _ranked(project: uuid.UUID, role: str, rank: Any) -> Membership:
    if rank is None or role not in ROLE_NAMES:
        raise Misconfigured(f"role {role!r} has no rank")
    return Membership(project, role, int(rank))


def _context_from_rows(
    user: uuid.UUID,
    tenant: uuid.UUID,
    rows: Sequence[Any],
    tenant_role: Membership | None = None,
    tenant_projects: Sequence[Any] = (),
) -> RequestContext:
    """The context: the project roles, and with a tenant-wide role that role in every project
    of the tenant (the higher of the two wins, as in the Rust runtime)."""
    memberships = [_ranked(project, role, rank) for project, role, rank in rows]
    if tenant_role is not None:
        memberships.extend(
            Membership(project, tenant_role.role, tenant_role.rank) for (project,) in tenant_projects
        )
    if not memberships and tenant_role is None:
        raise NotFound("no membership in this tenant")
    return RequestContext(_SEAL, tenant, user, memberships)


_CONTRACT_QUERY = text(f'SELECT "{HELPER_SCHEMA}".context_contract()')
_ACTIVITY_SIZE_QUERY = text(
    "SELECT setting::pg_catalog.int4 FROM pg_catalog.pg_settings "
    "WHERE name = 'track_activity_query_size'"
)
_CLAIMS_QUERY = text(f'SELECT "{HELPER_SCHEMA}".context_claims()')


class _TenancyBase:
    """What the sync and the async entry points share: the key, the claims, the statement."""

    def __init__(self, key: ContextKey | None, token_lifetime: float) -> None:
        self._key = key if key is not None else ContextKey.from_env()
        self._token_lifetime = token_lifetime
        self._pad = DEFAULT_ACTIVITY_QUERY_SIZE

    def _require_key(self) -> ContextKey:
        if self._key is None:
            raise Misconfigured(
                f"no context key: set {CONTEXT_KEY_ENV}=<kid>:<hex> or {CONTEXT_KEY_FILE_ENV}"
            )
        return self._key

    def _statement(self, claims: str) -> str:
        return begin_statement(self._require_key().mint(claims, self._token_lifetime), self._pad)

    def context_claims(self, scope: ReadScope[Role]) -> str:
        """The claims `session(scope)` signs (safe to log: not a token)."""
        return context_claims(scope.tenant_id, scope.user_id, scope.memberships)

    def begin_statement(self, scope: ReadScope[Role]) -> str:
        """The statement `session(scope)` sends now. Holds a live token: never log it."""
        return self._statement(self.context_claims(scope))

    def _checked(self, contract: Any, size: Any) -> str:
        """Validates the contract, learns the pad; returns the probe statement."""
        if contract != CONTEXT_CONTRACT:
            raise Misconfigured(
                f"the database speaks context contract {contract}, this runtime "
                f"{CONTEXT_CONTRACT}: apply the migrations"
            )
        self._pad = max(DEFAULT_ACTIVITY_QUERY_SIZE, int(size))
        return begin_statement(self._require_key().mint("", self._token_lifetime), self._pad)

    def _refused(self, err: DBAPIError) -> Misconfigured:
        # One sentence: the server's primary message, without its CONTEXT lines.
        diag = getattr(err.orig, "diag", None)
        reason = getattr(diag, "message_primary", None) or str(err.orig).splitlines()[0]
        return Misconfigured(
            f"the database refused this runtime's context key {self._require_key().kid!r}: "
            f"{reason}"
        )


class Tenancy(_TenancyBase):
    """Entry point: the engine of the application's login role (subject to row-level security)
    and the context key. `check()` once at startup, then `authorize` per request and
    `session(scope)` per transaction."""

    def __init__(
        self,
        engine: Engine,
        *,
        key: ContextKey | None = None,
        token_lifetime: float = 30.0,
    ) -> None:
        super().__init__(key, token_lifetime)
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine of the application's login role."""
        return self._engine

    @contextmanager
    def _transaction(self, statement: str) -> Iterator[Session]:
        import psycopg
        import psycopg.pq

        with self._engine.connect() as connection:
            driver = connection.connection.driver_connection
            if not isinstance(driver, psycopg.Connection):
                raise Misconfigured(
                    "the engine must use the psycopg 3 driver (postgresql+psycopg://...)"
                )
            if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                driver.rollback()
            autocommit = driver.autocommit
            # In autocommit mode psycopg sends no BEGIN of its own, so the one simple query below
            # opens the transaction and installs the context in one round trip; the statements
            # that follow run in that server-side transaction until COMMIT or ROLLBACK.
            driver.autocommit = True
            try:
                driver.execute(statement)
                with Session(bind=connection, expire_on_commit=False) as session:
                    yield session
            finally:
                if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    driver.rollback()
                driver.autocommit = autocommit

    @contextmanager
    def session(self, scope: S) -> Iterator[ScopedSession[S]]:
        """A transaction carrying `scope`'s context, as a `ScopedSession`. Leaving the block
        without `commit()` rolls back; the context never outlives the transaction."""
        with self._transaction(self.begin_statement(scope)) as session:
            yield ScopedSession(_SEAL, session, scope)

    def authorize(self, user: uuid.UUID, tenant: uuid.UUID) -> RequestContext:
        """Reads the user's memberships in `tenant` (in a transaction whose context holds only
        the tenant and the user) and builds their `RequestContext`; `NotFound` without any."""
        statement = self._statement(context_claims(tenant, user, None))
        params = {"tenant": tenant, "user": user}
        tenant_role = None
        with self._transaction(statement) as session:
            rows = session.execute(_memberships_query(), params).all()
            if TENANT_MEMBERSHIPS_TABLE is not None:
                found = session.execute(_tenant_role_query(), params).first()
                if found is not None:
                    tenant_role = _ranked(tenant, found[0], found[1])
            session.commit()
        projects: Sequence[Any] = ()
        if tenant_role is not None:
            # The tenant's projects, under a context listing the tenant id at the tenant-wide
            # role's ranks (the projects policy admits a tenant-wide member to all of them).
            listing = self._statement(context_claims(tenant, user, [tenant_role]))
            with self._transaction(listing) as session:
                projects = session.execute(_PROJECTS_QUERY, {"tenant": tenant}).all()
                session.commit()
        return _context_from_rows(user, tenant, rows, tenant_role, projects)

    def check(self) -> None:
        """Startup check: the database speaks contract 3 and accepts this key (a probe
        transaction with empty claims); learns `track_activity_query_size` for the pad."""
        self._require_key()
        with self._engine.connect() as connection:
            contract = connection.execute(_CONTRACT_QUERY).scalar_one()
            size = connection.execute(_ACTIVITY_SIZE_QUERY).scalar_one()
            connection.rollback()
        probe = self._checked(contract, size)
        try:
            with self._transaction(probe) as session:
                session.execute(_CLAIMS_QUERY)
        except DBAPIError as err:
            raise self._refused(err) from None


class AsyncScopedSession(Generic[S_co]):
    """The async twin of `ScopedSession`: an `AsyncSession` inside a transaction that carries a
    scope's context. Rolled back unless `await commit()` is called. (The generated repositories
    take the sync `ScopedSession`; use the models with `session` here.)"""

    __slots__ = ("_session", "_scope", "_open")

    def __init__(self, seal: object, session: AsyncSession, scope: S_co) -> None:
        if seal is not _SEAL:
            raise TypeError("an AsyncScopedSession comes from AsyncTenancy.session")
        self._session = session
        self._scope = scope
        self._open = True

    @property
    def scope(self) -> S_co:
        """The scope the transaction was opened with."""
        return self._scope

    @property
    def session(self) -> AsyncSession:
        """The async ORM session (still under row-level security and the scope's context)."""
        if not self._open:
            raise TenancyError("this scoped session has ended (committed or rolled back)")
        return self._session

    async def commit(self) -> None:
        """Commits; the context ends with the transaction and the session is closed."""
        session = self.session
        self._open = False
        await session.commit()

    async def rollback(self) -> None:
        """Rolls back explicitly (leaving the block without `commit` does the same)."""
        session = self.session
        self._open = False
        await session.rollback()


class AsyncTenancy(_TenancyBase):
    """The async entry point (`create_async_engine("postgresql+psycopg://...")`): the same
    claims, token and single statement as `Tenancy`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        key: ContextKey | None = None,
        token_lifetime: float = 30.0,
    ) -> None:
        super().__init__(key, token_lifetime)
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The async engine of the application's login role."""
        return self._engine

    @asynccontextmanager
    async def _transaction(self, statement: str) -> AsyncIterator[AsyncSession]:
        import psycopg
        import psycopg.pq

        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            if not isinstance(driver, psycopg.AsyncConnection):
                raise Misconfigured(
                    "the engine must use the psycopg 3 driver (postgresql+psycopg://...)"
                )
            if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await driver.rollback()
            autocommit = driver.autocommit
            await driver.set_autocommit(True)
            try:
                await driver.execute(statement)
                async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                    yield session
            finally:
                if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    await driver.rollback()
                await driver.set_autocommit(autocommit)

    @asynccontextmanager
    async def session(self, scope: S) -> AsyncIterator[AsyncScopedSession[S]]:
        """A transaction carrying `scope`'s context; leaving without `commit()` rolls back."""
        async with self._transaction(self.begin_statement(scope)) as session:
            yield AsyncScopedSession(_SEAL, session, scope)

    async def authorize(self, user: uuid.UUID, tenant: uuid.UUID) -> RequestContext:
        """`Tenancy.authorize`, async."""
        statement = self._statement(context_claims(tenant, user, None))
        params = {"tenant": tenant, "user": user}
        tenant_role = None
        async with self._transaction(statement) as session:
            rows = (await session.execute(_memberships_query(), params)).all()
            if TENANT_MEMBERSHIPS_TABLE is not None:
                found = (await session.execute(_tenant_role_query(), params)).first()
                if found is not None:
                    tenant_role = _ranked(tenant, found[0], found[1])
            await session.commit()
        projects: Sequence[Any] = ()
        if tenant_role is not None:
            listing = self._statement(context_claims(tenant, user, [tenant_role]))
            async with self._transaction(listing) as session:
                projects = (await session.execute(_PROJECTS_QUERY, {"tenant": tenant})).all()
                await session.commit()
        return _context_from_rows(user, tenant, rows, tenant_role, projects)

    async def check(self) -> None:
        """`Tenancy.check`, async."""
        self._require_key()
        async with self._engine.connect() as connection:
            contract = (await connection.execute(_CONTRACT_QUERY)).scalar_one()
            size = (await connection.execute(_ACTIVITY_SIZE_QUERY)).scalar_one()
            await connection.rollback()
        probe = self._checked(contract, size)
        try:
            async with self._transaction(probe) as session:
                await session.execute(_CLAIMS_QUERY)
        except DBAPIError as err:
            raise self._refused(err) from None


@contextmanager
def tenancy_session(
    engine: Engine, scope: S, *, key: ContextKey | None = None
) -> Iterator[ScopedSession[S]]:
    """`Tenancy(engine, key=key).session(scope)`: a transaction carrying `scope`'s context."""
    with Tenancy(engine, key=key).session(scope) as session:
        yield session


@asynccontextmanager
async def async_tenancy_session(
    engine: AsyncEngine, scope: S, *, key: ContextKey | None = None
) -> AsyncIterator[AsyncScopedSession[S]]:
    """`AsyncTenancy(engine, key=key).session(scope)`."""
    async with AsyncTenancy(engine, key=key).session(scope) as session:
        yield session
