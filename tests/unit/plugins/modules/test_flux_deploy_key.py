"""The flux_deploy_key module in-process: a Kubernetes failure ends the run before GitHub is called."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from ansible_collections.biomage.iac.plugins.modules import flux_deploy_key

from tests.lib.module_run import run_module

TOKEN = "ghp_unitTestTokenThatMustNotLeak0000000"


def test_an_unusable_kubeconfig_fails_with_the_fix_before_any_github_call(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    args = {
        "kubeconfig": str(kubeconfig),
        "owner": "biomage-org",
        "repo": "iac",
        "title": "flux-biomage-staging",
        "known_hosts": ["github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"],
        "token": TOKEN,
    }
    with mock.patch.object(flux_deploy_key.GitHubClient, "list_deploy_keys") as list_keys:
        outcome = run_module(flux_deploy_key.main, args)
    assert outcome.failed and list_keys.call_count == 0
    assert outcome.result["msg"].startswith(f"cannot load the kubeconfig {kubeconfig}: ")
    assert "Fix: point kubeconfig to a valid file" in outcome.result["msg"]
    assert TOKEN not in repr(outcome.result)
