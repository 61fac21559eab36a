"""`python -m rag_service_py [serve [--dev] | token USER_UUID [TTL_SECONDS]]`.

`serve` reads the configuration (config.py), runs the runtime's startup check (the database
speaks the context contract and holds the context key) before it listens, prints
`rag-service-py: listening on http://HOST:PORT` on stdout and serves until SIGTERM or Ctrl-C.
`token` prints a development token signed with `RAG_JWT_SECRET`. Every failure is one line on
stderr (`rag-service-py: <sentence>`) and exit status 1."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import uuid
from socketserver import ThreadingMixIn
from types import FrameType
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from rag_tenancy import Misconfigured, Tenancy

from .api import Limits
from .app import App
from .auth import JwtVerifier, mint_token
from .config import Config, ConfigError

PROG = "rag-service-py"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog (socketserver's default is 5)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        logging.getLogger("rag_service_py.access").info(format, *args)


def _fail(sentence: str) -> int:
    print(f"{PROG}: {sentence}", file=sys.stderr, flush=True)
    return 1


def serve(config: Config) -> int:
    """Checks the runtime, then serves until SIGTERM/SIGINT."""
    engine = sa.create_engine(
        config.database_url,
        pool_size=config.db_max_connections,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"options": f"-c statement_timeout={config.statement_timeout_ms}"},
    )
    tenancy = Tenancy(engine)
    try:
        tenancy.check()
    except Misconfigured as err:
        # The database's refusal may carry a CONTEXT line: one sentence is its first line.
        first = (str(err).splitlines() or [""])[0]
        return _fail(f"tenancy misconfigured: {first}")
    except DBAPIError as err:
        return _fail(f"cannot reach the database: {str(err.orig).splitlines()[0]}")
    verifier = JwtVerifier(
        config.jwt_secret,
        config.jwt_issuer,
        config.jwt_audience,
        leeway_secs=config.jwt_leeway_secs,
        max_lifetime_secs=config.jwt_max_lifetime_secs,
    )
    limits = Limits(config.max_page_size, config.max_k, config.body_limit_bytes)
    app = App(tenancy, verifier, limits)
    try:
        server = make_server(
            config.bind_host,
            config.bind_port,
            app,
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as err:
        return _fail(f"cannot listen on {config.bind_host}:{config.bind_port}: {err.strerror}")

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{PROG}: listening on http://{config.bind_host}:{server.server_port}", flush=True)
    logging.getLogger("rag_service_py").info("context contract and key checked")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s %(message)s")
    command = args[0] if args else "serve"
    try:
        if command == "serve" and set(args[1:]) <= {"--dev"}:
            return serve(Config.from_env(dev="--dev" in args[1:]))
        if command == "token" and 2 <= len(args) <= 3:
            config = Config.from_env()
            try:
                user = uuid.UUID(args[1])
                ttl = int(args[2]) if len(args) == 3 else 3600
            except ValueError:
                return _fail("token takes a user UUID and an optional lifetime in seconds")
            token = mint_token(config.jwt_secret, config.jwt_issuer, config.jwt_audience, user, ttl)
            print(token)
            return 0
    except ConfigError as err:
        return _fail(str(err))
    return _fail(f"usage: {PROG} [serve [--dev] | token USER_UUID [TTL_SECONDS]]")


if __name__ == "__main__":
    sys.exit(main())
