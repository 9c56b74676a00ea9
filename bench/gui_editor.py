"""Editor benchmarks: opening 100- and 500-node workflows, and autosaving a 500-node draft.

Prints one JSON object per line: {"bench", "value", "unit", "baseline", "ratio"}.
Opening (database read, graph built, window shown and its first events processed; the
problems check follows 250 ms later) is compared with a bare NodeGraphQt graph of the same
size and shape loaded in the same run (plain nodes, no mapping); the autosave (graph read
into the model on the GUI thread, then the database write, which runs on a worker thread
in the app) with its 150 ms target.
Targets (issue 5): open 100 nodes <= 0.5 s, 500 nodes <= 2.0 s, autosave 500 nodes <= 150 ms.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_PREFERRED_BINDING", "PySide6")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

AUTOSAVE_TARGET_MS = 150.0


def chain_workflow(size: int) -> dict[str, Any]:
    """A demo-like workflow of `size` nodes: trigger, then conditions, emails and tasks."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"},
                                    "position": [0, 0]}]
    edges: list[dict[str, Any]] = []
    previous, port = "start", "out"
    kinds = ("logic.condition", "action.send_email", "action.create_task")
    for index in range(1, size):
        type_name = kinds[index % 3]
        config = {
            "logic.condition": {"match": "all", "rules": [{"field": "patient.email", "op": "is_set"}]},
            "action.send_email": {"subject": "Hello", "body": "Hi {{ patient.first_name }}, see you soon."},
            "action.create_task": {"title": "Call {{ patient.first_name }} {{ patient.last_name }}"},
        }[type_name]
        node_id = f"n{index}"
        nodes.append({"id": node_id, "type": type_name, "config": config,
                      "position": [index * 260.0 % 5200, (index // 20) * 140.0]})
        edges.append({"from": previous, "to": node_id, **({"port": port} if port != "out" else {})})
        previous, port = node_id, "true" if type_name == "logic.condition" else "out"
    return {"format": "clinicflow.workflow/1", "name": f"Bench {size}", "nodes": nodes, "edges": edges,
            "limits": {"max_nodes": 1000}}


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def line(bench: str, value: float, unit: str, baseline: float) -> str:
    return json.dumps({"bench": bench, "value": round(value, 4), "unit": unit, "baseline": round(baseline, 4),
                       "ratio": round(value / baseline, 3) if baseline else None})


def run() -> list[str]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from NodeGraphQt import BaseNode, NodeGraph

    from app.editor import EditorWidget
    from app.editor.mapping import GraphReader
    from app.store import open_database
    from app.store import workflows as store_workflows
    from app.workflow import load_workflow

    class PlainNode(BaseNode):
        __identifier__ = "bench"
        NODE_NAME = "Plain"

        def __init__(self) -> None:
            super().__init__()
            self.add_input("in", multi_input=True)
            self.add_output("out")
            self.add_output("other")

    def bare_graph(data: dict[str, Any]) -> None:
        graph = NodeGraph()
        graph.register_node(PlainNode)
        graph.widget.resize(1200, 800)
        graph.widget.show()
        created = {}
        for node in data["nodes"]:
            created[node["id"]] = graph.create_node("bench.PlainNode", name=node["id"], selected=False,
                                                    pos=node["position"], push_undo=False)
        for edge in data["edges"]:
            source = created[edge["from"]].outputs()["out" if edge.get("port", "out") == "out" else "other"]
            source.connect_to(created[edge["to"]].inputs()["in"], push_undo=False, emit_signal=False)
        app.processEvents()
        graph.widget.close()
        graph.widget.deleteLater()

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
        try:
            ids: dict[int, int] = {}
            data_by_size: dict[int, dict[str, Any]] = {}
            with db.write() as conn:
                for size in (100, 500):
                    data_by_size[size] = chain_workflow(size)
                    ids[size] = store_workflows.create_workflow(conn, load_workflow(data_by_size[size]), "bench")

            editors: list[Any] = []

            def open_editor(size: int) -> None:
                editor = EditorWidget(db, ids[size], "bench")
                editor.resize(1200, 800)
                editor.show()
                app.processEvents()
                editors.append(editor)

            def close_editors() -> None:
                while editors:
                    editor = editors.pop()
                    editor.close()
                    editor.deleteLater()
                app.processEvents()

            for size, repeat in ((100, 5), (500, 3)):
                open_editor(size)  # warm-up: imports, registration, first paint
                close_editors()
                bare = median_seconds(lambda size=size: bare_graph(data_by_size[size]), repeat)
                samples = []
                for _ in range(repeat):
                    samples.append(median_seconds(lambda size=size: open_editor(size), 1))
                    close_editors()
                lines.append(line(f"editor_open_{size}_nodes", statistics.median(samples), "s", bare))

            open_editor(500)
            editor = editors[-1]
            reader = GraphReader()
            base = editor._base
            node = editor.node("n7")

            def edit_and_read() -> Any:
                # What the GUI thread does per autosave: read the graph into the model.
                x, y = node.pos()
                node.set_pos(x + 1.0, y)
                return reader.read(editor.graph, base, {}).to_dict()

            def write(workflow_data: dict[str, Any]) -> None:
                with db.write() as conn:
                    store_workflows.update_draft(conn, ids[500], load_workflow(workflow_data))

            gui_part = median_seconds(edit_and_read, 10)
            data = edit_and_read()
            workflow = load_workflow(data)

            def full_save() -> None:
                with db.write() as conn:
                    store_workflows.update_draft(conn, ids[500], workflow)

            full = median_seconds(lambda: (edit_and_read(), full_save()), 10)
            lines.append(line("editor_autosave_500_nodes", full * 1000, "ms", AUTOSAVE_TARGET_MS))
            lines.append(line("editor_autosave_500_nodes_gui_thread", gui_part * 1000, "ms", AUTOSAVE_TARGET_MS))
            close_editors()
            del write
        finally:
            db.dispose()
    return lines


def main() -> None:
    for text in run():
        print(text, flush=True)


if __name__ == "__main__":
    main()
