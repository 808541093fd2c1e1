# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error model of biomage.iac.

Every room of module_utils (cloudformation/, eks/, github/, kube/, flux/, aws) raises a subclass of
:class:`BiomageError`: what failed (the message), the fix when one is known, and details a caller
or a log reader can act on (an AWS error code and request id, an HTTP status, a command's exit
code). Modules turn any of them into ``fail_json`` in one place, :func:`fail`.
"""

from __future__ import annotations


class BiomageError(Exception):
    """What failed, how to fix it, and machine-readable details (never secrets)."""

    def __init__(self, message, fix=None, **details):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = {key: value for key, value in details.items() if value is not None}

    def __str__(self):
        if self.fix and "Fix:" not in self.message:
            return f"{self.message.rstrip()} Fix: {self.fix}"
        return self.message


def fail(module, exc, **result):
    """End a module run with ``exc``: the message, the fix and the error's details as result keys.

    On an ``AnsibleAWSModule`` whose error was caused by a botocore exception, ``fail_json_aws`` is
    used so that the AWS error code, request id and HTTP status reach the result the standard way.
    """
    result = {**getattr(exc, "details", {}), **result}
    cause = exc.__cause__
    fail_json_aws = getattr(module, "fail_json_aws", None)
    if fail_json_aws is not None and cause is not None and _is_botocore_error(cause):
        fail_json_aws(cause, msg=str(exc), **result)
    module.fail_json(msg=str(exc), **result)


def _is_botocore_error(exc):
    module_name = type(exc).__module__ or ""
    return module_name.startswith("botocore")
