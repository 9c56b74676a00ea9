"""The workflow model: file format v1, node catalog, validation and templates. No Qt, no database."""

from .catalog import ACTION_TYPES, CATALOG, MESSAGE_TYPES, TRIGGER_TYPES, NodeConfig, NodeType, node_type, type_title
from .context import available_variables, context_record_types, trigger_record_type
from .cron import cron_problem
from .errors import (
    Problem,
    TemplateError,
    WorkflowError,
    WorkflowFileError,
    WorkflowNotPublishable,
    WorkflowNotPublishableError,
)
from .model import DEFAULT_LIMITS, FORMAT, MAX_DEPTH, MAX_FILE_BYTES, Edge, Limits, Node, Workflow, load_workflow
from .validation import DEFAULT_MAX_NODES, check_publishable, publish_problems

__all__ = [
    "ACTION_TYPES",
    "CATALOG",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_NODES",
    "FORMAT",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MESSAGE_TYPES",
    "TRIGGER_TYPES",
    "Edge",
    "Limits",
    "Node",
    "NodeConfig",
    "NodeType",
    "Problem",
    "TemplateError",
    "Workflow",
    "WorkflowError",
    "WorkflowFileError",
    "WorkflowNotPublishable",
    "WorkflowNotPublishableError",
    "available_variables",
    "check_publishable",
    "context_record_types",
    "cron_problem",
    "load_workflow",
    "node_type",
    "publish_problems",
    "trigger_record_type",
    "type_title",
]
