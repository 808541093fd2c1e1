"""biomage.iac.flux through playbooks/base.yml against the session's stack: the Secret and deploy key
(on the GitHub stand-in), the GitRepository and Kustomization accepted by the real Flux CRDs,
idempotence, honest check mode, rotation on demand, failures in the middle of a rotation (forced by
a ValidatingAdmissionPolicy of the real API server), and no secret in the output."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from cryptography.hazmat.primitives import serialization
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.lib.ansible_run import REPO_ROOT, PlaybookResult, run_playbook
from tests.lib.tags import CLUSTER_ADDONS
from tests.unit.plugins.module_utils.github.test_deploy_keys import new_key

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/base.yml"
# the cluster and the flux role: the other add-ons of base.yml have their own tests (and would blur the counts)
OTHER_ADDONS = ["--skip-tags", ",".join(tag for tag in CLUSTER_ADDONS if tag != "flux")]
INVENTORY = "inventories/development"
NAMESPACE = SECRET = "flux-system"
TITLE = "flux-biomage-development"
SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories", "flux-system")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "releases")
ROLE_DEFAULTS = yaml.safe_load((REPO_ROOT / "roles/flux/defaults/main.yml").read_text())
PINNED_HOSTS = "\n".join(ROLE_DEFAULTS["flux_known_hosts"]) + "\n"


# -- helpers ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(kube_api: client.ApiClient) -> client.ApiClient:
    return kube_api


def github(env: dict[str, str], method: str, path: str, body: dict | None = None):
    token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    request = urllib.request.Request(
        f"{env['GITHUB_API_URL']}/repos/biomage-org/iac{path}",
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def keys(env: dict[str, str], title: str | None = TITLE) -> list[dict]:
    return [k for k in github(env, "GET", "/keys?per_page=100") if title is None or k["title"] == title]


def read_secret(api: client.ApiClient) -> dict | None:
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(SECRET, NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    return {"data": data, "resource_version": secret.metadata.resource_version}


def fingerprint_of(secret: dict) -> str:
    private = serialization.load_ssh_private_key(secret["data"]["identity"].encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return deploy_keys.fingerprint(public.decode())


def get_object(api: client.ApiClient, ref: tuple[str, str, str, str]) -> dict | None:
    group, version, plural, name = ref
    try:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, NAMESPACE, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def run(env: dict[str, str], check: bool = False, args: list[str] | None = None, **extra: object) -> PlaybookResult:
    return run_playbook(
        PLAYBOOK, INVENTORY, env=env, check=check, diff=True, extra_vars=extra or None, args=OTHER_ADDONS + (args or [])
    )


def secret_strings(secret: dict) -> list[str]:
    """Every form in which the private key could leak: its lines and its base64 (as stored)."""
    identity = secret["data"]["identity"]
    lines = [line for line in identity.splitlines() if line and "PRIVATE KEY" not in line]
    return [*lines, base64.b64encode(identity.encode()).decode()[:60]]


def reset(api: client.ApiClient, env: dict[str, str]) -> None:
    """No Secret, no GitRepository/Kustomization, no key titled flux-biomage-development."""
    try:
        client.CoreV1Api(api).delete_namespaced_secret(SECRET, NAMESPACE)
    except ApiException as exc:
        assert exc.status == 404
    for group, version, plural, name in (SOURCE, KUSTOMIZATION):
        try:
            client.CustomObjectsApi(api).delete_namespaced_custom_object(group, version, NAMESPACE, plural, name)
        except ApiException as exc:
            assert exc.status == 404
    for key in keys(env):
        github(env, "DELETE", f"/keys/{key['id']}")


def converged(api: client.ApiClient, env: dict[str, str]) -> dict:
    """The applied state (running the playbook only when it is not there); returns the Secret."""
    secret = read_secret(api)
    registered = [k["key"] for k in keys(env)]
    if not (secret and registered == [deploy_keys.normalize(secret["data"]["identity.pub"])]):
        run(env).assert_ok()
        secret = read_secret(api)
    assert secret and [k["key"] for k in keys(env)] == [deploy_keys.normalize(secret["data"]["identity.pub"])]
    return secret


@contextmanager
def refused_secret_writes(api: client.ApiClient, expression: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy of the real API server refusing writes of Flux's Secret."""
    admission = client.AdmissionregistrationV1Api(api)
    name = "test-refuse-flux-secret"
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["secrets"],
                        }
                    ]
                },
                "validations": [{"expression": expression, "message": "refused by the test's admission policy"}],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {"metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}}
    )
    try:
        core, deadline = client.CoreV1Api(api), time.monotonic() + 30
        while True:  # the policy takes effect shortly after it is created: probe with a no-op update
            try:
                core.replace_namespaced_secret(SECRET, NAMESPACE, core.read_namespaced_secret(SECRET, NAMESPACE))
            except ApiException as exc:
                assert "refused by the test" in exc.body, exc.body
                break
            assert time.monotonic() < deadline, "the admission policy never took effect"
            time.sleep(0.5)
        yield
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)
        time.sleep(2)  # and as long to stop applying


