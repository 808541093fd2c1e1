"""Run a module's ``main()`` in-process: its arguments patched in, exit_json/fail_json caught as :class:`Exit`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class Exit(Exception):
    def __init__(self, result: dict[str, Any], failed: bool) -> None:
        super().__init__(result.get("msg"))
        self.result = result
        self.failed = failed


def run_module(main: Callable[[], None], args: dict[str, Any], **methods: Callable[..., Any]) -> Exit:
    """The result of ``main()`` with ``args``; ``methods`` replace more AnsibleModule methods (run_command, ...)."""

    def exit_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
        raise Exit(kwargs, failed=False)

    def fail_json(self: basic.AnsibleModule, msg: str, **kwargs: Any) -> None:
        raise Exit({"msg": msg, **kwargs}, failed=True)

    with (
        patch_module_args(args),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json, **methods),
        pytest.raises(Exit) as outcome,
    ):
        main()
    return outcome.value
