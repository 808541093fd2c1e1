# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``biomage.iac.yaml_documents`` filter: the non-empty documents of a YAML text as plain data, parsed
within the limits of plugins/module_utils/safe_yaml.py (docs in yaml_documents.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError


def yaml_documents(text, source="<input>"):
    if not isinstance(text, str):
        raise AnsibleFilterError(
            f"yaml_documents: {source} is a {type(text).__name__}, not a YAML text. Fix: give the file's content."
        )
    try:
        documents = safe_yaml.load_all(str(text), source=source)
    except BiomageError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    return [document for document in documents if document]


class FilterModule:
    def filters(self):
        return {"yaml_documents": yaml_documents}