# -- tests ------------------------------------------------------------------------------------------
def test_first_plan_apply_then_nothing_to_do(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    reset(api, env)

    plan = run(env, check=True).assert_ok()
    assert plan.total("changed") >= 2 and "(a new ed25519 key)" in plan.stdout
    assert read_secret(api) is None and keys(env) == [] and get_object(api, SOURCE) is None, (
        "check mode changed nothing"
    )

    first = run(env).assert_ok()
    assert first.total("changed") >= 2
    secret = read_secret(api)
    assert secret is not None and set(secret["data"]) == {"identity", "identity.pub", "known_hosts"}
    fingerprint = fingerprint_of(secret)  # a valid OpenSSH ed25519 private key
    assert secret["data"]["identity.pub"].startswith("ssh-ed25519 ")
    assert deploy_keys.fingerprint(secret["data"]["identity.pub"]) == fingerprint
    assert secret["data"]["known_hosts"] == PINNED_HOSTS
    registered = keys(env)
    assert [(k["key"], k["read_only"]) for k in registered] == [
        (deploy_keys.normalize(secret["data"]["identity.pub"]), True)
    ]
    summary = " ".join(first.stdout.split("Summarise what was converged", 1)[1].split())
    assert f"deploy key {TITLE} {fingerprint}" in summary, "the summary names the key in use"

    source, kustomization = get_object(api, SOURCE), get_object(api, KUSTOMIZATION)
    assert source["spec"]["url"] == "ssh://git@github.com/biomage-org/iac"
    assert source["spec"]["ref"] == {"branch": "main"} and source["spec"]["secretRef"] == {"name": SECRET}
    assert kustomization["spec"]["path"] == "./releases/development" and kustomization["spec"]["prune"] is True
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert (REPO_ROOT / "releases/development").is_dir(), "the folder Flux syncs exists"

    second = run(env).assert_ok()
    assert second.total("changed") == 0, second.stdout[-4000:]
    check = run(env, check=True).assert_ok()
    assert check.total("changed") == 0, check.stdout[-4000:]
    assert read_secret(api)["resource_version"] == secret["resource_version"]


def test_rotation_on_demand(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    old = converged(api, env)
    others = [
        github(env, "POST", "/keys", {"title": "flux-biomage-staging", "key": new_key(), "read_only": True}),
        github(env, "POST", "/keys", {"title": "ci", "key": new_key(), "read_only": False}),
    ]
    try:
        plan = run(env, check=True, flux_regenerate="always").assert_ok()
        assert plan.total("changed") >= 1 and read_secret(api)["resource_version"] == old["resource_version"]

        rotated = run(env, args=["-vvv"], flux_regenerate="always").assert_ok()
        new = read_secret(api)
        assert new["resource_version"] != old["resource_version"]
        assert fingerprint_of(new) != fingerprint_of(old)
        assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(new["data"]["identity.pub"])], "old key deleted"
        assert {k["id"] for k in others} <= {k["id"] for k in keys(env, None)}, "other titles are never touched"
        assert new["data"]["known_hosts"] == PINNED_HOSTS

        output = rotated.output
        assert fingerprint_of(old) in output and fingerprint_of(new) in output, "the diff shows fingerprints"
        for leaked in secret_strings(old) + secret_strings(new):
            assert leaked not in output, "a private key reached the output"
        assert Path(env["GITHUB_TOKEN_FILE"]).read_text().strip() not in output

        assert run(env).assert_ok().total("changed") == 0
    finally:
        for key in others:
            github(env, "DELETE", f"/keys/{key['id']}")


def test_bad_token_fails_before_anything_is_touched(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    before = converged(api, env)
    token = "ghp_NotTheStandinsTokenAndNeverPrinted0002"
    result = run(env, args=["-vvv"], flux_github_token=token, flux_regenerate="always")
    assert result.returncode != 0
    assert "answered 401: Bad credentials" in result.output and "Fix: the token" in result.output
    failed_task = result.stdout.rsplit("TASK [", 1)[-1].split("]", 1)[0]
    assert (
        failed_task == "biomage.iac.flux : Check GitHub and the cluster, and plan Flux's credentials (changes nothing)"
    )
    assert token not in result.output
    assert read_secret(api)["resource_version"] == before["resource_version"]
    assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(before["data"]["identity.pub"])]


def test_key_deleted_on_github_is_added_again(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    before = converged(api, env)
    for key in keys(env):
        github(env, "DELETE", f"/keys/{key['id']}")
    result = run(env).assert_ok()
    assert result.total("changed") == 1
    assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(before["data"]["identity.pub"])]
    assert read_secret(api)["resource_version"] == before["resource_version"], "the Secret is not rewritten"


def test_secret_write_refused_after_the_add_keeps_access_and_the_next_run_cleans_up(
    api: client.ApiClient, stack_ansible_env: dict[str, str]
) -> None:
    """The crash in the middle: the new key is on GitHub, the Secret could not switch to it."""
    env = stack_ansible_env
    old = converged(api, env)
    with refused_secret_writes(api, f"object.metadata.name != '{SECRET}' || request.dryRun == true"):
        failed = run(env, flux_regenerate="always")
        assert failed.returncode != 0
        assert "was added to biomage-org/iac" in failed.output and "Nothing was deleted" in failed.output
        assert read_secret(api)["data"] == old["data"], "the Secret still holds the old key"
        assert len(keys(env)) == 2, "old and new key are both registered: Flux keeps its access"
        assert deploy_keys.normalize(old["data"]["identity.pub"]) in [k["key"] for k in keys(env)]

    recovered = run(env).assert_ok()  # regenerate=never
    assert recovered.total("changed") == 1
    assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(old["data"]["identity.pub"])], "unused key removed"
    assert read_secret(api)["resource_version"] == old["resource_version"]
    assert run(env).assert_ok().total("changed") == 0


