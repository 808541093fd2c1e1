# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.k8s_apply (documented in plugins/modules/k8s_apply.py): one kubernetes.core.k8s run for a list of
objects, whose result carries each changed object's label, diff and plan entry instead of every object."""

from __future__ import annotations

from typing import ClassVar

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.plugin_utils import kube_objects


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    ARGUMENT_SPEC: ClassVar[dict] = {
        "definitions": {"type": "list", "elements": "dict", "default": []},
        "sources": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "file": {"type": "str"},
                "template": {"type": "str"},
                "kinds": {"type": "list", "elements": "str"},
            },
            "mutually_exclusive": [["file", "template"]],
            "required_one_of": [["file", "template"]],
        },
        "kubeconfig": {"type": "path"},
        "field_manager": {"type": "str"},
        "force_conflicts": {"type": "bool", "default": False},
        "return_kinds": {"type": "list", "elements": "str", "default": []},
    }

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)
        definitions = [*self._read(args["sources"], task_vars), *args["definitions"]]
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

    def _read(self, sources, task_vars):
        """The objects of ``sources``, in order: each file read from the role's files/, each template rendered as the
        template lookup renders it; parsed here, as plain data, without passing through the task's templating."""
        objects = []
        render = None
        for source in sources:
            name = source["file"] or source["template"]
            try:
                if source["file"]:
                    text = self._loader.get_text_file_contents(self._find_needle("files", name))
                else:
                    render = render or self._shared_loader_obj.lookup_loader.get(
                        "ansible.builtin.template", loader=self._loader, templar=self._templar
                    )
                    text = render.run([name], variables=task_vars)[0]
            except AnsibleError as exc:
                raise AnsibleActionFail(f"sources: {name}: {exc.message} Nothing was applied.") from None
            try:
                objects.extend(kube_objects.select(safe_yaml.load_all(str(text), source=name), source["kinds"], name))
            except (BiomageError, ValueError) as exc:
                raise AnsibleActionFail(f"sources: {exc} Nothing was applied.") from None
        return objects
