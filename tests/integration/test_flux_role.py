"""biomage.iac.flux through playbooks/base.yml against the session's stack: the Secret and deploy key
(on the GitHub stand-in), the GitRepository and Kustomization accepted by the real Flux CRDs,
idempotence, honest check mode, rotation on demand, failures in the middle of a rotation (forced by
a ValidatingAdmissionPolicy of the real API server), and no secret in the output."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
GITHUB_HOSTS = "\n".join(ROLE_DEFAULTS["flux_github_known_hosts"]) + "\n"


def stand_in_hosts(env: dict[str, str]) -> str:
    """The known_hosts the development inventory pins: the stack's SSH stand-in's one line (not GitHub's)."""
    return Path(env["GITHUB_SSH_KNOWN_HOSTS_FILE"]).read_text().strip() + "\n"


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


def run(
    env: dict[str, str], check: bool = False, args: list[str] | None = None, cluster: bool = False, **extra: object
) -> PlaybookResult:
    """base.yml's flux role. The first runs (``cluster``) take the operator's whole path, eks_cluster first, whose
    fact eks_cluster_kubeconfig the flux role reads; the others skip eks_cluster (its own tests prove it, and it
    is a fifth of a run) and give the flux role that same kubeconfig, the stack's, as flux_kubeconfig."""
    if not cluster:
        extra = {"flux_kubeconfig": env["KUBECONFIG"], **extra}
    skipped = OTHER_ADDONS if cluster else [OTHER_ADDONS[0], f"{OTHER_ADDONS[1]},eks_cluster"]
    return run_playbook(
        PLAYBOOK, INVENTORY, env=env, check=check, diff=True, extra_vars=extra or None, args=skipped + (args or [])
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
    core = client.CoreV1Api(api)
    try:
        deadline = time.monotonic() + 30
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
        deadline = time.monotonic() + 30
        while True:  # and shortly after it is deleted, it stops applying: the same no-op update passes
            try:
                core.replace_namespaced_secret(SECRET, NAMESPACE, core.read_namespaced_secret(SECRET, NAMESPACE))
                break
            except ApiException as exc:
                assert "refused by the test" in exc.body, exc.body
            assert time.monotonic() < deadline, "the admission policy still applied 30 s after its deletion"
            time.sleep(0.5)


# -- tests ------------------------------------------------------------------------------------------
@dataclass
class FirstRuns:
    """From nothing: the plan, the first apply, a second run and a plan of the applied state, with what the
    cluster and GitHub held after each (read at once, as the runs left them)."""

    plan: PlaybookResult
    after_plan: tuple[dict | None, list[dict], dict | None]  # the Secret, the keys, the GitRepository
    first: PlaybookResult
    secret: dict | None
    registered: list[dict]
    source: dict | None
    kustomization: dict | None
    deployments: list[client.V1Deployment]
    pods: list[client.V1Pod]
    second: PlaybookResult
    check: PlaybookResult
    after_check: dict | None


@pytest.fixture(scope="module")
def first_runs(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> FirstRuns:
    """The module's converged state, made once from nothing (the tests below start from it and leave it so)."""
    env = stack_ansible_env
    reset(api, env)
    plan = run(env, check=True, cluster=True).assert_ok()
    after_plan = (read_secret(api), keys(env), get_object(api, SOURCE))
    first = run(env, cluster=True).assert_ok()
    secret, registered = read_secret(api), keys(env)
    source, kustomization = get_object(api, SOURCE), get_object(api, KUSTOMIZATION)
    deployments = client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items
    pods = client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items
    second = run(env, cluster=True).assert_ok()
    check = run(env, check=True, cluster=True).assert_ok()
    return FirstRuns(
        plan, after_plan, first, secret, registered, source, kustomization, deployments, pods, second, check,
        read_secret(api),
    )  # fmt: skip


def test_first_plan_apply_then_nothing_to_do(first_runs: FirstRuns, stack_ansible_env: dict[str, str]) -> None:
    env, runs = stack_ansible_env, first_runs

    plan = runs.plan
    assert plan.total("changed") >= 2 and "(a new ed25519 key)" in plan.stdout
    secret_after_plan, keys_after_plan, source_after_plan = runs.after_plan
    assert secret_after_plan is None and keys_after_plan == [] and source_after_plan is None, (
        "check mode changed nothing"
    )

    first = runs.first
    assert first.total("changed") >= 2
    secret = runs.secret
    assert secret is not None and set(secret["data"]) == {"identity", "identity.pub", "known_hosts"}
    fingerprint = fingerprint_of(secret)  # a valid OpenSSH ed25519 private key
    assert secret["data"]["identity.pub"].startswith("ssh-ed25519 ")
    assert deploy_keys.fingerprint(secret["data"]["identity.pub"]) == fingerprint
    assert secret["data"]["known_hosts"] == stand_in_hosts(env) != GITHUB_HOSTS
    registered = runs.registered
    assert [(k["key"], k["read_only"]) for k in registered] == [
        (deploy_keys.normalize(secret["data"]["identity.pub"]), True)
    ]
    summary = " ".join(first.stdout.split("Summarise what was converged", 1)[1].split())
    assert f"deploy key {TITLE} {fingerprint}" in summary, "the summary names the key in use"

    source, kustomization = runs.source, runs.kustomization
    assert source["spec"]["url"] == f"{env['GITHUB_SSH_URL']}/biomage-org/iac", "the stand-in's SSH server"
    assert source["spec"]["ref"] == {"branch": "main"} and source["spec"]["secretRef"] == {"name": SECRET}
    assert kustomization["spec"]["path"] == "./releases/development" and kustomization["spec"]["prune"] is True
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert (REPO_ROOT / "releases/development").is_dir(), "the folder Flux syncs exists"

    second = runs.second
    assert second.total("changed") == 0, second.stdout[-4000:]
    check = runs.check
    assert check.total("changed") == 0, check.stdout[-4000:]
    assert runs.after_check["resource_version"] == secret["resource_version"]


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
        assert new["data"]["known_hosts"] == stand_in_hosts(env)

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


# -- the controllers: the install manifest, in every environment ------------------------------------
def stack_manifest(env: dict[str, str]) -> list[dict]:
    """The objects of the install manifest the stack serves (the development inventory's)."""
    with urllib.request.urlopen(env["FLUX_INSTALL_MANIFEST_URL"], timeout=10) as resp:
        return [o for o in yaml.safe_load_all(resp.read()) if o]


def with_deployment(objects: list[dict], name: str, image: str) -> list[dict]:
    """``objects`` plus a Deployment ``name`` running ``image`` (a controller a future release may add)."""
    labels = {"app": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "manager", "image": image}]},
            },
        },
    }
    return [*objects, deployment]


