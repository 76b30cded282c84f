"""Interlock rules: the Python DSL, the declarative rule model and the matching engine.

The DSL, the model and the engine land with the rules issue; this package exists so the
workspace, its dependencies and its lock file are complete from the first commit.
"""

__all__: list[str] = []
