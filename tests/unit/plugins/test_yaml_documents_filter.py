"""biomage.iac.yaml_documents: the non-empty documents of a YAML text as plain (untagged) data, within limits."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.biomage.iac.plugins.filter.yaml_documents import yaml_documents

# a manifest as upstream projects publish them: a leading `---`, an empty document between two objects,
# a comment-only document, block scalars and anchors
MANIFEST = """---
# Source: example/templates/namespace.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: example
---
---
# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata: &meta
  name: settings
  namespace: example
data:
  script: |
    echo one
    echo two
  replicas: "2"
"""


def _types(value):
    if isinstance(value, dict):
        return {type(value)} | {t for k, v in value.items() for t in _types(k) | _types(v)}
    if isinstance(value, list):
        return {type(value)} | {t for v in value for t in _types(v)}
    return {type(value)}


def test_the_objects_in_order_without_the_empty_documents() -> None:
    objects = yaml_documents(MANIFEST, "install.yaml")
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert names == [("Namespace", "example"), ("ConfigMap", "settings")]
    assert objects[1]["data"] == {"script": "echo one\necho two\n", "replicas": "2"}


def test_the_result_is_plain_data() -> None:
    # no tagged subclasses: a fact holding it is copied cheaply by every later template lookup
    assert _types(yaml_documents(MANIFEST)) <= {dict, list, str}


def test_an_alias_bomb_is_refused_naming_the_source() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    with pytest.raises(AnsibleFilterError, match=r"bomb\.yaml"):
        yaml_documents(bomb, "bomb.yaml")


def test_invalid_yaml_names_the_source() -> None:
    with pytest.raises(AnsibleFilterError, match=r"^tenants\.yml\.j2: not valid YAML"):
        yaml_documents("kind: [unclosed\n", "tenants.yml.j2")


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match=r"the rendered ClusterIssuers is a list, not a YAML text"):
        yaml_documents([{"kind": "ClusterIssuer"}], "the rendered ClusterIssuers")
