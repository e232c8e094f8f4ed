"""The architectures the project knows, by name: filled by :func:`register` on each model class.

    @register("sain")
    class SAIN(RescalingModel): ...

Everything that turns a name into a network looks it up here (checkpoint loading, the
training configs, the trainer, the zoo), so a new architecture is one new module under
``sain.models`` plus its zoo entry and config: nothing else needs an edit (every module of
the package is imported on the first lookup, so the new one registers itself). An unknown
name is an :class:`ArchitectureError` naming the known ones, never a fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import CheckpointError

if TYPE_CHECKING:
    from torch import Tensor

    from .base import RescalingModel

__all__ = ["ArchitectureError", "build_model", "get_arch", "infer_arch", "list_archs", "register"]

_ARCHS: dict[str, type[RescalingModel]] = {}

M = TypeVar("M", bound="type[RescalingModel]")


class ArchitectureError(CheckpointError):
    """An architecture name that is not registered, or a state dict no architecture claims.

    A :class:`~sain.checkpoint.CheckpointError` (so a ``ValueError``): a weight file naming
    an unknown architecture is an unusable checkpoint."""


def register(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`~sain.models.RescalingModel` subclass as ``name``.

    Sets ``cls.arch = name``. Registering a second class under a taken name is an error
    (unregister the first with ``unregister(name)``, e.g. in a test).
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"an architecture name is a non-empty word, got {name!r}")

    def deco(cls: M) -> M:
        if name in _ARCHS and _ARCHS[name] is not cls:
            raise ValueError(f"architecture {name!r} is already registered ({_ARCHS[name].__qualname__})")
        cls.arch = name
        _ARCHS[name] = cls
        return cls

    return deco


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (for tests that register toy architectures)."""
    _ARCHS.pop(name, None)


def import_submodules(package: Any) -> None:
    """Import every module of ``package`` once (so the plug-ins in it register themselves)."""
    import importlib
    import pkgutil

    if getattr(package, "_sain_discovered", False):
        return
    package._sain_discovered = True
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def _discover() -> None:
    """Every module of ``sain.models``: a new architecture module registers itself."""
    from .. import models

    import_submodules(models)


def list_archs() -> list[str]:
    """The registered architecture names, in registration order."""
    _discover()
    return list(_ARCHS)


def get_arch(name: str) -> type[RescalingModel]:
    """The model class registered as ``name``."""
    if name not in _ARCHS:
        _discover()
    try:
        return _ARCHS[name]
    except (KeyError, TypeError):
        raise ArchitectureError(f"unknown architecture {name!r} (known: {', '.join(_ARCHS)})") from None


def build_model(arch: str, **config: Any) -> RescalingModel:
    """A fresh model of architecture ``arch`` built from its constructor arguments."""
    return get_arch(arch).from_config(config)


def infer_arch(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any]]:
    """``(arch, config)`` of a reference-layout state dict: the first architecture whose
    :meth:`~sain.models.RescalingModel.infer_config` recognises its keys and shapes."""
    for name, cls in _ARCHS.items():
        config = cls.infer_config(sd)
        if config is not None:
            return name, config
    raise ArchitectureError(f"not a state dict of any known architecture ({', '.join(_ARCHS)})")
