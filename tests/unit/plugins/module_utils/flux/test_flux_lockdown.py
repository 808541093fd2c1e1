"""Flux's multi-tenancy lockdown (docs/tenants.md): the arguments the flux role sets on the install manifest's
kustomize-controller and helm-controller, the same for the local stack's controller processes."""

from __future__ import annotations

import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.biomage.iac.plugins.filter.flux_lockdown import FilterModule
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown
from devstack import flux as devstack_flux

from tests.lib.ansible_run import REPO_ROOT

ACCOUNT = "--default-service-account=release-deployer"
NO_CROSS = "--no-cross-namespace-refs=true"


def deployment(name: str, args: list[str] | None = None, container: str = "manager") -> dict:
    """A controller's Deployment shaped like those of Flux's install.yaml."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "image": f"ghcr.io/fluxcd/{name}:v1.0.0",
                            "args": [
                                "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
                                "--watch-all-namespaces=true",
                                "--log-level=info",
                                *(args or []),
                            ],
                        }
                    ]
                }
            }
        },
    }


def manifest() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}},
        deployment("source-controller"),
        deployment("kustomize-controller"),
        deployment("helm-controller"),
        deployment("notification-controller"),
    ]


def args_of(objects: list[dict], name: str) -> list[str]:
    (found,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    return found["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_two_controllers_get_the_lockdown_and_nothing_else_changes() -> None:
    original = manifest()
    locked = lockdown.lock_down(original)
    assert original == manifest(), "the input is not modified"
    assert args_of(locked, "kustomize-controller")[-2:] == [ACCOUNT, NO_CROSS]
    assert args_of(locked, "helm-controller")[-1] == ACCOUNT
    assert "--no-cross-namespace-refs" not in " ".join(args_of(locked, "helm-controller")), "not for helm-controller"
    for name in ("source-controller", "notification-controller"):
        assert args_of(locked, name) == args_of(original, name)
    assert [o for o in locked if o["kind"] != "Deployment"] == original[:1]


def test_the_patch_is_idempotent() -> None:
    once = lockdown.lock_down(manifest())
    assert lockdown.lock_down(once) == once


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # a value already there is replaced where it stands, not appended again
        (["--no-cross-namespace-refs=false", "--x=1"], [NO_CROSS, "--x=1", ACCOUNT]),
        # "--flag value": the value goes with it
        (["--default-service-account", "default", "--x=1"], [ACCOUNT, "--x=1", NO_CROSS]),
        # a bool flag does not take the next argument as its value
        (["--no-cross-namespace-refs", "--x=1"], [NO_CROSS, "--x=1", ACCOUNT]),
        # duplicates collapse into one
        ([ACCOUNT, "--default-service-account=other", NO_CROSS, NO_CROSS], [ACCOUNT, NO_CROSS]),
        # a flag that only shares the prefix is another flag
        (["--default-service-account-name=x"], ["--default-service-account-name=x", ACCOUNT, NO_CROSS]),
    ],
)
def test_arguments_already_present_are_replaced_not_duplicated(given: list[str], expected: list[str]) -> None:
    flags = lockdown.controller_flags("kustomize-controller")
    assert lockdown.set_args(given, flags) == expected
    assert lockdown.set_args(expected, flags) == expected


def test_a_container_without_args_gets_them() -> None:
    objects = manifest()
    del objects[3]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args_of(lockdown.lock_down(objects), "helm-controller") == [ACCOUNT]


@pytest.mark.parametrize("missing", ["kustomize-controller", "helm-controller"])
def test_a_manifest_without_the_deployment_is_refused_with_the_fix(missing: str) -> None:
    objects = [o for o in manifest() if o["metadata"]["name"] != missing]
    with pytest.raises(lockdown.LockdownError) as caught:
        lockdown.lock_down(objects)
    text = str(caught.value)
    assert f"the install manifest has no Deployment {missing}" in text
    assert "Nothing was applied." in text
    assert "Fix: check flux_install_manifest_url" in text


def test_a_deployment_without_a_manager_container_is_refused() -> None:
    objects = manifest()
    objects[2] = deployment("kustomize-controller", container="app")
    with pytest.raises(
        lockdown.LockdownError, match=r"kustomize-controller .* has no container 'manager' \(it has: app\)"
    ):
        lockdown.lock_down(objects)


def test_bad_input_is_refused() -> None:
    with pytest.raises(lockdown.LockdownError, match="not a list of objects"):
        lockdown.lock_down({"kind": "Deployment"})  # type: ignore[arg-type]
    with pytest.raises(lockdown.LockdownError, match="is not a name"):
        lockdown.lock_down(manifest(), "")


def test_the_filter_gives_the_same_and_fails_with_the_message() -> None:
    flux_lockdown = FilterModule().filters()["flux_lockdown"]
    assert flux_lockdown(manifest()) == lockdown.lock_down(manifest())
    assert args_of(flux_lockdown(manifest(), "other"), "helm-controller")[-1] == "--default-service-account=other"
    with pytest.raises(AnsibleFilterError, match="has no Deployment helm-controller"):
        flux_lockdown(manifest()[:3])


def test_the_local_controllers_run_with_the_same_arguments() -> None:
    """One path for every environment: the stack's processes get what the role sets on the Deployments."""
    locked = lockdown.lock_down(manifest())
    for process, name in ((devstack_flux.KUSTOMIZE, "kustomize-controller"), (devstack_flux.HELM, "helm-controller")):
        extra = devstack_flux.lockdown_args(process)
        assert extra and args_of(locked, name)[-len(extra) :] == extra
    assert devstack_flux.lockdown_args(devstack_flux.SOURCE) == []


