"""Why a message could not be delivered, in words a person can act on, and whether to retry."""

from __future__ import annotations

from typing import Final

from app.store.errors import Refused

# Error types a step can carry after a delivery failure (RUNTIME_API "Integrations").
ERROR_TYPES: Final = (
    "NotConnected", "ConnectionRefused", "Timeout", "AuthenticationFailed", "RecipientRejected",
    "SenderRejected", "MessageRejected", "ServerError", "GatewayRejected", "GatewayError",
    "DeliveryUncertain",
)


class DeliveryError(Exception):
    """A message was not (or not certainly) delivered.

    `transient` True: try again later with the same idempotency key (the engine backs off);
    False: the step fails and a person decides. `str(exc)` never carries a secret.
    """

    def __init__(self, error_type: str, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.transient = transient

    @property
    def message(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"DeliveryError({self.error_type!r}, {str(self)!r}, transient={self.transient})"


class IntegrationSettingError(Refused):
    """An integration setting that cannot be stored; one line naming the key."""
