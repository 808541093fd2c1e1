"""Command line of the local stack: ``python -m devstack up|down|status|env|releases``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .components import COMPONENTS, DEFAULT_COMPONENTS
from .core import DEFAULT_STATE_DIR, DevstackError
from .stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "env", "releases"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument(
        "--components",
        default=",".join(DEFAULT_COMPONENTS),
        help=f"comma-separated subset of: {', '.join(COMPONENTS)}",
    )
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir, [c for c in args.components.split(",") if c])
    try:
        if args.action == "up":
            env = stack.up()
            print(f"local stack is up; env file: {stack.ctx.env_file}")
            for key in sorted(env):
                if "SECRET" not in key:
                    print(f"  {key}={env[key]}")
            for notice in stack.ctx.notices:
                print(f"devstack: NOTE: {notice}", file=sys.stderr)
        elif args.action == "down":
            stopped = stack.down()
            print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        elif args.action == "status":
            for name, running in stack.status().items():
                print(f"{name}: {'running' if running else 'stopped'}")
        elif args.action == "releases":
            print(releases_report(stack.env()))
        else:
            for key, value in sorted(stack.env().items()):
                print(f"{key}={value}")
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    return 0


def releases_report(env: dict[str, str]) -> str:
    """What Flux runs on the stack (devstack/releases.py), through the stack's admin kubeconfig."""
    if not env.get("KUBECONFIG"):
        raise DevstackError("the stack's API server is not started. Fix: make dev-up (then make demo).")
    # imported here: up, down and status (make dev-up's start-up time) do without the kubernetes client
    from kubernetes import config  # noqa: PLC0415

    from .releases import report  # noqa: PLC0415

    with config.new_client_from_config(config_file=env["KUBECONFIG"]) as api:
        return report(api)


if __name__ == "__main__":
    sys.exit(main())
