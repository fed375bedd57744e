"""Built-in plugin internals that unit tests call directly (tests may; other plugins and the core may not)."""

from dspy_trainkit_demo_value import ridge_estimates

__all__ = ["ridge_estimates"]
