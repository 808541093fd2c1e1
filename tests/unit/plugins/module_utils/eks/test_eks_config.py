"""The ClusterConfig validator and renderer: every problem named with file, field and fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.eks.config import (
    load_config,
    parse_config,
    read_principals,
    render,
    validate,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks.eksctl import EksError

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
    assert config["metadata"]["version"] in ("1.33", "1.34")
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
    config = parse_config(BASE_CONFIG.read_text().replace('version: "1.33"', "version: 1.30"), SOURCE)
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
    config["metadata"]["version"] = "1.34"
    found = problems(config)
    assert any("kube-proxy v1.33.0 does not match the cluster's Kubernetes 1.34" in p for p in found)


def test_replacement_like_names_are_reserved() -> None:
    config = base_config()
    config["managedNodeGroups"][0]["name"] = "workers-0badcafe"
    assert any("reserves for rolled node groups" in p for p in problems(config))


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "cluster.yaml"
    broken.write_text("apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata:\n  version: [1.33\n")
    with pytest.raises(EksError) as failure:
        load_config(str(broken))
    assert failure.value.msg.startswith(f"{broken} line 5 column 1 is not valid YAML")
    with pytest.raises(EksError, match="cannot read the cluster configuration"):
        load_config(str(tmp_path / "missing.yaml"))


def test_principal_files_allow_comments_and_name_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "cluster_admins"
    good.write_text("# admins\nalice\n\n  bob   # on call\n")
    assert read_principals(str(good)) == ["alice", "bob"]
    bad = tmp_path / "cluster_users"
    bad.write_text("carol\nnot a user\ncarol\n")
    with pytest.raises(EksError) as failure:
        read_principals(str(bad))
    assert f"{bad} line 2: 'not a user' is not an IAM user name" in failure.value.msg
    assert f"{bad} line 3: 'carol' is listed twice" in failure.value.msg


def test_render_fills_environment_and_access_entries_without_touching_the_source() -> None:
    config = base_config()
    original = copy.deepcopy(config)
    rendered = render(
        config, "biomage-production", "eu-west-1", admins=["alice"], users=["bob"], account_id="210987654321"
    )
    assert config == original
    assert rendered["metadata"]["name"] == "biomage-production" and rendered["metadata"]["region"] == "eu-west-1"
    entries = rendered["accessConfig"]["accessEntries"]
    assert entries == [
        {
            "principalARN": "arn:aws:iam::210987654321:user/alice",
            "accessPolicies": [
                {
                    "policyARN": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                }
            ],
        },
        {
            "principalARN": "arn:aws:iam::210987654321:user/bob",
            "accessPolicies": [
                {
                    "policyARN": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                    "accessScope": {"type": "cluster"},
                }
            ],
        },
    ]
    assert render(config, "biomage-staging", "cn-north-1", admins=["a"], account_id="210987654321")["accessConfig"][
        "accessEntries"
    ][0]["principalARN"].startswith("arn:aws-cn:iam::")


def test_render_refuses_a_user_in_both_files_and_a_missing_account() -> None:
    config = base_config()
    with pytest.raises(EksError, match=r"IAM user 'alice' is also listed in admins"):
        render(config, "biomage-staging", "eu-west-1", admins=["alice"], users=["alice"], account_id="123456789012",
               sources={"admins": "admins", "users": "users"})  # fmt: skip
    with pytest.raises(EksError, match="the AWS account id is needed"):
        render(config, "biomage-staging", "eu-west-1", admins=["alice"], account_id=None)
    with pytest.raises(EksError, match="outside the versions this collection supports"):
        render(config, "biomage-staging", "eu-west-1", version="1.20")
