"""Name -> class registries for layers, losses, metrics, optimizers, schedules and callbacks.

Every family has one :class:`Registry`. Classes land in it automatically when they are defined
(their base class calls :meth:`Registry.register` from ``__init_subclass__``), so a user's own layer
is known to ``load_model`` and to the common tests the moment its ``class`` statement runs.

Lookups are exact: by class name, or by a registered alias such as ``"categorical_crossentropy"``.
There is no substring matching; an unknown name fails with the list of known ones.
"""
from __future__ import annotations

from typing import Any


def _normalise(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


class Registry:
    """A family of classes that can be named in configs and in ``Model.set``.

    Args:
        kind: what the family is called in error messages, e.g. ``"layer"``.
        case_insensitive: also match names ignoring case, ``_`` and ``-`` (losses and optimizers
            accept ``"Adam"``, ``"adam"``; layers do not, their names are class names exactly).

    Example:
        >>> reg = Registry("thing")
        >>> class Foo: pass
        >>> _ = reg.register(Foo, aliases=("foo_alias",))
        >>> reg.get("Foo") is Foo and reg.get("foo_alias") is Foo
        True
    """

    def __init__(self, kind: str, case_insensitive: bool = False):
        self.kind = kind
        self.case_insensitive = case_insensitive
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}

    def register(self, cls: type, name: str | None = None, aliases: tuple[str, ...] = ()) -> type:
        """Adds ``cls`` under ``name`` (default: its class name) and ``aliases``; returns ``cls``.

        Re-running the same ``class`` statement (a notebook cell, a re-imported test module) replaces
        the old entry. Two *different* classes with one name are refused, because a saved file
        could then not say which one it meant.
        """
        name = name or cls.__name__
        old = self._classes.get(name)
        if old is not None and old is not cls:
            same_definition = (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
            if not same_definition:
                raise TypeError(
                    f"a {self.kind} named {name!r} is already registered ({old.__module__}.{old.__qualname__}); "
                    f"got another one from {cls.__module__}.{cls.__qualname__}. Rename your class, or give it "
                    f"another registry name: class {cls.__name__}(..., registry_name='MyName')."
                )
        self._classes[name] = cls
        for alias in aliases:
            self._aliases[alias] = name
        return cls

    def names(self) -> list[str]:
        """The registered class names, sorted."""
        return sorted(self._classes)

    def classes(self) -> list[type]:
        """The registered classes, sorted by name."""
        return [self._classes[n] for n in self.names()]

    def name_of(self, cls: type) -> str:
        """The name ``cls`` is registered under (what a saved file records)."""
        for name, known in self._classes.items():
            if known is cls:
                return name
        raise ValueError(f"{cls.__name__} is not a registered {self.kind}; known: {', '.join(self.names())}")

    def get(self, name: str) -> type:
        """The class registered as ``name`` (or an alias of it).

        Raises:
            ValueError: unknown name; the message lists every known name.
        """
        if not isinstance(name, str):
            raise TypeError(f"a {self.kind} name must be a string, got {type(name).__name__} ({name!r})")
        if name in self._classes:
            return self._classes[name]
        if name in self._aliases:
            return self._classes[self._aliases[name]]
        if self.case_insensitive:
            wanted = _normalise(name)
            for key in list(self._classes) + list(self._aliases):
                if _normalise(key) == wanted:
                    return self._classes[self._aliases.get(key, key)]
        known = ", ".join(self.names())
        aliases = ", ".join(sorted(self._aliases))
        raise ValueError(
            f"unknown {self.kind} {name!r}. Known {self.kind}s: {known}"
            + (f" (aliases: {aliases})" if aliases else "")
            + ". A class of your own is registered when it subclasses the base class."
        )

    def create(self, spec: Any, base: type | None = None, **defaults: Any) -> Any:
        """Builds an instance from an instance, a name, or ``{"class_name": ..., "config": {...}}``."""
        if base is not None and isinstance(spec, base):
            return spec
        if isinstance(spec, str):
            return self.get(spec)(**defaults)
        if isinstance(spec, dict) and "class_name" in spec:
            return self.get(spec["class_name"]).from_config(spec.get("config", {}))
        if isinstance(spec, type) and base is not None and issubclass(spec, base):
            return spec(**defaults)
        raise TypeError(
            f"expected a {self.kind} object, a {self.kind} name or a {{'class_name', 'config'}} dict; "
            f"got {type(spec).__name__} ({spec!r}). Known names: {', '.join(self.names())}"
        )


def serialize(obj: Any, registry: Registry) -> dict:
    """``{"class_name": registered name, "config": obj.get_config()}`` — the JSON form used in files."""
    return {"class_name": registry.name_of(type(obj)), "config": obj.get_config()}


class Configurable:
    """Shared by the families that are named in configs (losses, accuracies, optimizers, schedules):
    registration of every subclass, ``get_config``/``from_config`` and a readable ``repr``.

    A family's base class sets ``registry``; its subclasses then register themselves, with optional
    ``aliases`` given in the class statement: ``class MSE(Loss, aliases=("mse",))``.

    Example:
        >>> THINGS = Registry("thing")
        >>> class Thing(Configurable):
        ...     registry = THINGS
        >>> class Blue(Thing, aliases=("blue",)):
        ...     pass
        >>> THINGS.get("blue"), Blue()
        (<class 'nnscratch.registry.Blue'>, Blue())
    """

    registry: Registry

    def __init_subclass__(cls, aliases=(), **kwargs):
        super().__init_subclass__(**kwargs)
        if "registry" not in cls.__dict__:  # the family's base class itself is not a member
            cls.registry.register(cls, aliases=aliases)

    def get_config(self) -> dict:
        """The ``__init__`` arguments as a JSON-able dict (none by default)."""
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"