def test_the_role_uses_the_names_of_the_release_step() -> None:
    role_vars = yaml.safe_load((REPO_ROOT / "roles/flux/vars/main.yml").read_text(encoding="utf-8"))
    assert {key: value for key, value in role_vars.items() if key.startswith("flux_release_deployer_")} == {
        "flux_release_deployer_account": lockdown.DEFAULT_SERVICE_ACCOUNT,
        "flux_release_deployer_binding": lockdown.DEPLOYER_BINDING,
        "flux_release_deployer_role": lockdown.DEPLOYER_CLUSTER_ROLE,
    }
    tasks = yaml.safe_load((REPO_ROOT / "roles/flux/tasks/controllers.yml").read_text(encoding="utf-8"))
    names = [task["name"] for task in tasks]
    check = next(i for i, name in enumerate(names) if name.startswith("Read and check the install manifest"))
    apply = next(i for i, name in enumerate(names) if name.startswith("Apply the controllers, CRDs and RBAC"))
    assert check < apply, "the manifest is applied after its checks (SHA-256 first)"
    # the checked objects come back locked down for the release step's account, and the apply sends those only
    assert tasks[check]["biomage.iac.flux_manifest"]["default_service_account"] == "{{ flux_release_deployer_account }}"
    assert tasks[check]["register"] == "flux_manifest"
    definition = tasks[apply]["biomage.iac.k8s_apply"]["definitions"]
    assert re.findall(r"flux_\w+", definition) == ["flux_manifest", "flux_credentials_plan", "flux_manifest"]
    assert re.findall(r"flux_manifest\.\w+", definition) == ["flux_manifest.objects", "flux_manifest.objects"]


# -- the release namespace's account (written by the release step) ----------------------------------------------
def test_the_deployer_account_and_binding_of_a_namespace() -> None:
    account, binding = lockdown.deployer_objects("ui-master")
    assert account == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "release-deployer", "namespace": "ui-master"},
        "automountServiceAccountToken": False,
    }
    assert binding["metadata"] == {"name": "release-deployer", "namespace": "ui-master"}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "biomage-release-deployer",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "release-deployer", "namespace": "ui-master"}]


def test_with_deployer_appends_per_released_namespace_and_replaces_what_is_there() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ui-x"}}
    release = {"kind": "HelmRelease", "metadata": {"name": "ui-x", "namespace": "ui-x"}}
    tampered = {**lockdown.deployer_objects("ui-x")[1], "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}
    result = lockdown.with_deployer([namespace, tampered, release])
    assert result == [namespace, release, *lockdown.deployer_objects("ui-x")], "at the end; the tampered one replaced"
    assert lockdown.with_deployer(result) == result
    assert lockdown.with_deployer([namespace]) == [namespace], "no HelmRelease: no account"
