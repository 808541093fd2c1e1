"""The ClusterConfig validator: every problem named with file, field and fix, all at once."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.eks.config import load_config, parse_config
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.validation import validate

from tests.lib.eks_scenarios import BASE_CONFIG, REPO_ROOT, base_config

SOURCE = "infra/cluster.yaml"


def problems(config: dict, **kwargs: str) -> list[str]:
    with pytest.raises(EksError) as failure:
        validate(config, SOURCE, **kwargs)
    assert failure.value.kind == "invalid"
    assert f"{SOURCE} is not a valid cluster configuration" in failure.value.msg
    return failure.value.details["problems"]


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_the_platform_config_is_valid_for_every_environment(environment: str) -> None:
    inventory = yaml.safe_load((REPO_ROOT / f"inventories/{environment}/group_vars/all/main.yml").read_text())
    config = load_config(str(BASE_CONFIG))
    assert validate(config, SOURCE, name=inventory["biomage_cluster_name"], region="eu-west-1") is config
    assert config["metadata"]["version"] == "1.36"
    assert config["iam"]["withOIDC"] is True
    for ng in config["managedNodeGroups"]:
        assert ng["volumeEncrypted"] is True and ng["disableIMDSv1"] is True
    namespaces = {s["namespace"] for p in config["fargateProfiles"] for s in p["selectors"]}
    assert namespaces == {"worker-*", "pipeline-*"}
    assert {a["name"] for a in config["addons"]} == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"}
    assert all(a.get("version") for a in config["addons"])


def test_a_misspelt_field_is_named_with_the_known_fields() -> None:
    config = base_config()
    config["managedNodegroups"] = config.pop("managedNodeGroups")
    found = problems(config)
    assert any(p.startswith(f"{SOURCE}: managedNodegroups: is not a field this platform uses") for p in found)
    assert any("managedNodeGroups: needs at least one managed node group" in p for p in found)
    assert any("known fields: " in p and "managedNodeGroups" in p for p in found)


def test_unsafe_nodegroup_settings_are_refused_all_at_once() -> None:
    config = base_config()
    ng = config["managedNodeGroups"][0]
    ng.update(volumeEncrypted=False, minSize=5, desiredCapacity=2)
    del ng["disableIMDSv1"]
    found = problems(config)
    expected = f"{SOURCE}: managedNodeGroups[0].volumeEncrypted: must be true (node volumes are encrypted). "
    assert expected + "Fix: set volumeEncrypted: true" in found
    assert any("managedNodeGroups[0].disableIMDSv1: must be true" in p for p in found)
    assert any("minSize <= desiredCapacity <= maxSize" in p for p in found)
    assert len(found) == 3


def test_an_unquoted_version_is_explained() -> None:
    config = parse_config(BASE_CONFIG.read_text().replace('version: "1.36"', "version: 1.30"), SOURCE)
    (found,) = [p for p in problems(config) if "metadata.version" in p]
    assert "not the number 1.3 (YAML reads 1.30 as 1.3)" in found and 'quote it: version: "1.33"' in found


def test_self_managed_nodegroups_and_config_map_mode_are_refused() -> None:
    config = base_config()
    config["nodeGroups"] = [{"name": "ng-1"}]
    config["accessConfig"]["authenticationMode"] = "CONFIG_MAP"
    found = problems(config)
    assert f"{SOURCE}: nodeGroups: self-managed node groups are not supported. Fix: use managedNodeGroups" in found
    assert any("CONFIG_MAP cannot hold access entries" in p for p in found)


def test_name_and_region_in_the_file_must_match_the_inventory() -> None:
    config = base_config()
    config["metadata"]["name"] = "biomage-production"
    found = problems(config, name="biomage-staging", region="eu-west-1")
    assert any("metadata.name: 'biomage-production' differs from the inventory's 'biomage-staging'" in p for p in found)


def test_kube_proxy_must_follow_the_cluster_version() -> None:
    config = base_config()
    config["metadata"]["version"] = "1.35"
    found = problems(config)
    assert any("kube-proxy v1.36.0 does not match the cluster's Kubernetes 1.35" in p for p in found)


def test_replacement_like_names_are_reserved() -> None:
    config = base_config()
    config["managedNodeGroups"][0]["name"] = "workers-0badcafe"
    assert any("reserves for rolled node groups" in p for p in problems(config))
