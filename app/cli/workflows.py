"""`clinicflow workflow ...`: list, import, update, export, publish, enable, disable, versions, webhook."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.api import workflows as api

from .common import EXIT_OK, CliContext, add_command, add_group, print_json


def register(sub: Any) -> None:
    cmds = add_group(sub, "workflow", "import, publish and enable workflows", "workflow_command")

    p = add_command(cmds, "list", "list workflows", _list)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "import", "create a workflow whose draft is FILE; prints its id", _import)
    p.add_argument("file", metavar="FILE", help="a clinicflow.workflow/1 JSON file, or - for standard input")

    p = add_command(cmds, "update", "replace the draft of workflow ID with FILE", _update)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("file", metavar="FILE")

    p = add_command(cmds, "export", "print the draft, or version N, as JSON", _export)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--version", type=int, metavar="N", help="a published version instead of the draft")

    p = add_command(cmds, "publish", "validate the draft and publish it; prints the version number", _publish)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--note", metavar="TEXT", help="what changed, for the version history")

    p = add_command(cmds, "enable", "let workflow ID respond to its trigger", _enable)
    p.add_argument("id", type=int, metavar="ID")
    p = add_command(cmds, "disable", "stop new runs of workflow ID (runs in progress go on)", _disable)
    p.add_argument("id", type=int, metavar="ID")

    p = add_command(cmds, "versions", "list the published versions of workflow ID", _versions)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "webhook", "a webhook workflow's path and token (--rotate: a new token)", _webhook)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--rotate", action="store_true", help="replace the token; the old one stops working at once")
    p.add_argument("--json", action="store_true", help="print JSON")


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    infos = api.list_workflows(ctx.db)
    if args.json:
        print_json([i.to_json() for i in infos])
        return EXIT_OK
    if not infos:
        print("No workflows yet. Import one with: clinicflow workflow import FILE", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':>4}  {'NAME':<36} {'TRIGGER':<22} {'ENABLED':<8} {'LIVE':<5} CHANGES")
    for i in infos:
        live = f"v{i.published_version}" if i.published_version else "-"
        print(f"{i.id:>4}  {i.name[:36]:<36} {i.trigger or '-':<22} {'yes' if i.enabled else 'no':<8} "
              f"{live:<5} {'unpublished' if i.has_unpublished_changes else ''}")
    return EXIT_OK


def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    text = api.read_workflow_file(args.file)
    print(api.import_workflow(ctx.db, text, ctx.actor))
    return EXIT_OK


def _update(args: argparse.Namespace, ctx: CliContext) -> int:
    api.update_workflow(ctx.db, args.id, api.read_workflow_file(args.file), ctx.actor)
    return EXIT_OK


def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    sys.stdout.write(api.export_workflow(ctx.db, args.id, args.version))
    return EXIT_OK


def _publish(args: argparse.Namespace, ctx: CliContext) -> int:
    result = api.publish(ctx.db, args.id, ctx.actor, args.note)
    print(result.number)
    # The same pre-flight warnings the app's Publish dialog shows; they do not stop publishing.
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _enable(args: argparse.Namespace, ctx: CliContext) -> int:
    if not api.set_enabled(ctx.db, args.id, True, ctx.actor):
        print(f"workflow {args.id} was already enabled", file=sys.stderr)
    return EXIT_OK


def _disable(args: argparse.Namespace, ctx: CliContext) -> int:
    if not api.set_enabled(ctx.db, args.id, False, ctx.actor):
        print(f"workflow {args.id} was already disabled", file=sys.stderr)
    return EXIT_OK


def _versions(args: argparse.Namespace, ctx: CliContext) -> int:
    versions = api.list_versions(ctx.db, args.id)
    if args.json:
        print_json([v.to_json() for v in versions])
        return EXIT_OK
    if not versions:
        print(f"workflow {args.id} has no published version yet", file=sys.stderr)
    for v in versions:
        when = v.published_at.astimezone().strftime("%Y-%m-%d %H:%M")
        print(f"v{v.number}  {when}  {v.published_by}  {v.note or ''}".rstrip())
    return EXIT_OK


def _webhook(args: argparse.Namespace, ctx: CliContext) -> int:
    hook = api.webhook(ctx.db, args.id, rotate=args.rotate, actor=ctx.actor)
    if args.json:
        print_json({"path": hook.path, "token": hook.token, "token_set": True})
        return EXIT_OK
    print(f"path: {hook.path}")
    if hook.token is None:
        # Only its hash is stored (DESIGN section 15): it was shown when it was made.
        print("token: (set; shown only when it was made)")
        print(f"To get a new token: clinicflow workflow webhook {args.id} --rotate (the old one stops working)",
              file=sys.stderr)
        return EXIT_OK
    print(f"token: {hook.token}")
    print("Keep this token now: it is shown only this once.", file=sys.stderr)
    print(f"Send: POST {hook.path} with the header 'Authorization: Bearer <token>' and a JSON object body"
          + (" (the old token no longer works)" if args.rotate else ""), file=sys.stderr)
    return EXIT_OK
