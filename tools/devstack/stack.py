"""Start, stop and inspect the local development stack as one unit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from .components import COMPONENTS, DEFAULT_COMPONENTS
from .core import DEFAULT_STATE_DIR, Aborted, Component, Context, DevstackError


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
        self._owner_pipe: int | None = None

    def stop_with_owner(self) -> None:
        """Stop this stack when the calling process ends, even when it is killed (a test run cancelled with
        SIGTERM or SIGKILL runs no teardown): a watcher in its own session waits for the end of a pipe whose
        only write end this process holds (not inherited by the components), then stops the components."""
        if self._owner_pipe is not None:
            return
        read_end, self._owner_pipe = os.pipe()
        try:
            names = ",".join(c.name for c in self.components)
            subprocess.Popen(
                [sys.executable, "-m", "devstack.reaper", str(self.ctx.state_dir), names, str(read_end)],
                pass_fds=(read_end,),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )
        finally:
            os.close(read_end)

    def up(self) -> dict[str, str]:
        """Start every component (adopting healthy running ones) and write the env file.

        Components start concurrently, each once the milestones it needs (``after``) are reached:
        the AWS emulator and the GitHub stand-in beside Kubernetes, Flux's controllers as soon as
        the API server serves the CRDs (while the nodes come up).
        """
        ctx = self.ctx
        ctx.env = {"BIOMAGE_DEVSTACK_DIR": str(ctx.state_dir)}
        ctx.expected = {m for c in self.components for m in (c.name, *c.provides)}
        failures: list[BaseException] = []

        def run(component: Component) -> None:
            try:
                for milestone in component.after:
                    ctx.wait_for(milestone)
                ctx.reached(component.name, component.start(ctx))
                for milestone in component.provides:  # reached by now, when the component did not say so earlier
                    ctx.reached(milestone)
            except BaseException as exc:  # re-raised by up below, after the other threads
                failures.append(exc)
                ctx.abort()

        threads = [threading.Thread(target=run, args=(c,), name=f"devstack-{c.name}") for c in self.components]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException:
            ctx.abort()
            for thread in threads:
                if thread.is_alive():
                    thread.join()
            self.down()
            raise
        if failures:
            # leave nothing half-started behind a failed `up`; the first real failure, not a waiter's
            self.down()
            raise next((exc for exc in failures if not isinstance(exc, Aborted)), failures[0])
        env = dict(ctx.env)
        ctx.write_env(env)
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
