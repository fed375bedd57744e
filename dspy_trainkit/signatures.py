"""A task's DSPy Signature: from a class, a string (`"a, b -> c"`) or an import path (`"pkg.module:Name"`).

String signatures are split without DSPy (settings do that); an import path or a Signature class needs DSPy,
which is imported here only when such a signature is actually used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConversionError
from .import_paths import import_module, is_import_path

__all__ = ["SignatureError", "is_import_path", "resolve_signature", "signature_fields"]


class SignatureError(ConversionError):
    """A signature that cannot be imported or is not a DSPy signature (a ConversionError, since converting is
    what it stops)."""


def resolve_signature(spec: Any, project_dir: Path | None = None) -> Any:
    """A DSPy Signature class from a class, `"a, b -> c"`, or `"package.module:Name"`; modules are looked up
    on sys.path and then in `project_dir` (the folder of trainkit.toml), as users keep them beside it."""
    import dspy

    if is_import_path(spec):
        module_name, _, attr = spec.partition(":")
        try:
            spec = getattr(import_module(module_name, project_dir), attr)
        except (ImportError, AttributeError) as exc:
            raise SignatureError(f"signature {spec!r}: cannot import it ({exc}); check the module path, and that "
                                 f"the module is installed or in the project folder {project_dir}") from None
    try:
        return dspy.ensure_signature(spec)
    except Exception as exc:  # DSPy raises several types for a malformed signature
        raise SignatureError(f"signature {spec!r} is not a DSPy signature: {exc}") from None


def signature_fields(spec: Any, project_dir: Path | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    signature = resolve_signature(spec, project_dir)
    return tuple(signature.input_fields), tuple(signature.output_fields)