def test_secret_write_refused_up_front_changes_nothing_on_github(
    api: client.ApiClient, stack_ansible_env: dict[str, str]
) -> None:
    """Validate before mutate: the Secret write is dry-run before the new key goes to GitHub."""
    env = stack_ansible_env
    old = converged(api, env)
    with refused_secret_writes(api, f"object.metadata.name != '{SECRET}'"):
        failed = run(env, flux_regenerate="always")
    assert failed.returncode != 0 and "(dry run)" in failed.output and "refused by the test" in failed.output
    assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(old["data"]["identity.pub"])]
    assert read_secret(api)["resource_version"] == old["resource_version"]


@pytest.mark.parametrize("status", [500, 502])
def test_a_lost_answer_to_the_deploy_key_post_is_read_back_and_the_rotation_completes(
    api: client.ApiClient, stack_ansible_env: dict[str, str], status: int
) -> None:
    """GitHub registers the new key and its answer is lost (issue 15): the role reads the keys back,
    counts the key as registered (no retry, no 422 "key is already in use", no second key) and switches
    the Secret to it."""
    env = stack_ansible_env
    old = converged(api, env)
    fault = {"method": "POST", "path": "/repos/biomage-org/iac/keys", "status": status, "after": True}
    token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    request = urllib.request.Request(
        f"{env['GITHUB_API_URL']}/_standin/faults",
        method="POST",
        data=json.dumps(fault).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
    rotated = run(env, flux_regenerate="always").assert_ok()
    output = " ".join(rotated.output.split())
    assert f"GitHub answered {status} to POST" in output and "took effect: counted as done" in output
    assert "already in use" not in output and "Nothing was changed" not in output
    secret = read_secret(api)
    assert secret["data"]["identity"] != old["data"]["identity"], "the Secret switched to the new key"
    assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(secret["data"]["identity.pub"])], "one key"
    assert run(env).assert_ok().total("changed") == 0


