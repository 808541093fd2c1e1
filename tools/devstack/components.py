"""The components the local stack knows, in start order."""

from __future__ import annotations

from .core import Component
from .flux import Flux
from .github import GitHub
from .kube import Kube
from .moto import Moto

COMPONENTS: dict[str, type[Component]] = {
    "moto": Moto,
    "kube": Kube,
    "github": GitHub,
    "flux": Flux,
}
DEFAULT_COMPONENTS: tuple[str, ...] = tuple(COMPONENTS)
