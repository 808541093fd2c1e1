"""The eksctl_cluster module end to end in-process: arguments, validation before eksctl, fail_json, diff."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils import basic
from ansible_collections.biomage.iac.plugins.modules import eksctl_cluster

from tests.lib.eks_scenarios import BASE_CONFIG, CLUSTER, EKSCTL, READS, config_at, desired, live
from tests.lib.fake_eksctl import FakeEksctl, new_state
from tests.lib.module_run import Exit
from tests.lib.module_run import run_module as run_main


def run_module(args: dict[str, Any], fake: FakeEksctl, binary: str | None = EKSCTL) -> Exit:
    def run_command(self: basic.AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        assert isinstance(argv, list), "eksctl must be called with an argument list"
        return fake.run(argv)

    return run_main(eksctl_cluster.main, args, run_command=run_command, get_bin_path=lambda self, name, *a, **k: binary)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    shutil.copy(BASE_CONFIG, tmp_path / "cluster.yaml")
    (tmp_path / "cluster_admins").write_text("# admins\nalice\n")
    (tmp_path / "cluster_users").write_text("bob\n")
    return {
        "name": CLUSTER,
        "region": "eu-west-1",
        "config_file": str(tmp_path / "cluster.yaml"),
        "cluster_admins_file": str(tmp_path / "cluster_admins"),
        "cluster_users_file": str(tmp_path / "cluster_users"),
        "account_id": "123456789012",
        "kubeconfig": str(tmp_path / "kubeconfig"),
        "work_dir": str(tmp_path / "work"),
    }


def test_check_mode_with_diff_returns_plan_and_diff_without_mutating(files: dict[str, str]) -> None:
    fake = FakeEksctl(live(desired()))
    outcome = run_module({**files, "_ansible_check_mode": True, "_ansible_diff": True}, fake)
    assert not outcome.failed, outcome.result
    result = outcome.result
    assert result["changed"] is True
    assert result["plan"]["access_entries"]["add"] == [
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:user/bob",
    ]
    assert set(result["diff"]) == {"before", "after"}
    assert [argv[1:] for argv in fake.calls] == READS
    assert fake.mutating_calls() == []


def test_without_diff_no_diff_is_returned(files: dict[str, str]) -> None:
    fake = FakeEksctl(live(desired()))
    outcome = run_module({**files, "_ansible_check_mode": True}, fake)
    assert "diff" not in outcome.result


def test_malformed_config_fails_before_any_eksctl_call(files: dict[str, str]) -> None:
    path = Path(files["config_file"])
    path.write_text(path.read_text().replace("volumeEncrypted: true", "volumeEncrypted: false"))
    fake = FakeEksctl(new_state())
    outcome = run_module(files, fake)
    assert outcome.failed and outcome.result["error_kind"] == "invalid"
    assert f"{path}: managedNodeGroups[0].volumeEncrypted: must be true" in outcome.result["msg"]
    assert outcome.result["problems"]
    assert fake.calls == []


def test_bad_admin_file_fails_before_any_eksctl_call(files: dict[str, str]) -> None:
    Path(files["cluster_admins_file"]).write_text("alice smith\n")
    fake = FakeEksctl(new_state())
    outcome = run_module(files, fake)
    assert outcome.failed and "line 1: 'alice smith' is not an IAM user name" in outcome.result["msg"]
    assert fake.calls == []


def test_missing_eksctl_fails_with_the_fix(files: dict[str, str]) -> None:
    fake = FakeEksctl(new_state())
    outcome = run_module(files, fake, binary=None)
    assert outcome.failed and outcome.result["error_kind"] == "eksctl"
    assert "eksctl was not found on PATH" in outcome.result["msg"]


def test_an_eksctl_path_that_is_not_executable_is_named(files: dict[str, str], tmp_path: Path) -> None:
    fake = FakeEksctl(new_state())
    missing = tmp_path / "no-such-eksctl"
    outcome = run_module({**files, "eksctl_path": str(missing)}, fake)
    assert outcome.failed and outcome.result["error_kind"] == "eksctl"
    assert f"eksctl_path {missing} is not an executable file" in outcome.result["msg"]
    assert "eks_cluster_eksctl_path" in outcome.result["msg"]
    assert fake.calls == []


def test_immutable_change_fails_with_details(files: dict[str, str]) -> None:
    fake = FakeEksctl(live(desired()))
    path = Path(files["config_file"])
    path.write_text(path.read_text().replace('instanceTypes: ["r5.xlarge"]', 'instanceTypes: ["r5.2xlarge"]'))
    outcome = run_module(files, fake)
    assert outcome.failed and outcome.result["error_kind"] == "immutable"
    assert outcome.result["immutable"][0]["fields"] == {"instanceTypes": {"from": "r5.xlarge", "to": "r5.2xlarge"}}
    assert fake.mutating_calls() == []


def test_present_needs_a_config_file(files: dict[str, str]) -> None:
    args = {k: v for k, v in files.items() if k != "config_file"}
    outcome = run_module(args, FakeEksctl(new_state()))
    assert outcome.failed and "config_file" in outcome.result["msg"]


def test_kubernetes_version_override_plans_an_upgrade(files: dict[str, str]) -> None:
    # the config one minor behind the pin, staging running ahead of it
    Path(files["config_file"]).write_text(yaml.safe_dump(config_at("1.35"), sort_keys=False))
    fake = FakeEksctl(live(desired(config_at("1.35"))))
    args = {**files, "kubernetes_version": "1.36", "_ansible_check_mode": True}
    mismatch = run_module(args, fake)
    assert (
        mismatch.failed and "kube-proxy v1.35.0 does not match the cluster's Kubernetes 1.36" in mismatch.result["msg"]
    )
    assert "eks_cluster_addon_versions" in mismatch.result["msg"] and fake.calls == []

    outcome = run_module({**args, "addon_versions": {"kube-proxy": "v1.36.0"}}, fake)
    assert not outcome.failed, outcome.result
    assert outcome.result["plan"]["version_steps"] == ["1.36"]
    assert outcome.result["plan"]["addons"]["update"] == [
        {"name": "kube-proxy", "from": "v1.35.0-eksbuild.2", "to": "v1.36.0"}
    ]
    unknown = run_module({**args, "addon_versions": {"kube-proxi": "v1.36.0"}}, fake)
    assert unknown.failed and "add-on version overrides name kube-proxi" in unknown.result["msg"]
