"""Publish-level checks: what a draft must satisfy before it can become a live version.

A draft may be saved with any of these problems; `publish_problems` lists them all at
once so the editor can mark every node that needs attention.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Final

from .catalog import OPS_WITHOUT_VALUE, ConditionConfig, Rule, ScheduleTriggerConfig, UpdateRecordConfig, WaitConfig
from .context import context_record_types, unknown_variable_reason, with_article
from .errors import Problem, TemplateError, WorkflowNotPublishable
from .model import DEFAULT_LIMITS, Workflow
from .records import field_spec
from .templates import check_syntax, variables

DEFAULT_MAX_NODES: Final = DEFAULT_LIMITS["max_nodes"]


def publish_problems(workflow: Workflow, default_max_nodes: int | None = None, *,
                     defaults: Mapping[str, int] | None = None) -> list[Problem]:
    """Every reason this workflow cannot be published; empty when it can.

    `defaults` are the practice's limits (`app.store.settings.default_limits`); the older
    `default_max_nodes` gives only the node limit.
    """
    merged = {**(defaults or {}), **({"max_nodes": default_max_nodes} if default_max_nodes is not None else {})}
    limits = workflow.effective_limits(merged)
    problems: list[Problem] = []
    structure = _structure(workflow)
    problems += structure
    max_nodes = limits["max_nodes"]
    if len(workflow.nodes) > max_nodes:
        problems.append(Problem(f"the workflow has {len(workflow.nodes)} nodes; the limit is {max_nodes}"))
    if not structure:  # one trigger, no loops: paths are finite
        problems += _actions_on_paths(workflow, limits["max_actions_per_run"])
    # Without exactly one trigger the run's context is unknown; checking variables against
    # it would only bury the real problem under follow-on ones.
    context_known = workflow.trigger is not None
    for node in workflow.nodes:
        problems += _node_config(workflow, node.id, context_known)
    return problems


def check_publishable(workflow: Workflow, default_max_nodes: int | None = None, *,
                      defaults: Mapping[str, int] | None = None) -> None:
    problems = publish_problems(workflow, default_max_nodes, defaults=defaults)
    if problems:
        raise WorkflowNotPublishable(problems)


def _structure(workflow: Workflow) -> list[Problem]:
    problems: list[Problem] = []
    triggers = [n for n in workflow.nodes if n.kind == "trigger"]
    if not triggers:
        problems.append(Problem("the workflow needs a trigger node"))
        return problems
    if len(triggers) > 1:
        for extra in triggers[1:]:
            problems.append(Problem(f"a workflow has exactly one trigger; "
                                    f"'{workflow.step_title(triggers[0].id)}' is already one", extra.id))
        return problems

    children: dict[str, list[str]] = {n.id: [] for n in workflow.nodes}
    for edge in workflow.edges:
        children[edge.source].append(edge.target)

    reached = {triggers[0].id}
    queue = deque([triggers[0].id])
    while queue:
        for child in children[queue.popleft()]:
            if child not in reached:
                reached.add(child)
                queue.append(child)
    for node in workflow.nodes:
        if node.id not in reached:
            problems.append(Problem("cannot be reached from the trigger", node.id))

    # Colour-marking depth-first search; report each cycle once, at the edge closing it.
    state: dict[str, int] = {}
    for start, first_children in children.items():
        if start in state:
            continue
        stack = [(start, iter(first_children))]
        state[start] = 1
        while stack:
            current, it = stack[-1]
            following = next(it, None)
            if following is None:
                state[current] = 2
                stack.pop()
            elif state.get(following) == 1:
                problems.append(Problem(f"the edge to '{workflow.step_title(following)}' closes a loop; "
                                        "workflows cannot loop", current))
            elif following not in state:
                state[following] = 1
                stack.append((following, iter(children[following])))
    return problems


def _actions_on_paths(workflow: Workflow, limit: int) -> list[Problem]:
    """DESIGN section 6: no path from the trigger may hold more actions than a run may take.

    Names the action where a path first goes past the limit: the one the runtime would
    refuse to execute. (Longest path by actions in the acyclic graph, in topological order.)
    """
    incoming: dict[str, int] = {n.id: 0 for n in workflow.nodes}
    children: dict[str, list[str]] = {n.id: [] for n in workflow.nodes}
    for edge in workflow.edges:
        children[edge.source].append(edge.target)
        incoming[edge.target] += 1
    actions = {n.id: int(n.is_action) for n in workflow.nodes}
    most: dict[str, int] = dict(actions)  # most actions on a path ending at the node
    ready = deque(node_id for node_id, count in incoming.items() if count == 0)
    order: list[str] = []
    while ready:
        current = ready.popleft()
        order.append(current)
        for child in children[current]:
            most[child] = max(most[child], most[current] + actions[child])
            incoming[child] -= 1
            if incoming[child] == 0:
                ready.append(child)
    return [Problem(f"a path from the trigger reaches {limit + 1} actions here; "
                    f"a run may take at most {limit} (max actions per run)", node_id)
            for node_id in order if actions[node_id] and most[node_id] == limit + 1]


def _node_config(workflow: Workflow, node_id: str, context_known: bool) -> list[Problem]:
    node = workflow.node(node_id)
    config = node.config
    problems: list[Problem] = []
    for name in type(config).REQUIRED:
        value = getattr(config, name)
        if value is None or value == "" or value == []:
            problems.append(Problem("is required", node.id, name))
    for name in type(config).TEMPLATES:
        source = getattr(config, name)
        if not source:
            continue
        try:
            check_syntax(source, name)
        except TemplateError as exc:
            problems.append(Problem(f"template error: {exc.reason}", node.id, name))
            continue
        for path in sorted(variables(source)) if context_known else ():
            reason = unknown_variable_reason(workflow, path)
            if reason:
                problems.append(Problem(f"undefined template variable: {reason}", node.id, name))

    if isinstance(config, ConditionConfig):
        for index, rule in enumerate(config.rules):
            problems += _rule(workflow, node.id, f"rules.{index}", rule, context_known)
    elif isinstance(config, ScheduleTriggerConfig):
        if config.cron is None and config.every_seconds is None:
            problems.append(Problem("a schedule needs 'cron' or 'every_seconds'", node.id, "cron"))
        if config.for_each is not None:
            for index, rule in enumerate(config.for_each.rules):
                problems += _rule(workflow, node.id, f"for_each.rules.{index}", rule, context_known)
    elif isinstance(config, WaitConfig):
        if config.until is None and config.amount is None:
            problems.append(Problem("a wait needs 'amount' and 'unit', or 'until'", node.id, "amount"))
        if config.amount is not None and config.unit is None:
            problems.append(Problem("is required with 'amount'", node.id, "unit"))
        if config.offset_amount is not None and config.offset_unit is None:
            problems.append(Problem("is required with 'offset_amount'", node.id, "offset_unit"))
    elif isinstance(config, UpdateRecordConfig) and config.record and config.field and context_known:
        in_context = context_record_types(workflow)
        if config.record not in in_context:
            problems.append(Problem(
                f"runs of this workflow have no {config.record} "
                f"(available: {', '.join(in_context) or 'none'})", node.id, "record"))
        else:
            spec = field_spec(config.record, config.field)
            if spec is None:
                problems.append(Problem(f"{with_article(config.record)} has no field '{config.field}'", node.id,
                                        "field"))
            elif not spec.editable:
                problems.append(Problem(f"'{config.field}' cannot be changed", node.id, "field"))
    if context_known and node.spec.needs_patient and "patient" not in context_record_types(workflow):
        to_set = getattr(config, "to", None)
        if not node.is_message or not to_set:
            problems.append(Problem("needs a patient, but runs of this workflow are not started for one", node.id))
    return problems


def _rule(workflow: Workflow, node_id: str, where: str, rule: Rule, context_known: bool) -> list[Problem]:
    problems: list[Problem] = []
    if not rule.field:
        problems.append(Problem("is required", node_id, f"{where}.field"))
    elif context_known:
        parts = rule.field.split(".")
        reason = unknown_variable_reason(workflow, rule.field)
        if reason is None and len(parts) == 1 and parts[0] != "now":
            reason = f"'{rule.field}' names a whole record; name a field such as '{parts[0]}.id'"
        if reason:
            problems.append(Problem(reason, node_id, f"{where}.field"))
    if rule.op is None:
        problems.append(Problem("is required", node_id, f"{where}.op"))
    elif rule.op not in OPS_WITHOUT_VALUE and rule.value is None:
        problems.append(Problem(f"is required for '{rule.op}'", node_id, f"{where}.value"))
    return problems
