"""The GitOps loop for real on the session's stack (issue 10): the flux role converges development, a
HelmRelease of charts/nodejs committed to releases/development/ in the GitHub stand-in's repository is fetched
over SSH with the role's deploy key by source-controller, applied by kustomize-controller (as the tenant
account), installed by helm-controller; its Pods become Ready on KWOK's nodes. A changed value is upgraded, a
removed file uninstalled. Then: rotation under live sync, a GitHub 500 in the middle of a rotation, and bad input
(a chart that does not exist, a deploy key deleted behind the role's back)."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.lib import github as gh
from tests.lib.ansible_run import REPO_ROOT, PlaybookResult, run_playbook
from tests.lib.releases import dump, dump_old_layout, filled_release
from tests.lib.tags import CLUSTER_ADDONS

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/base.yml"
OTHER_ADDONS = ["--skip-tags", ",".join(tag for tag in CLUSTER_ADDONS if tag != "flux")]
INVENTORY = "inventories/development"
NAMESPACE = SECRET = "flux-system"
TITLE = "flux-biomage-development"
REF = "gitops"  # the release's namespace ui-gitops, as a service's CI would name a sandbox
APPS = f"ui-{REF}"
RELEASE_FILE = "releases/development/ui-gitops.yaml"
BAD_FILE = "releases/development/ui-badchart.yaml"
IN_API_FILE = "releases/development/ui-in-api.yaml"  # a ui release in an api namespace, past the checker
OLD_LAYOUT_FILE = "releases/development/ui-oldlayout.yaml"  # no release-deployer account (before the lockdown)
SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
HELM_RELEASE = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
PROBE = "tests/fixtures/playbooks/flux_reconcile.yml"


# -- helpers ----------------------------------------------------------------------------------------
def role(env: dict[str, str], **extra: object) -> PlaybookResult:
    """The flux role through base.yml, proving the branch's latest commit (flux_sync_force)."""
    extra = {"flux_sync_force": True, **extra}
    return run_playbook(PLAYBOOK, INVENTORY, env=env, extra_vars=extra, args=OTHER_ADDONS)


def reconcile(env: dict[str, str], timeout: int = 150) -> PlaybookResult:
    """The flux role's wait alone (biomage.iac.flux_reconcile, forced): Flux fetches the latest commit over SSH and
    applies it; the loop's steps use it instead of a whole base.yml run, which the fixture made already."""
    probe = {
        "probe_namespace": NAMESPACE,
        "probe_source_kind": "GitRepository",
        "probe_source_name": "flux-system",
        "probe_kustomization": "releases",
        "probe_force": True,
        "probe_timeout": timeout,
        "probe_deploy_key_title": TITLE,
    }
    return run_playbook(PROBE, env=env, extra_vars=probe)


def release_documents(replicas: int, ref: str = REF, chart: str = "./charts/nodejs") -> list[dict]:
    """The example's Namespace and HelmRelease as a service's CI fills them, with a fixed replica count."""
    namespace, helm_release = filled_release("development", ref=ref, domain="dev.biomage.test")
    values = helm_release["spec"]["values"]
    values["hpa"] = {"enabled": False}
    values["replicaCount"] = replicas
    helm_release["spec"]["chart"]["spec"]["chart"] = chart
    return [namespace, helm_release]


def release(replicas: int, ref: str = REF, chart: str = "./charts/nodejs") -> str:
    """A release file as the release step writes it (docs/examples/ui.flux.ci filled, with helm-controller's
    account release-deployer), with a fixed replica count."""
    return dump(release_documents(replicas, ref, chart))


def helm_release_of(api: client.ApiClient, namespace: str = APPS) -> dict | None:
    group, version, plural = HELM_RELEASE
    try:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, namespace, plural, namespace)
    except ApiException as exc:
        assert exc.status == 404, exc.body
        return None


def ready(obj: dict | None) -> str | None:
    conditions = {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}
    return (conditions.get("Ready") or {}).get("status")


def source(api: client.ApiClient) -> dict:
    group, version, plural = SOURCE
    return client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, NAMESPACE, plural, "flux-system")


def ready_pods(api: client.ApiClient, namespace: str = APPS) -> list[client.V1Pod]:
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]


def wait_for(what: str, probe, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.5)


def identity_file(api: client.ApiClient, directory: Path, name: str) -> Path:
    """The Secret's private key as a 0600 file, for OpenSSH."""
    secret = client.CoreV1Api(api).read_namespaced_secret(SECRET, NAMESPACE)
    path = directory / name
    path.write_bytes(base64.b64decode(secret.data["identity"]))
    path.chmod(0o600)
    return path


