"""The components the local stack knows, in start order."""

from __future__ import annotations

from .core import Component
from .kube import Kube
from .moto import Moto

COMPONENTS: dict[str, type[Component]] = {
    "moto": Moto,
    "kube": Kube,
}
DEFAULT_COMPONENTS: tuple[str, ...] = tuple(COMPONENTS)
