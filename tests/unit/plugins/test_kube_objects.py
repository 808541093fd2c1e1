"""plugin_utils/kube_objects.summary: biomage.iac.k8s_apply's result from what kubernetes.core.k8s (6.x) returned."""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.plugin_utils import kube_objects

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "traefik"}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "traefik", "namespace": "traefik"}}
LIVE_SERVICE = {**SERVICE, "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.test"}]}}}
CHANGED_SERVICE = {"before": SERVICE, "after": LIVE_SERVICE}


def test_the_module_arguments_apply_in_one_run_and_a_check_run_goes_past_errors() -> None:
    args = kube_objects.module_args([NAMESPACE, SERVICE], "/k/config", "biomage-iac", True, check_mode=True)
    assert args == {
        "state": "present",
        "definition": [NAMESPACE, SERVICE],
        "continue_on_error": True,
        "kubeconfig": "/k/config",
        "apply": True,
        "server_side_apply": {"field_manager": "biomage-iac", "force_conflicts": True},
    }
    plain = kube_objects.module_args([SERVICE])
    assert plain == {"state": "present", "definition": [SERVICE], "continue_on_error": False}


def test_a_run_of_several_objects_keeps_labels_diffs_plan_and_the_kinds_asked_for() -> None:
    returned = {
        "changed": True,
        "invocation": {"module_args": {"definition": [NAMESPACE, SERVICE]}},
        "warnings": ["a deprecated field"],
        "result": {
            "results": [
                {"changed": False, "method": "update", "result": NAMESPACE, "diff": {}},
                {"changed": True, "method": "patch", "result": LIVE_SERVICE, "diff": CHANGED_SERVICE},
            ]
        },
    }
    out = kube_objects.summary(returned, [NAMESPACE, SERVICE], check_mode=False, return_kinds=["Service"])
    assert out["changed"] is True and out["objects"] == ["Service traefik/traefik"]
    assert out["plan"] == [
        {"kind": "Service", "name": "traefik/traefik", "action": "update", "reason": "kubernetes.core.k8s patch"}
    ]
    assert [entry["after_header"] for entry in out["diff"]] == ["Service traefik/traefik"]
    assert out["resources"] == [LIVE_SERVICE]
    assert out["warnings"] == ["a deprecated field"]
    assert "invocation" not in out and "result" not in out


def test_a_run_of_one_object_returns_its_result_as_its_own() -> None:
    returned = {"changed": True, "method": "apply", "result": NAMESPACE, "diff": {"before": {}, "after": NAMESPACE}}
    out = kube_objects.summary(returned, [NAMESPACE], check_mode=False)
    assert out["plan"] == [
        {"kind": "Namespace", "name": "traefik", "action": "create", "reason": "kubernetes.core.k8s apply"}
    ]
    assert out["resources"] == [], "no kind was asked for"


def test_a_server_side_apply_without_a_diff_is_an_update() -> None:
    returned = {"changed": True, "method": "apply", "result": NAMESPACE}
    assert kube_objects.summary(returned, [NAMESPACE], check_mode=False)["plan"][0]["action"] == "update"


def test_a_failed_run_keeps_the_modules_message_and_drops_its_arguments() -> None:
    returned = {
        "failed": True,
        "msg": 'Failed to create object: namespaces "traefik" not found',
        "invocation": {"module_args": {"definition": [SERVICE]}},
    }
    out = kube_objects.summary(returned, [SERVICE], check_mode=False)
    assert out == {"failed": True, "changed": False, "msg": 'Failed to create object: namespaces "traefik" not found'}


def test_a_check_run_plans_the_objects_of_a_namespace_it_creates_and_refuses_other_errors() -> None:
    created = {"changed": True, "method": "create", "result": NAMESPACE, "diff": {"before": {}, "after": NAMESPACE}}
    not_found = {"changed": False, "result": {}, "error": {"msg": 'namespaces "traefik" not found'}}
    returned = {"changed": True, "result": {"results": [created, not_found]}}
    out = kube_objects.summary(returned, [NAMESPACE, SERVICE], check_mode=True)
    assert out["objects"] == ["Namespace traefik", "Service traefik/traefik"]
    planned = [(item["name"], item["action"]) for item in out["plan"]]
    assert planned == [("traefik", "create"), ("traefik/traefik", "create")]
    refused = {"changed": False, "result": {}, "error": {"msg": 'services "traefik" is forbidden: exceeded quota'}}
    unchanged = {**created, "changed": False}
    out = kube_objects.summary({"result": {"results": [unchanged, refused]}}, [NAMESPACE, SERVICE], check_mode=True)
    assert out["failed"] is True
    assert out["msg"] == 'The dry run refused: Service traefik/traefik: services "traefik" is forbidden: exceeded quota'


def test_a_streams_objects_are_selected_by_kind_and_a_document_that_is_not_one_is_refused() -> None:
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "t"}}
    role = {**binding, "kind": "ClusterRole"}
    # an upstream file's empty documents (a leading "---", a trailing comment) are left out
    documents = [None, role, {}, binding]
    assert kube_objects.select(documents) == [role, binding]
    assert kube_objects.select(documents, ["ClusterRole"]) == [role]
    assert kube_objects.select(documents, []) == []
    try:
        kube_objects.select([role, ["a", "b"]], None, "rbac.yaml")
    except ValueError as exc:
        assert str(exc).startswith("rbac.yaml: document 2 is a list, not a Kubernetes object. Fix:")
    else:
        raise AssertionError("a list document was accepted")
