"""The eksctl runner: version check, argument lists, error classification, check-mode guard, redaction."""

from __future__ import annotations

import json

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.eks.eksctl import (
    MIN_EKSCTL_VERSION,
    EksctlRunner,
    parse_version,
    redact,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError

from tests.lib.fake_eksctl import EXPIRED, NOT_FOUND, VERSION_INFO

EKSCTL = "/usr/local/bin/eksctl"


def scripted(*replies: tuple[int, str, str]):
    """A run_command replaying ``replies`` in order and recording each argv."""
    calls: list[list[str]] = []
    queue = list(replies)

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        return queue.pop(0)

    return run, calls


def test_version_check_accepts_a_recent_eksctl() -> None:
    run, calls = scripted((0, json.dumps(VERSION_INFO), ""))
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[])
    assert runner.check_version()["Version"] == "0.230.0"
    assert calls == [[EKSCTL, "version", "-o", "json"]]
    assert runner.supported_kubernetes_versions() == []  # since 0.202.0 eksctl asks EKS, it prints none


def test_an_eksctl_that_lists_its_kubernetes_versions_is_read() -> None:
    listed = {**VERSION_INFO, "EKSServerSupportedVersions": ["1.32", "1.33"]}  # the shape of releases before 0.202.0
    run, _calls = scripted((0, json.dumps(listed), ""))
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[])
    runner.check_version()
    assert "1.33" in runner.supported_kubernetes_versions()


def test_too_old_eksctl_is_named_with_the_minimum() -> None:
    run, _calls = scripted((0, json.dumps({**VERSION_INFO, "Version": "0.150.0"}), ""))
    with pytest.raises(EksError) as failure:
        EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[]).check_version()
    assert failure.value.kind == "eksctl"
    assert f"eksctl 0.150.0 is too old: this collection needs {MIN_EKSCTL_VERSION} or newer" in failure.value.msg
    assert "Fix: upgrade eksctl" in failure.value.msg


def test_eksctl_without_json_version_falls_back_to_plain_output() -> None:
    run, calls = scripted((1, "", "Error: unknown shorthand flag: 'o' in -o\n"), (0, "0.120.0\n", ""))
    with pytest.raises(EksError, match=r"eksctl 0\.120\.0 is too old"):
        EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[]).check_version()
    assert calls == [[EKSCTL, "version", "-o", "json"], [EKSCTL, "version"]]


def test_missing_eksctl_is_named_with_the_fix() -> None:
    run, calls = scripted()
    with pytest.raises(EksError) as failure:
        EksctlRunner(run, None, "eu-west-1", secrets=[]).check_version()
    assert failure.value.kind == "eksctl"
    assert "eksctl was not found on PATH" in failure.value.msg and "eks_cluster_eksctl_path" in failure.value.msg
    assert calls == []


def test_an_unrunnable_binary_is_reported() -> None:
    def run(argv: list[str]) -> tuple[int, str, str]:
        raise PermissionError(13, "Permission denied")

    with pytest.raises(EksError, match=f"cannot run {EKSCTL}.*Permission denied"):
        EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[]).check_version()


def test_missing_cluster_is_none_and_other_failures_raise() -> None:
    run, calls = scripted((1, "", NOT_FOUND.format(name="biomage-staging")), (1, "", EXPIRED))
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[])
    assert runner.get_cluster("biomage-staging") is None
    assert calls[0] == [EKSCTL, "get", "cluster", "--name", "biomage-staging", "--region", "eu-west-1", "-o", "json"]
    with pytest.raises(EksError) as failure:
        runner.get_cluster("biomage-staging")
    assert failure.value.kind == "credentials"
    assert "security token included in the request is expired" in failure.value.msg


def test_null_and_garbage_json() -> None:
    run, _calls = scripted((0, "null\n", ""), (0, "2025-09-30 [i] not json\n", ""))
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[])
    assert runner.get_addons("biomage-staging") == []
    with pytest.raises(EksError, match="did not print JSON"):
        runner.get_addons("biomage-staging")


def test_check_mode_refuses_mutating_commands_without_running_them() -> None:
    run, calls = scripted()
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", check_mode=True, secrets=[])
    with pytest.raises(EksError) as failure:
        runner.mutate(["delete", "cluster", "--name", "biomage-staging", "--wait"])
    assert failure.value.kind == "internal" and calls == [] and runner.calls == []


def test_secrets_never_reach_messages() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    run, _calls = scripted((1, "", f"Error: bad request signed with {secret}; aws_secret_access_key = other-secret\n"))
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", secrets=[secret])
    with pytest.raises(EksError) as failure:
        runner.mutate(["create", "cluster", "--config-file", "/tmp/c.yaml"])
    assert secret not in failure.value.msg and "other-secret" not in failure.value.msg
    assert "********" in failure.value.msg
    assert redact("token=abc", ["abcdefgh"]) == "token=abc"


def test_parse_version() -> None:
    assert parse_version("0.215.0") == (0, 215, 0)
    assert parse_version("v0.216.0-rc.1") == (0, 216, 0)
    assert parse_version("dev") is None


def test_oidc_association_is_read_from_eksctls_plan_mode_and_unknown_wording_fails() -> None:
    meta = 'cluster "biomage-staging" in "eu-west-1"'
    run, calls = scripted(
        (0, "", f"2026-12-02 05:00:00 [i]  IAM Open ID Connect provider is already associated with {meta}\n"),
        (0, "", f"2026-12-02 05:00:00 [i]  (plan) would create IAM Open ID Connect provider for {meta}\n"),
        (0, "", "2026-12-02 05:00:00 [i]  OIDC provider state: unknown to this module\n"),
    )
    runner = EksctlRunner(run, EKSCTL, "eu-west-1", check_mode=True, secrets=[])
    assert runner.oidc_provider_associated("biomage-staging") is True
    assert runner.oidc_provider_associated("biomage-staging") is False
    with pytest.raises(EksError) as failure:
        runner.oidc_provider_associated("biomage-staging")
    assert failure.value.kind == "eksctl" and "unknown to this module" in failure.value.msg
    assert "meta/tool-versions.env" in failure.value.msg
    plan_argv = [
        EKSCTL,
        "utils",
        "associate-iam-oidc-provider",
        "--cluster",
        "biomage-staging",
        "--region",
        "eu-west-1",
    ]
    assert calls == [plan_argv] * 3, "plan mode only: never --approve"
