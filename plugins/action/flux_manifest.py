# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.flux_manifest on the control node (documented in plugins/modules/flux_manifest.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url
from ansible_collections.biomage.iac.plugins.module_utils.flux import install_manifest
from ansible_collections.biomage.iac.plugins.module_utils.flux.lockdown import DEFAULT_SERVICE_ACCOUNT
from ansible_collections.biomage.iac.plugins.plugin_utils.controller_action import ControllerAction


def read(url, timeout):
    """The text at ``url`` (https, http or file), redirects followed as a release download needs."""
    try:
        with open_url(url, timeout=timeout, follow_redirects="urllib2") as response:
            return to_text(response.read(), errors="surrogate_or_strict")
    except Exception as exc:  # every transport error is the same refusal, with its cause
        raise install_manifest.ManifestError(
            f"{url} could not be read ({type(exc).__name__}: {exc}). Nothing was applied.",
            fix="check flux_install_manifest_url and that the control node reaches it",
        ) from exc


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "url": {"type": "str", "required": True},
        "sha256": {"type": "str", "required": True},
        "image_repository": {"type": "str", "required": True},
        "required_controllers": {"type": "list", "elements": "str", "default": []},
        "namespace": {"type": "str", "required": True},
        "default_service_account": {"type": "str", "default": DEFAULT_SERVICE_ACCOUNT},
        "timeout": {"type": "int", "default": 30},
    }

    def act(self, args):
        try:
            checked = install_manifest.check(
                read(args["url"], args["timeout"]),
                args["url"],
                args["sha256"],
                args["image_repository"],
                args["required_controllers"],
                args["namespace"],
            )
            objects = install_manifest.locked(checked["objects"], args["default_service_account"])
        except install_manifest.ManifestError as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}
        return {
            "changed": False,
            "objects": objects,
            "controllers": checked["controllers"],
            "images": checked["images"],
        }
