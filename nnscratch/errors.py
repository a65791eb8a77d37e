"""Exception classes shared by modules that cannot import each other (layers sit above losses), and the one way an
optional dependency is imported."""
from __future__ import annotations

import importlib


class SecondOrderNotImplemented(NotImplementedError, TypeError):
    """A layer or a loss lacks the second-order backward that SDLM (:mod:`nnscratch.sdlm`) needs; the message
    names it."""


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says what needed it and how to install it."""


def require(modules, package: str, needed_for: str, install: str, error: type = MissingDependencyError):
    """Imports the optional ``modules`` (a name or a list; submodules too) and returns the first, or raises
    ``error`` saying what needed them and how to install them.

    Args:
        modules: module names, e.g. ``"onnx"`` or ``["matplotlib.figure", "matplotlib.backends.backend_agg"]``.
        package: the name the user installs (``"Pillow"`` for ``PIL``).
        needed_for: what needs it, the start of the message (``"plotting"``).
        install: the command that installs it.
        error: a subclass of :class:`MissingDependencyError` to raise instead.

    Example:
        >>> require("json", "json", "reading", "pip install json").__name__
        'json'
        >>> require("no_such_module_here", "nosuch", "this example", 'pip install "nnscratch[nosuch]"')
        Traceback (most recent call last):
        ...
        nnscratch.errors.MissingDependencyError: this example needs nosuch, which is not installed; install it with: pip install "nnscratch[nosuch]"
    """
    names = [modules] if isinstance(modules, str) else list(modules)
    try:
        loaded = [importlib.import_module(name) for name in names]
    except ImportError as e:
        raise error(f"{needed_for} needs {package}, which is not installed; install it with: {install}") from e
    return loaded[0]
