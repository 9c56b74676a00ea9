"""`clinicflow workflow ...`: import, update, export, publish, enable, disable, versions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli import EXIT_OK, CliContext, add_command, print_json
from app.store import workflows as store
from app.workflow import Problem, WorkflowFileError, load_workflow


def register(sub: Any) -> None:
    group = sub.add_parser("workflow", help="import, publish and enable workflows")
    cmds = group.add_subparsers(dest="workflow_command", metavar="COMMAND", required=True,
                                parser_class=type(group))

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


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read().removeprefix("\ufeff")
    # utf-8-sig: Windows Notepad saves UTF-8 with a byte-order mark, which JSON forbids.
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowFileError([Problem(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.read() as conn:
        infos = store.list_workflows(conn)
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
    workflow = load_workflow(_read(args.file))
    with ctx.db.write() as conn:
        new_id = store.create_workflow(conn, workflow, ctx.actor)
    print(new_id)
    return EXIT_OK


def _update(args: argparse.Namespace, ctx: CliContext) -> int:
    workflow = load_workflow(_read(args.file))
    with ctx.db.write() as conn:
        store.update_draft(conn, args.id, workflow, ctx.actor)
    return EXIT_OK


def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.read() as conn:
        workflow = (store.get_draft(conn, args.id) if args.version is None
                    else store.get_version(conn, args.id, args.version))
    sys.stdout.write(workflow.to_json())
    return EXIT_OK


def _publish(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.runtime.integrations import preflight

    with ctx.db.write() as conn:
        number = store.publish(conn, args.id, ctx.actor, args.note)
    print(number)
    # The same pre-flight warnings the app's Publish dialog shows; they do not stop publishing.
    with ctx.db.read() as conn:
        warnings = preflight(conn, store.get_version(conn, args.id, number))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _enable(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.write() as conn:
        changed = store.set_enabled(conn, args.id, True, ctx.actor)
    if not changed:
        print(f"workflow {args.id} was already enabled", file=sys.stderr)
    return EXIT_OK


def _disable(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.write() as conn:
        changed = store.set_enabled(conn, args.id, False, ctx.actor)
    if not changed:
        print(f"workflow {args.id} was already disabled", file=sys.stderr)
    return EXIT_OK


def _versions(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.read() as conn:
        versions = store.list_versions(conn, args.id)
    if args.json:
        print_json([v.to_json() for v in versions])
        return EXIT_OK
    if not versions:
        print(f"workflow {args.id} has no published version yet", file=sys.stderr)
    for v in versions:
        when = v.published_at.astimezone().strftime("%Y-%m-%d %H:%M")
        print(f"v{v.number}  {when}  {v.published_by}  {v.note or ''}".rstrip())
    return EXIT_OK
