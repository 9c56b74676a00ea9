"""The runtime as the command line and the app start it: headless, or inside the app."""

from __future__ import annotations

import logging

from app.runtime import Runtime
from app.runtime.integrations import SecretMaskingFilter
from app.store.database import Database

__all__ = ["Runtime", "mask_secrets_in_logs", "open_runtime", "parse_http"]


def open_runtime(db: Database, name: str | None = None, *, http: tuple[str, int] | None = None) -> Runtime:
    """A runtime on this database (not yet started); `http` also serves webhook triggers."""
    return Runtime(db, name, http=http)


def parse_http(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (HOST defaults to 127.0.0.1), or None if it is not that."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return (host or "127.0.0.1", int(port))


def mask_secrets_in_logs() -> None:
    """No handler of the root logger ever writes a known password or token."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretMaskingFilter())