def test_secret_without_a_usable_key_is_refused_then_replaced_on_request(
    api: client.ApiClient, stack_ansible_env: dict[str, str]
) -> None:
    env = stack_ansible_env
    converged(api, env)
    core = client.CoreV1Api(api)
    secret = core.read_namespaced_secret(SECRET, NAMESPACE)
    secret.data = {"username": base64.b64encode(b"git").decode(), "password": base64.b64encode(b"x").decode()}
    core.replace_namespaced_secret(SECRET, NAMESPACE, secret)
    registered = keys(env)

    refused = run(env)
    assert refused.returncode != 0 and "regenerate=always" in refused.output and "nothing was changed" in refused.output
    assert keys(env) == registered

    replaced = run(env, flux_regenerate="always").assert_ok()
    assert replaced.total("changed") >= 1
    new = read_secret(api)
    assert set(new["data"]) == {"identity", "identity.pub", "known_hosts"}
    assert [k["key"] for k in keys(env)] == [deploy_keys.normalize(new["data"]["identity.pub"])]


# -- the controllers (cloud environments) -----------------------------------------------------------
def install_manifest(images: list[str]) -> str:
    """Shaped like a Flux release's install.yaml: namespace, service accounts, one Deployment a controller."""
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    for image in images:
        name = image.split("/")[-1].split(":")[0]
        labels = {"app": name}
        docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}})
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": name,
                            "containers": [{"name": "manager", "image": f"images.example/{image}"}],
                        },
                    },
                },
            }
        )
    return yaml.safe_dump_all(docs)


@contextmanager
def served(files: dict[str, str]) -> Iterator[str]:
    """A loopback HTTP server of ``files``; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path, "").encode()
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_controllers_from_the_pinned_manifest(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> None:
    """The cloud path (flux_install_controllers: true) with a manifest served on loopback: checked, applied,
    idempotent; a manifest running other images is refused before anything is applied."""
    env = stack_ansible_env
    converged(api, env)
    pinned = ROLE_DEFAULTS["flux_controller_images"]
    apps = client.AppsV1Api(api)
    other = [image.replace("source-controller:v1.9.6", "source-controller:v1.8.0") for image in pinned]
    with served({"/install.yaml": install_manifest(pinned), "/other.yaml": install_manifest(other)}) as url:
        extra = {"flux_install_controllers": True, "flux_controllers_wait": False}
        try:
            refused = run(env, flux_install_manifest_url=f"{url}/other.yaml", **extra)
            assert refused.returncode != 0
            assert "fluxcd/source-controller:v1.8.0" in refused.output and "Nothing was applied" in refused.output
            assert apps.list_namespaced_deployment(NAMESPACE).items == []

            planned = run(env, check=True, flux_install_manifest_url=f"{url}/install.yaml", **extra).assert_ok()
            assert planned.total("changed") == 1 and apps.list_namespaced_deployment(NAMESPACE).items == []

            first = run(env, flux_install_manifest_url=f"{url}/install.yaml", **extra).assert_ok()
            assert first.total("changed") == 1, "only the controllers were missing"
            images = sorted(
                d.spec.template.spec.containers[0].image for d in apps.list_namespaced_deployment(NAMESPACE).items
            )
            assert images == sorted(f"images.example/{image}" for image in pinned)

            again = run(env, flux_install_manifest_url=f"{url}/install.yaml", **extra).assert_ok()
            assert again.total("changed") == 0
            check = run(env, check=True, flux_install_manifest_url=f"{url}/install.yaml", **extra).assert_ok()
            assert check.total("changed") == 0
        finally:
            for deployment in apps.list_namespaced_deployment(NAMESPACE).items:
                apps.delete_namespaced_deployment(deployment.metadata.name, NAMESPACE)
            for image in pinned:
                name = image.split("/")[-1].split(":")[0]
                try:
                    client.CoreV1Api(api).delete_namespaced_service_account(name, NAMESPACE)
                except ApiException as exc:
                    assert exc.status == 404
