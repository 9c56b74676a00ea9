"""Mapping between a NodeGraphQt graph and the pydantic workflow model, both ways.

The workflow model is what is stored; the graph is only its picture. Node ids, titles,
configs and positions survive the round trip; NodeGraphQt's session JSON is never used.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from NodeGraphQt import NodeGraph

from app.workflow import CATALOG, Edge, Node, NodeConfig, Workflow, node_type

from .nodes import GRAPH_TYPES, INPUT_PORT, ClinicGraph, ClinicNode

COLUMN_WIDTH: Final = 280.0
ROW_HEIGHT: Final = 130.0
_ID_CHARS: Final = re.compile(r"[^A-Za-z0-9_]")


def config_json(config: NodeConfig | dict[str, Any]) -> str:
    """A node config as the JSON text the graph node stores (only what was set)."""
    data = config if isinstance(config, dict) else config.model_dump(exclude_none=True, exclude_unset=True, mode="json")
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def default_title_pattern(type_name: str) -> re.Pattern[str]:
    # NodeGraphQt makes names unique by appending " 1", " 2", ...
    return re.compile(rf"{re.escape(CATALOG[type_name].title)}( \d+)?")


def title_of(node: ClinicNode) -> str | None:
    """The designer's title, or None while the node carries its catalog name."""
    name = node.name()
    return None if default_title_pattern(node.CATALOG_TYPE).fullmatch(name) else name


def new_node_id(type_name: str, taken: Iterable[str]) -> str:
    """A readable unused id such as `send_email_2`."""
    stem = _ID_CHARS.sub("_", type_name.split(".", 1)[1])
    used = set(taken)
    number = 1
    while f"{stem}_{number}" in used:
        number += 1
    return f"{stem}_{number}"


def layered_positions(workflow: Workflow) -> dict[str, tuple[float, float]]:
    """Left-to-right positions by distance from the trigger, for nodes stored without one."""
    children: dict[str, list[str]] = {n.id: [] for n in workflow.nodes}
    for edge in workflow.edges:
        if edge.source in children and edge.target not in children[edge.source]:
            children[edge.source].append(edge.target)
    rank: dict[str, int] = {}
    starts = [n.id for n in workflow.nodes if n.kind == "trigger"] or [n.id for n in workflow.nodes[:1]]
    queue = deque((s, 0) for s in starts)
    while queue:
        node_id, depth = queue.popleft()
        if node_id in rank or depth > len(children):
            continue
        rank[node_id] = depth
        queue.extend((child, depth + 1) for child in children[node_id])
    next_row: dict[int, int] = {}
    positions: dict[str, tuple[float, float]] = {}
    last = max(rank.values(), default=-1) + 1
    for node in workflow.nodes:
        column = rank.get(node.id, last)
        row = next_row.get(column, 0)
        next_row[column] = row + 1
        positions[node.id] = (column * COLUMN_WIDTH, row * ROW_HEIGHT)
    return positions


def add_workflow_nodes(graph: ClinicGraph, workflow: Workflow, *, push_undo: bool = False) -> dict[str, ClinicNode]:
    """Put every node and edge of `workflow` on the graph; returns the nodes by id."""
    missing = [n for n in workflow.nodes if n.position is None]
    fallback = layered_positions(workflow) if missing else {}
    nodes: dict[str, ClinicNode] = {}
    with graph.loading():
        for node in workflow.nodes:
            position = node.position if node.position is not None else fallback[node.id]
            graph_node: ClinicNode = graph.create_node(
                GRAPH_TYPES[node.type], name=node.title or CATALOG[node.type].title, selected=False,
                pos=(float(position[0]), float(position[1])), push_undo=push_undo)
            # Set directly on the model: set_property would redraw the node each time.
            graph_node.model.set_property("node_id", node.id)
            graph_node.model.set_property("config", config_json(node.config))
            nodes[node.id] = graph_node
    for edge in workflow.edges:
        source, target = nodes[edge.source], nodes[edge.target]
        source.outputs()[edge.port].connect_to(target.inputs()[INPUT_PORT], push_undo=push_undo, emit_signal=False)
    return nodes


class GraphReader:
    """Reads the graph back as a `Workflow`; caches parsed configs between reads."""

    def __init__(self) -> None:
        self._configs: dict[tuple[str, str], NodeConfig] = {}

    def config(self, type_name: str, text: str) -> NodeConfig:
        key = (type_name, text)
        parsed = self._configs.get(key)
        if parsed is None:
            if len(self._configs) > 5000:
                self._configs.clear()
            parsed = node_type(type_name).parse_config(json.loads(text))
            self._configs[key] = parsed
        return parsed

    def read(self, graph: NodeGraph, base: Workflow, order: dict[str, int]) -> Workflow:
        """The graph as a workflow with `base`'s name, description and limits.

        `order` keeps nodes in the order the designer made them (new ids go last).
        """
        graph_nodes: list[ClinicNode] = [n for n in graph.all_nodes() if isinstance(n, ClinicNode)]
        for graph_node in graph_nodes:
            order.setdefault(graph_node.get_property("node_id"), len(order))
        graph_nodes.sort(key=lambda n: order[n.get_property("node_id")])
        nodes: list[Node] = []
        edges: list[Edge] = []
        for graph_node in graph_nodes:
            type_name = graph_node.CATALOG_TYPE
            x, y = graph_node.pos()
            nodes.append(Node(
                id=graph_node.get_property("node_id"), type=type_name,
                config=self.config(type_name, graph_node.get_property("config")),
                position=(round(float(x), 1), round(float(y), 1)), title=title_of(graph_node)))
            for port_name in node_type(type_name).ports_out:
                port = graph_node.outputs()[port_name]
                for target_port in port.connected_ports():
                    target = target_port.node()
                    if isinstance(target, ClinicNode):
                        edges.append(Edge.model_validate({"from": nodes[-1].id, "to": target.get_property("node_id"),
                                                          "port": port_name}))
        return base.model_copy(update={"nodes": tuple(nodes), "edges": tuple(edges)})
