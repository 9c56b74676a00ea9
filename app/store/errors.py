"""Named refusals of the store; each message is one line a person can act on."""

from __future__ import annotations


class Refused(Exception):
    """An operation that was refused: invalid input, wrong state, not found."""


class NotFound(Refused):
    pass


class WrongState(Refused):
    pass


class InvalidRecord(Refused):
    """A record value that cannot be stored; names the record type and field."""


class DatabaseRefused(Refused):
    """A database location or URL that cannot be used."""
