"""The ClusterConfig loader and renderer: YAML errors and principal files named, access entries rendered."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.eks.config import load_config, read_principals, render
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError

from tests.lib.eks_scenarios import base_config


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
