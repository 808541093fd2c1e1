# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.k8s_apply (documented in plugins/modules/k8s_apply.py): one kubernetes.core.k8s run for a list of
objects, whose result carries each changed object's label, diff and plan entry instead of every object."""

from __future__ import annotations

from typing import ClassVar

from ansible.plugins.action import ActionBase
from ansible_collections.biomage.iac.plugins.plugin_utils import kube_objects


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    ARGUMENT_SPEC: ClassVar[dict] = {
        "definitions": {"type": "list", "elements": "dict", "required": True},
        "kubeconfig": {"type": "path"},
        "field_manager": {"type": "str"},
        "force_conflicts": {"type": "bool", "default": False},
        "return_kinds": {"type": "list", "elements": "str", "default": []},
    }

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)
        definitions = args["definitions"]
        if not definitions:
            return {**result, **kube_objects.summary({"changed": False}, [], check_mode)}
        returned = self._execute_module(
            module_name=kube_objects.MODULE,
            module_args=kube_objects.module_args(
                definitions, args["kubeconfig"], args["field_manager"], args["force_conflicts"], check_mode
            ),
            task_vars=task_vars,
        )
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return {**result, **kube_objects.summary(returned, definitions, check_mode, args["return_kinds"])}
