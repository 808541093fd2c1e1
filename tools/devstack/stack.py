"""Start, stop and inspect the local development stack as one unit."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .components import COMPONENTS, DEFAULT_COMPONENTS
from .core import DEFAULT_STATE_DIR, Component, Context, DevstackError


def _resolve(names: Iterable[str]) -> list[Component]:
    unknown = [name for name in names if name not in COMPONENTS]
    if unknown:
        raise DevstackError(f"unknown component(s) {', '.join(unknown)}. Known: {', '.join(COMPONENTS)}.")
    return [COMPONENTS[name]() for name in names]


class Stack:
    """The local stand-ins for AWS (moto) and, as they are added, Kubernetes and GitHub."""

    def __init__(
        self, state_dir: Path = DEFAULT_STATE_DIR, components: Iterable[str] = DEFAULT_COMPONENTS, **settings: object
    ) -> None:
        self.ctx = Context(state_dir=Path(state_dir), **settings)  # type: ignore[arg-type]
        self.components = _resolve(components)

    def up(self) -> dict[str, str]:
        """Start every component (adopting healthy running ones) and write the env file."""
        env = {"BIOMAGE_DEVSTACK_DIR": str(self.ctx.state_dir)}
        try:
            for component in self.components:
                env.update(component.start(self.ctx))
                self.ctx.env = env
        except BaseException:
            # leave nothing half-started behind a failed `up`
            self.down()
            raise
        self.ctx.write_env(env)
        return env

    def down(self) -> list[str]:
        """Stop every component (in reverse order); return the names of those that were running."""
        stopped = [c.name for c in reversed(self.components) if c.stop(self.ctx)]
        self.ctx.env_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, bool]:
        return {c.name: c.is_running(self.ctx) for c in self.components}

    def env(self) -> dict[str, str]:
        return self.ctx.read_env()
