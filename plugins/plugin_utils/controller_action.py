# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the collection's action plugins that run on the control node only (plugins/action/)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    """An action that needs no connection and sends no module: its arguments are checked against
    ``ARGUMENT_SPEC`` and :meth:`act` returns its result. Check mode changes nothing it does."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False
    ARGUMENT_SPEC: ClassVar[dict] = {}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        return {**result, **self.act(args)}

    @abstractmethod
    def act(self, args):
        """The task's result (``changed``, ``failed``, ``msg``, ...) for the checked ``args``."""
