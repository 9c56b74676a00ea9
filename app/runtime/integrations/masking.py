"""Keeping secrets (SMTP password, gateway token, webhook tokens) out of run data and logs.

Two nets: values under secret-looking keys are replaced, and the secret values the
integrations have loaded in this process are replaced wherever they appear inside text
(a server echoing a token back in an error page, for instance).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

MASK: Final = "********"
SECRET_KEYS: Final = frozenset({
    "password", "token", "secret", "authorization", "webhook_token", "api_key", "apikey",
    "access_token", "bearer",
})
# Shorter values would mask ordinary words; real passwords and tokens are longer.
_MIN_SECRET_LENGTH: Final = 4

_known: set[str] = set()
_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """Note a secret in use, so `mask_secrets` and `mask_text` hide it inside any text."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _known.add(value)


def mask_text(text: str) -> str:
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return mask_secrets(value)
    if isinstance(value, (list, tuple)):
        return [_mask(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_secrets(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` (nested dicts and lists too) with every secret replaced by a mask."""
    masked: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key.lower() in SECRET_KEYS and value not in (None, ""):
            masked[key] = MASK
        else:
            masked[key] = _mask(value)
    return masked


class SecretMaskingFilter(logging.Filter):
    """A logging filter that masks known secrets in a record's message before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
