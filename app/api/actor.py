"""Who is acting: the team member recorded in history as having published, started, retried."""

from __future__ import annotations

import getpass
import os


def default_actor() -> str:
    """The operating-system login name (DESIGN section 8: the default of `--as`)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def choose_actor(given: str, chosen_in_settings: str | None) -> str:
    """The actor for the app: an explicit `--as` wins, then the name chosen in Settings,
    then the login name (`given` is the login name when no `--as` was given)."""
    if given != default_actor():
        return given
    chosen = (chosen_in_settings or "").strip()
    return chosen or given
