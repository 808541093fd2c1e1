# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The errors of the cloudformation/ room, all :class:`BiomageError`.

Botocore errors do not leave the room as such: :mod:`.client` translates them into
:class:`~ansible_collections.biomage.iac.plugins.module_utils.aws.AwsError` with CloudFormation's
access hint.
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError


class CfnError(BiomageError):
    """A failure worded for the operator. ``problems`` lists per-item messages (one per template,
    parameter or stack); they follow the message, one a line, and reach the module result as
    ``problems``."""

    def __init__(self, message, fix=None, problems=None, **details):
        self.problems = list(problems or [])
        super().__init__(message, fix, problems=self.problems or None, **details)

    def __str__(self):
        return super().__str__() + "".join(f"\n- {problem}" for problem in self.problems)


class ValidationFailed(CfnError):
    """Templates or inputs are wrong: nothing was changed."""


class PlanFailed(CfnError):
    """The deployed state blocks the run: nothing was changed."""


class TemplateError(CfnError):
    """A template that cannot be read or understood; the message names the file and the fix."""
