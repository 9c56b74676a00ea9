"""The visual flow builder (NodeGraphQt): palette, canvas, properties, draft, publish, versions.

`EditorWidget` is imported lazily so that importing `app.editor` does not load
NodeGraphQt until an editor actually opens (it is the slow part of starting the app).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .widget import EditorWidget

__all__ = ["EditorWidget"]


def __getattr__(name: str) -> Any:
    if name == "EditorWidget":
        from .widget import EditorWidget

        return EditorWidget
    raise AttributeError(f"module 'app.editor' has no attribute {name!r}")
