"""The workflow model: file format v1, node catalog, validation and templates. No Qt, no database."""

from .catalog import ACTION_TYPES, CATALOG, MESSAGE_TYPES, TRIGGER_TYPES, NodeConfig, NodeType, node_type
from .context import available_variables, context_record_types, trigger_record_type
from .errors import Problem, TemplateError, WorkflowError, WorkflowFileError, WorkflowNotPublishable
from .cron import cron_problem
from .model import DEFAULT_LIMITS, FORMAT, MAX_DEPTH, MAX_FILE_BYTES, Edge, Limits, Node, Workflow, load_workflow
from .validation import DEFAULT_MAX_NODES, check_publishable, publish_problems

__all__ = [
    "ACTION_TYPES", "CATALOG", "DEFAULT_LIMITS", "DEFAULT_MAX_NODES", "FORMAT", "MAX_DEPTH", "MAX_FILE_BYTES",
    "MESSAGE_TYPES", "TRIGGER_TYPES", "cron_problem", "Edge", "Limits", "Node", "NodeConfig",
    "NodeType", "Problem", "TemplateError", "Workflow", "WorkflowError", "WorkflowFileError",
    "WorkflowNotPublishable", "available_variables", "check_publishable", "context_record_types",
    "load_workflow", "node_type", "publish_problems", "trigger_record_type",
]
