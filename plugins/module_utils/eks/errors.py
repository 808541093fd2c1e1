# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error of the eks/ room: the cluster configuration, the plan and the eksctl runner raise it."""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError


class EksError(BiomageError):
    """A failure worded for the operator: what failed, where, and the fix.

    ``kind`` is one of ``invalid`` (bad input, nothing was called), ``eksctl`` (eksctl missing or too
    old), ``credentials``, ``not_found``, ``immutable`` (a node group change needing a decision),
    ``failed`` (a command failed) or ``internal``. ``details`` holds what a caller can act on
    (``rc``, ``problems``, ``immutable``); the module returns them beside ``error_kind``.
    """

    def __init__(self, msg, kind="failed", fix=None, **details):
        super().__init__(msg, fix, **details)
        self.kind = kind

    @property
    def msg(self):
        return self.message