def on_main(env: dict[str, str], path: str) -> bool:
    status, _body = gh.call(env, "GET", f"/repos/{gh.OWNER}/iac/contents/{path}")
    return status == 200


def fetches(env: dict[str, str], key: Path) -> bool:
    return gh.git(env, key, "ls-remote", gh.ssh_url(env)).returncode == 0


@contextmanager
def watched_source(api: client.ApiClient) -> Iterator[list[str]]:
    """A second GitRepository with the role's URL and Secret, asked to fetch every second while the body runs
    (its own requests: the role's wait follows its own on flux-system/flux-system); yields the failures
    source-controller reported (Ready=False of a handled request), filled in when the body ends."""
    group, version, plural = SOURCE
    custom = client.CustomObjectsApi(api)
    spec = source(api)["spec"]
    body = {
        "apiVersion": f"{group}/{version}",
        "kind": "GitRepository",
        "metadata": {"name": "rotation-watch", "namespace": NAMESPACE},
        "spec": {"url": spec["url"], "ref": spec["ref"], "secretRef": spec["secretRef"], "interval": "10m"},
    }
    custom.create_namespaced_custom_object(group, version, NAMESPACE, plural, body)
    failures: list[str] = []
    handled: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            token = f"{time.time():.6f}"
            request = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}
            custom.patch_namespaced_custom_object(group, version, NAMESPACE, plural, "rotation-watch", request)
            stop.wait(1.0)
            status = (
                custom.get_namespaced_custom_object(group, version, NAMESPACE, plural, "rotation-watch").get("status")
                or {}
            )
            answered = status.get("lastHandledReconcileAt")
            state = ready({"status": status})
            # Ready=Unknown: source-controller is still building that request's artifact; judged once settled
            if answered and answered not in handled and state in ("True", "False"):
                handled.add(answered)
                if state == "False":
                    failures.append(next(c.get("message") for c in status["conditions"] if c["type"] == "Ready"))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join(10)
        custom.delete_namespaced_custom_object(group, version, NAMESPACE, plural, "rotation-watch")
    assert len(handled) >= 3, f"source-controller handled {len(handled)} fetch request(s) while watched"


# kustomize-controller health-checks what it applied until the Kustomization's timeout (5m by default), and it reads
# a changed timeout only once that is over; a change of the Kustomization's spec also makes it reconcile at once,
# with the artifact it has. The tests of refused releases therefore set this short timeout before the refused
# revision exists, and set the role's own back only once the fix is applied.
SHORT_TIMEOUT = {"flux_kustomization_timeout": "30s"}


def restore(env: dict[str, str]) -> None:
    """Once a refused release file is removed: proves the fix with the short timeout still set (no spec change, so
    the removal is what kustomize-controller applies next), then runs the role with its own timeout again."""
    reconcile(env).assert_ok()
    role(env).assert_ok()  # pruned, Ready again, and the Kustomization's own timeout back


@pytest.fixture(scope="module")
def api(kube_api: client.ApiClient) -> client.ApiClient:
    return kube_api


