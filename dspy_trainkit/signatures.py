"""A task's DSPy Signature: from a class, a string (`"a, b -> c"`) or an import path (`"pkg.module:Name"`).

String signatures are split without DSPy (settings do that); an import path or a Signature class needs DSPy,
which is imported here only when such a signature is actually used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .conversion import ConversionError


class SignatureError(ConversionError):
    """A signature that cannot be imported or is not a DSPy signature (a ConversionError, since converting is
    what it stops)."""


def is_import_path(spec: Any) -> bool:
    return isinstance(spec, str) and "->" not in spec and ":" in spec


def resolve_signature(spec: Any) -> Any:
    """A DSPy Signature class from a class, `"a, b -> c"`, or `"package.module:Name"`."""
    import dspy

    if is_import_path(spec):
        module_name, _, attr = spec.partition(":")
        try:
            spec = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise SignatureError(f"signature {spec!r}: cannot import it ({exc}); check the module path and that it "
                                 "is importable from here (the project folder is on the path)") from None
    try:
        return dspy.ensure_signature(spec)
    except Exception as exc:  # DSPy raises several types for a malformed signature
        raise SignatureError(f"signature {spec!r} is not a DSPy signature: {exc}") from None


def signature_fields(spec: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    signature = resolve_signature(spec)
    return tuple(signature.input_fields), tuple(signature.output_fields)