def manifest_vars(url: str, text: str) -> dict[str, str]:
    return {"flux_install_manifest_url": url, "flux_install_manifest_sha256": hashlib.sha256(text.encode()).hexdigest()}


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


def test_the_install_manifest_is_applied_in_development_and_its_controllers_run_as_simulated_pods(
    first_runs: FirstRuns, stack_ansible_env: dict[str, str]
) -> None:
    """Development takes the cloud's path: the stack's manifest (with source-watcher) is checked and applied, and
    its Deployments become available on KWOK's nodes (the real controllers run beside the stack). The first apply
    installed them (flux_controllers_wait is true by default): what it printed, and the Deployments and Pods read
    as soon as it returned."""
    env, runs = stack_ansible_env, first_runs
    objects = stack_manifest(env)
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert "source-watcher" in names, "Flux 2.9's manifest runs source-watcher"

    result = runs.first
    assert "Flux v2.9.6 runs ghcr.io/fluxcd/" in result.stdout and "ghcr.io/fluxcd/source-watcher:" in result.stdout
    deployments = runs.deployments
    assert {d.metadata.name for d in deployments} == names
    assert all(d.status.available_replicas == d.spec.replicas for d in deployments), "waited until available"
    pods = runs.pods
    assert pods and all(p.spec.node_name.startswith("kwok-node-") for p in pods), "simulated Pods"
    assert runs.second.total("changed") == 0


def test_a_manifest_with_a_new_controller_passes_and_foreign_or_unpinned_ones_are_refused(
    api: client.ApiClient, stack_ansible_env: dict[str, str]
) -> None:
    """No hand-kept image list: any controller of Flux's registry passes (source-watcher, a future one); an image
    from elsewhere, a missing controller, a wrong or missing digest stop the run before anything is applied."""
    env = stack_ansible_env
    converged(api, env)
    objects = stack_manifest(env)
    apps = client.AppsV1Api(api)
    future = yaml.safe_dump_all(
        with_deployment(objects, "future-controller", "ghcr.io/fluxcd/future-controller:v0.1.0")
    )
    foreign = yaml.safe_dump_all(with_deployment(objects, "future-controller", "docker.io/someone/controller:v1"))
    no_helm = yaml.safe_dump_all([o for o in objects if o["metadata"]["name"] != "helm-controller"])
    files = {"/future.yaml": future, "/foreign.yaml": foreign, "/no-helm.yaml": no_helm}
    with served(files) as url:
        try:
            for path, expected in (
                ("/foreign.yaml", "runs docker.io/someone/controller:v1, not only images of ghcr.io/fluxcd/"),
                ("/no-helm.yaml", "has no Deployment of helm-controller (flux_required_controllers)"),
            ):
                refused = run(env, **manifest_vars(f"{url}{path}", files[path]))
                assert (
                    refused.returncode != 0 and expected in refused.output and "Nothing was applied" in refused.output
                )
            wrong = {**manifest_vars(f"{url}/future.yaml", future), "flux_install_manifest_sha256": "0" * 64}
            refused = run(env, **wrong)
            assert refused.returncode != 0 and f"not the pinned {'0' * 64}" in refused.output
            refused = run(env, flux_install_manifest_url=f"{url}/future.yaml", flux_install_manifest_sha256="")
            assert refused.returncode != 0 and "flux_install_manifest_sha256 is not set" in refused.output
            assert "future-controller" not in [
                d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items
            ]

            planned = run(env, check=True, **manifest_vars(f"{url}/future.yaml", future)).assert_ok()
            assert planned.total("changed") == 1
            assert "future-controller" not in [
                d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items
            ]
            applied = run(env, **manifest_vars(f"{url}/future.yaml", future)).assert_ok()
            assert applied.total("changed") == 1 and "ghcr.io/fluxcd/future-controller:v0.1.0" in applied.stdout
            assert apps.read_namespaced_deployment("future-controller", NAMESPACE)
        finally:
            try:
                apps.delete_namespaced_deployment("future-controller", NAMESPACE)
            except ApiException as exc:
                assert exc.status == 404
