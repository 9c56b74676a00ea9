"""The workflow model: file format v1, node catalog, validation and templates. No Qt, no database."""

from .catalog import CATALOG, TRIGGER_TYPES, NodeConfig, NodeType, node_type
from .context import available_variables, context_record_types, trigger_record_type
from .errors import Problem, TemplateError, WorkflowError, WorkflowFileError, WorkflowNotPublishable
from .model import FORMAT, Edge, Limits, Node, Workflow, load_workflow
from .validation import DEFAULT_MAX_NODES, check_publishable, publish_problems

__all__ = [
    "CATALOG", "DEFAULT_MAX_NODES", "FORMAT", "TRIGGER_TYPES", "Edge", "Limits", "Node", "NodeConfig",
    "NodeType", "Problem", "TemplateError", "Workflow", "WorkflowError", "WorkflowFileError",
    "WorkflowNotPublishable", "available_variables", "check_publishable", "context_record_types",
    "load_workflow", "node_type", "publish_problems", "trigger_record_type",
]