@pytest.fixture(scope="module")
def synced(api: client.ApiClient, stack_ansible_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Development converged by the flux role and synced; the release files this module commits removed after."""
    env = stack_ansible_env
    role(env).assert_ok()
    try:
        yield env
    finally:
        files = (RELEASE_FILE, BAD_FILE, IN_API_FILE, OLD_LAYOUT_FILE)
        present = {path: None for path in files if on_main(env, path)}
        if present:
            gh.commit_files(env, present, message="test: remove the gitops releases")
            reconcile(env)


# -- tests ------------------------------------------------------------------------------------------
def test_a_committed_release_is_installed_upgraded_and_pruned_by_flux(
    api: client.ApiClient, synced: dict[str, str]
) -> None:
    env = synced
    started = time.monotonic()
    commit = gh.commit_files(env, {RELEASE_FILE: release(1)}, message="release ui-gitops")
    first = reconcile(env).assert_ok()
    assert f"applied main@sha1:{commit} of main@sha1:{commit}" in first.stdout, "the wait proved the new commit"
    assert ready(helm_release_of(api)) == "True"
    pods = ready_pods(api)
    assert len(pods) == 1 and pods[0].spec.node_name.startswith("kwok-node-"), "a Pod Ready on a simulated node"
    artifact = source(api)["status"]["artifact"]["revision"]
    assert artifact == f"main@sha1:{commit}", "fetched over SSH from the stand-in"
    shown = subprocess.run(  # what make demo prints at its end
        [sys.executable, "-m", "devstack", "releases", "--state-dir", env["BIOMAGE_DEVSTACK_DIR"]],
        cwd=REPO_ROOT / "tools", capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert f"{APPS}/{APPS}  Ready=True  nodejs@" in shown and "1/1 Pods ready" in shown, shown
    assert f"GitRepository flux-system/flux-system: Ready=True main@sha1:{commit}" in shown, shown

    gh.commit_files(env, {RELEASE_FILE: release(2)}, message="ui-gitops: 2 replicas")
    reconcile(env).assert_ok()
    deployment = client.AppsV1Api(api).read_namespaced_deployment("ui", APPS)
    assert deployment.spec.replicas == 2 and deployment.status.ready_replicas == 2, "upgraded"
    # upgraded (once for the values, and once more when the chart's artifact revision, part of its version
    # with reconcileStrategy Revision, changed after the values)
    assert helm_release_of(api)["status"]["history"][0]["version"] >= 2

    gh.commit_files(env, {RELEASE_FILE: None}, message="remove ui-gitops")
    reconcile(env).assert_ok()
    namespaces = client.CoreV1Api(api)

    def gone() -> bool:
        try:
            namespaces.read_namespace(APPS)
        except ApiException as exc:
            assert exc.status == 404
            return True
        return False

    wait_for(f"namespace {APPS} pruned", gone, 90)
    elapsed = time.monotonic() - started
    print(f"install, upgrade and prune through Flux: {elapsed:.1f} s")
    assert elapsed < 180, "the whole loop under 3 minutes"


def test_rotation_keeps_flux_syncing_and_the_old_key_is_refused(
    api: client.ApiClient, synced: dict[str, str], tmp_path: Path
) -> None:
    env = synced
    old_key = identity_file(api, tmp_path, "old")
    assert fetches(env, old_key)
    with watched_source(api) as failures:
        rotated = role(env, flux_regenerate="always").assert_ok()
        time.sleep(2)  # a fetch or two after the rotation
    summary = " ".join(rotated.stdout.split("Summarise what was converged", 1)[1].split())
    assert "synced main@sha1:" in summary, "the role waited until Flux synced with the new key"
    assert failures == [], "source-controller never failed to fetch during the rotation"
    new_key = identity_file(api, tmp_path, "new")
    assert new_key.read_bytes() != old_key.read_bytes()
    assert fetches(env, new_key)
    assert not fetches(env, old_key), "the old key is refused at once"


def test_a_github_500_in_the_middle_of_a_rotation_leaves_flux_syncing(
    api: client.ApiClient, synced: dict[str, str], tmp_path: Path
) -> None:
    """The old key's deletion fails (after the new key was added and the Secret switched): the run fails, Flux
    keeps syncing with the new key, the next ordinary run deletes the old key."""
    env = synced
    old_key = identity_file(api, tmp_path, "old")
    status, fault = gh.call(
        env,
        "POST",
        "/_standin/faults",
        {"method": "DELETE", "path": r"/repos/[^/]+/iac/keys/\d+", "status": 500, "count": 0},
    )
    assert status in (200, 201), fault
    try:
        with watched_source(api) as failures:
            failed = role(env, flux_regenerate="always")
            time.sleep(4)  # fetches with the Secret's new key while the old one is still registered
    finally:
        gh.call(env, "DELETE", "/_standin/faults")
    assert failed.returncode != 0 and "500" in failed.output, failed.output[-3000:]
    assert failures == [], "Flux kept fetching"
    new_key = identity_file(api, tmp_path, "new")
    assert new_key.read_bytes() != old_key.read_bytes(), "the Secret switched to the new key"
    assert fetches(env, new_key) and fetches(env, old_key), "both registered until the next run"

    role(env).assert_ok()
    assert fetches(env, new_key) and not fetches(env, old_key), "the next run deleted the old key"
    assert len([k for k in gh.call(env, "GET", "/repos/biomage-org/iac/keys")[1] if k["title"] == TITLE]) == 1


def test_a_release_naming_a_missing_chart_fails_the_role_naming_the_release_and_the_fix(
    api: client.ApiClient, synced: dict[str, str]
) -> None:
    env = synced
    # set before the bad revision exists (on a loaded machine source-controller can fetch the commit before the
    # role's run reaches the Kustomization), so that the failure and the fix are applied within the test's budget
    role(env, **SHORT_TIMEOUT).assert_ok()
    gh.commit_files(env, {BAD_FILE: release(1, ref="badchart", chart="./charts/missing")}, message="bad chart")
    try:
        started = time.monotonic()
        failed = role(env, **SHORT_TIMEOUT)
        assert failed.returncode != 0
        output = " ".join(failed.output.split())
        assert "HelmRelease ui-badchart/ui-badchart (applied by Kustomization flux-system/releases" in output, output
        assert "Fix: the chart ./charts/missing of HelmRelease ui-badchart/ui-badchart cannot be found" in output
        assert time.monotonic() - started < 150, "reported at once, not at the Kustomization's timeout"
    finally:
        gh.commit_files(env, {BAD_FILE: None}, message="remove the bad chart")
    restore(env)


def test_a_deploy_key_deleted_behind_the_roles_back_fails_the_wait_then_the_role_adds_it_again(
    api: client.ApiClient, synced: dict[str, str], tmp_path: Path
) -> None:
    env = synced
    key = identity_file(api, tmp_path, "current")
    for deploy_key in gh.call(env, "GET", "/repos/biomage-org/iac/keys")[1]:
        if deploy_key["title"] == TITLE:
            gh.call(env, "DELETE", f"/repos/biomage-org/iac/keys/{deploy_key['id']}")
    assert not fetches(env, key), "a deleted key is refused at once"

    refused = reconcile(env, timeout=60)
    assert refused.returncode != 0
    output = " ".join(refused.output.split())
    assert "GitRepository flux-system/flux-system failed (source-controller)" in output, output
    assert f"deploy key {TITLE}" in output and "Fix:" in output, output

    role(env).assert_ok()  # adds the Secret's key again, and proves the sync
    assert fetches(env, key)


# -- Flux's multi-tenancy lockdown (docs/tenants.md) ----------------------------------------------------------------
def delete_namespace(api: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api).delete_namespace(name)
    except ApiException as exc:
        assert exc.status == 404, exc.body


def test_a_ui_release_committed_into_an_api_namespace_is_refused_through_flux(
    api: client.ApiClient, synced: dict[str, str]
) -> None:
    """Past the checker (a push that skipped it): kustomize-controller applies as flux-releases, and the API
    server's admission policy refuses the HelmRelease, so the Kustomization is not Ready and names the policy."""
    env = synced
    namespace, helm_release = release_documents(1, ref="lockdown")
    namespace["metadata"]["name"] = "api-lockdown"
    helm_release["metadata"]["namespace"] = "api-lockdown"
    gh.commit_files(env, {IN_API_FILE: dump([namespace, helm_release])}, message="ui release in an api namespace")
    try:
        started = time.monotonic()
        refused = reconcile(env, timeout=90)
        assert refused.returncode != 0
        output = " ".join(refused.output.split())
        assert "Kustomization flux-system/releases failed (kustomize-controller)" in output, output
        assert "HelmRelease ui-lockdown of service ui may not live in namespace api-lockdown" in output, output
        assert "(RBAC tenant policy biomage-release-tenants)" in output
        assert helm_release_of(api, "api-lockdown") is None, "nothing of it was installed"
        print(f"refused through Flux: {time.monotonic() - started:.1f} s")
    finally:
        gh.commit_files(env, {IN_API_FILE: None}, message="remove the ui release in an api namespace")
        try:
            reconcile(env).assert_ok()
        finally:
            # applied before the refused HelmRelease (namespaces go first), never in the inventory: not pruned
            delete_namespace(api, "api-lockdown")


def test_a_release_file_without_the_deployer_account_is_refused_by_rbac_and_named_by_the_wait(
    api: client.ApiClient, synced: dict[str, str]
) -> None:
    """A release file of the layout before the lockdown: helm-controller installs it as release-deployer of its
    namespace, which has no RoleBinding there, so the API server refuses it; the HelmRelease is not Ready with
    the RBAC reason, and the role's wait says so at once with the fix."""
    env = synced
    role(env, **SHORT_TIMEOUT).assert_ok()  # as for the missing chart: before the refused revision exists
    gh.commit_files(
        env, {OLD_LAYOUT_FILE: dump_old_layout(release_documents(1, ref="oldlayout"))}, message="an older release"
    )
    try:
        started = time.monotonic()
        failed = role(env, **SHORT_TIMEOUT)
        assert failed.returncode != 0
        output = " ".join(failed.output.split())
        assert "HelmRelease ui-oldlayout/ui-oldlayout (applied by Kustomization flux-system/releases" in output, output
        assert "forbidden: User" in output and "system:serviceaccount:ui-oldlayout:release-deployer" in output, output
        assert (
            "Fix: HelmRelease ui-oldlayout/ui-oldlayout is installed as the service account release-deployer" in output
        )
        assert "run the release step again for it" in output
        conditions = {c["type"]: c for c in helm_release_of(api, "ui-oldlayout")["status"]["conditions"]}
        assert conditions["Ready"]["status"] == "False" and "forbidden" in conditions["Ready"]["message"]
        assert ready_pods(api, "ui-oldlayout") == [], "nothing installed"
        assert time.monotonic() - started < 150, "reported at once, not at the Kustomization's timeout"
    finally:
        gh.commit_files(env, {OLD_LAYOUT_FILE: None}, message="remove the older release")
    restore(env)
