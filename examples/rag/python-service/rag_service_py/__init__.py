"""The Python twin of the RAG example service (`examples/rag/service`, docs/python.md).

The same routes, JWT handling and HTTP error contract (`{"error": {"code", "message"}}`) as
the Rust service, over the generated `rag_tenancy` package: every `/t/{tenant_id}/...` request
verifies a bearer JWT, authorizes the user in the tenant, proves the role the operation needs
and runs its statements in a scoped session under row-level security.
"""

from __future__ import annotations

from .app import App
from .auth import AuthFailure, JwtVerifier, mint_token
from .config import Config
from .errors import ApiError

__all__ = ["ApiError", "App", "AuthFailure", "Config", "JwtVerifier", "mint_token"]
