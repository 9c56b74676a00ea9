"""Icons, styles and demo workflows, installed as `app.resources` (see pyproject.toml)."""
