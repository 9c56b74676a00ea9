"""`clinicflow team add|list|set-role|remove`: team members as PostgreSQL logins (admin only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.api import team as api

from .common import EXIT_OK, CliContext, add_command, add_group, print_json

_ROLES = ", ".join(api.GROUP_ROLES)


def register(sub: Any) -> None:
    cmds = add_group(sub, "team", "team members and their roles (PostgreSQL only; admins)", "team_command")

    p = add_command(cmds, "add", "a login for a team member, in one role", _add)
    p.add_argument("name", metavar="NAME", help="their login name")
    p.add_argument("--role", required=True, metavar="ROLE",
                   help=f"staff, manager, designer, admin or runtime ({_ROLES})")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input (first line); without it the login has no password")

    p = add_command(cmds, "list", "the team members and their roles", _list)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "set-role", "give a team member another role", _set_role)
    p.add_argument("name", metavar="NAME")
    p.add_argument("role", metavar="ROLE")

    p = add_command(cmds, "remove", "remove a team member's login (their history stays)", _remove)
    p.add_argument("name", metavar="NAME")


def _add(args: argparse.Namespace, ctx: CliContext) -> int:
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    added = api.add_member(ctx.db, args.name, args.role, password)
    print(f"Added {added.name} as {added.role}", file=sys.stderr)
    return EXIT_OK


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    members = api.list_members(ctx.db)
    if args.json:
        print_json([m.to_json() for m in members])
        return EXIT_OK
    if not members:
        print("No team members yet. Add one with: clinicflow team add NAME --role staff --password-stdin",
              file=sys.stderr)
        return EXIT_OK
    print(f"{'NAME':<32} ROLE")
    for m in members:
        print(f"{m.name:<32} {m.role}{'' if m.can_log_in else ' (cannot log in)'}")
    return EXIT_OK


def _set_role(args: argparse.Namespace, ctx: CliContext) -> int:
    changed = api.set_role(ctx.db, args.name, args.role)
    print(f"{changed.name} is now {changed.role}", file=sys.stderr)
    return EXIT_OK


def _remove(args: argparse.Namespace, ctx: CliContext) -> int:
    api.remove_member(ctx.db, args.name)
    print(f"Removed {args.name}", file=sys.stderr)
    return EXIT_OK
