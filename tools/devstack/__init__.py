"""The local, offline development stack of biomage.iac (``make dev-up`` / ``make dev-down``)."""

from .core import Component, Context, DevstackError, free_port, read_env_file
from .stack import Stack

__all__ = ["Component", "Context", "DevstackError", "Stack", "free_port", "read_env_file"]
