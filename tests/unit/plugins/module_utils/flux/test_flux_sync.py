"""The sync wait of biomage.iac.flux_reconcile against a scripted cluster: when it requests a
reconciliation, what it waits for (the request handled, the current generation, the source's
revision applied), and that failures end the wait at once with the controller's message and a fix."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.flux import sync as fs

NS = "flux-system"
REV1, REV2 = "main@sha1:1111111111111111111111111111111111111111", "main@sha1:2222222222222222222222222222222222222222"
TOKEN = "2026-12-02T10:00:00.000000Z"


def git(ready="True", reason="Succeeded", message="stored artifact", revision=REV1, handled=None, **extra):
    status = {
        "observedGeneration": extra.pop("observed", 1),
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}] if ready else [],
    }
    if revision:
        status["artifact"] = {"revision": revision}
    if handled:
        status["lastHandledReconcileAt"] = handled
    spec = {"url": "ssh://git@127.0.0.1:2222/biomage-org/iac", "ref": {"branch": "main"}, "secretRef": {"name": NS}}
    spec.update(extra.pop("spec", {}))
    return {"metadata": {"generation": extra.pop("generation", 1)}, "spec": spec, "status": status}


def ks(
    ready="True", reason="ReconciliationSucceeded", message="Applied revision", applied=REV1, attempted=REV1, **extra
):
    status = {
        "observedGeneration": extra.pop("observed", 1),
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}] if ready else [],
        "lastAppliedRevision": applied,
        "lastAttemptedRevision": attempted,
    }
    if extra.get("handled"):
        status["lastHandledReconcileAt"] = extra.pop("handled")
    if extra.get("step"):  # kustomize-controller's Reconciling condition: the step of the attempt it is at
        status["conditions"].append(
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": extra.pop("step")}
        )
    if "inventory" in extra:
        status["inventory"] = {"entries": [{"id": i, "v": "v1"} for i in extra.pop("inventory")]}
    spec = {"path": "./releases/development", "prune": True, **extra.pop("spec", {})}
    return {"metadata": {"generation": extra.pop("generation", 1)}, "spec": spec, "status": status}


class Cluster:
    """Scripted reads: each poll pops the next (source, kustomization) pair; the last one stays."""

    def __init__(self, *timeline):
        self.timeline = list(timeline)
        self.requests: list[tuple[str, str, str]] = []
        self.reads = 0

    def get(self, kind, namespace, name):
        pair = self.timeline[0]
        if kind in ("HelmRelease", "HelmChart"):
            return fs.observe(kind, pair[2].get(f"{kind} {namespace}/{name}"), namespace, name)
        obj = pair[1] if kind == "Kustomization" else pair[0]
        if kind == "Kustomization":
            self.reads += 1
            if len(self.timeline) > 1:
                self.timeline.pop(0)
        return fs.observe(kind, obj, namespace, name)

    def request(self, kind, namespace, name, token):
        self.requests.append((kind, name, token))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(cluster, **kwargs):
    clock = Clock()
    options = {"force": False, "timeout": 30, "poll": 1.0, "deploy_key_title": "flux-biomage-development"}
    options.update(kwargs)
    outcome = fs.sync(
        cluster, NS, "GitRepository", "flux-system", "releases", clock=clock, sleep=clock.sleep, now=lambda: TOKEN,
        **options,
    )  # fmt: skip
    return outcome, clock


def test_ready_objects_are_not_touched() -> None:
    cluster = Cluster((git(), ks()))
    outcome, clock = run(cluster)
    assert outcome.ready and outcome.requested == [] and cluster.requests == []
    assert outcome.source.revision == REV1 and clock.now == 0


def test_a_kustomization_failure_counts_only_when_asked_after_the_source_was_ready() -> None:
    """Asked together, the Kustomization could answer 'Source artifact not found' before the source has one:
    it is asked once the source is Ready, and only its answer to that is final."""
    early = ks(ready="False", reason="ArtifactFailed", message="Source artifact not found", attempted=None)
    cluster = Cluster(
        (git(ready=None, revision=None, observed=None), early),
        (git(ready=None, revision=None, observed=None), early),
        (git(handled=TOKEN), early),  # the source is Ready: now the Kustomization is asked
        (git(handled=TOKEN), ks(handled=TOKEN)),
    )
    outcome, _clock = run(cluster)
    assert outcome.ready
    assert [request[0] for request in cluster.requests] == ["GitRepository", "Kustomization"]


def test_force_requests_both_and_waits_for_the_request_to_be_handled() -> None:
    cluster = Cluster(
        (git(), ks()),  # the first read, before the request
        (git(), ks()),  # ready, but the request is not handled yet: not proof
        (git(handled=TOKEN, revision=REV2), ks(handled=TOKEN)),  # a new commit; ks handled, with the old one
        (git(handled=TOKEN, revision=REV2), ks(handled=TOKEN, attempted=REV2, applied=REV2)),
    )
    outcome, clock = run(cluster, force=True)
    assert cluster.requests == [("GitRepository", "flux-system", TOKEN), ("Kustomization", "releases", TOKEN)]
    assert outcome.ready and outcome.kustomization.revision == REV2
    assert outcome.requested == ["GitRepository flux-system/flux-system", "Kustomization flux-system/releases"]
    assert clock.now == 1.0, "the Kustomization is asked as soon as the source is Ready"


def test_a_failed_fetch_from_before_the_request_is_not_taken_for_the_answer() -> None:
    refused = git(ready="False", reason="GitOperationFailed", message="ssh: handshake failed", revision=None)
    cluster = Cluster(
        (refused, ks(ready="False", reason="ArtifactFailed", attempted="")),
        (refused, ks(ready="False", reason="ArtifactFailed", attempted="")),
        (git(handled=TOKEN), ks(handled=TOKEN)),
    )
    outcome, _clock = run(cluster)
    assert outcome.ready
    assert [request[0] for request in cluster.requests] == ["GitRepository"], "the Kustomization had applied it already"


def test_a_refused_deploy_key_fails_at_once_with_the_controllers_message_and_the_fix() -> None:
    message = "failed to checkout and determine revision: unable to clone 'ssh://git@127.0.0.1:2222/biomage-org/iac': ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain"  # noqa: E501
    cluster = Cluster(
        (git(ready=None, revision=None, observed=None), ks(ready=None, observed=None, attempted=None)),
        (git(ready="False", reason="GitOperationFailed", message=message, revision=None, handled=TOKEN), ks()),
    )
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster)
    text = str(failure.value)
    assert text.startswith("GitRepository flux-system/flux-system failed (source-controller): GitOperationFailed: ")
    assert "unable to authenticate" in text
    assert "Fix: the Git host refuses Flux's key: check that the deploy key flux-biomage-development" in text
    assert "Secret flux-system/flux-system" in text
    assert failure.value.details["waited"] == 0.0, "the first read after the request ends the wait"


def test_a_missing_releases_folder_names_the_path_the_branch_and_the_fix() -> None:
    message = "kustomization path not found: stat /tmp/kustomization-1/releases/development: no such file or directory"
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None)),
        (
            git(),
            ks(ready="False", reason="ArtifactFailed", message=message, attempted=REV1, applied=None, handled=TOKEN),
        ),
    )
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster)
    text = str(failure.value)
    assert (
        "Kustomization flux-system/releases failed (kustomize-controller): ArtifactFailed: kustomization path" in text
    )
    assert f"Fix: ./releases/development does not exist in the revision {REV1}: commit it" in text
    assert "to the branch main" in text


def test_a_failed_attempt_is_judged_by_its_ready_conditions_generation() -> None:
    """kustomize-controller leaves status.observedGeneration at -1 when an attempt fails; the Ready condition
    carries the generation it is about."""
    failing = ks(ready="False", reason="HealthCheckFailed", message="health check failed", observed=-1, handled=TOKEN)
    failing["status"]["conditions"][0]["observedGeneration"] = 1
    cluster = Cluster((git(), ks(ready=None, observed=None, attempted=None)), (git(), failing))
    with pytest.raises(fs.FluxSyncError, match=r"HealthCheckFailed: health check failed\. Fix: a workload applied"):
        run(cluster)


def flux_object(ready="False", reason="Progressing", message="", generation=1, observed=1, stalled=False, **status):
    conditions = [
        {"type": "Ready", "status": ready, "reason": reason, "message": message, "observedGeneration": observed}
    ]
    if stalled:
        conditions.append({"type": "Stalled", "status": "True", "reason": reason, "observedGeneration": observed})
    spec = {"chart": {"spec": {"chart": "./charts/missing", "sourceRef": {"kind": "GitRepository", "name": NS}}}}
    return {"metadata": {"generation": generation}, "spec": spec, "status": {"conditions": conditions, **status}}


IN_PROGRESS = {"ready": "Unknown", "reason": "Progressing", "message": "Reconciliation in progress"}


def step(name: str, revision: str = REV1) -> str:
    return f"{name} for revision {revision} with a timeout of 5m0s"


CHECKING = ks(
    **IN_PROGRESS,
    applied=None,
    handled=TOKEN,
    step=step("Running health checks"),
    inventory=["apps_ui_helm.toolkit.fluxcd.io_HelmRelease"],
)
MISSING_CHART = "invalid chart reference: stat /tmp/helmchart/source/charts/missing: no such file or directory"


def test_a_release_whose_chart_source_controller_gave_up_on_ends_the_wait_naming_it() -> None:
    """With health checks the Kustomization would only give up at its timeout: a HelmRelease it applied whose
    HelmChart is Stalled (the chart is not in the source) is reported at once, with helm-controller's message."""
    waiting = flux_object(
        reason="SourceNotReady",
        message="HelmChart 'flux-system/apps-ui' is not ready: latest generation of object has not been reconciled",
        helmChart="flux-system/apps-ui",
    )
    failing = flux_object(
        reason="SourceNotReady",
        message=f"HelmChart 'flux-system/apps-ui' is not ready: {MISSING_CHART}",
        helmChart="flux-system/apps-ui",
    )
    chart_building = {"HelmChart flux-system/apps-ui": flux_object(ready="Unknown")}
    chart_stalled = {
        "HelmChart flux-system/apps-ui": flux_object(
            reason="InvalidChartReference", message=MISSING_CHART, stalled=True
        )
    }
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None), {}),
        (git(), CHECKING, {"HelmRelease apps/ui": waiting, **chart_building}),  # on the way: not a failure
        (git(), CHECKING, {"HelmRelease apps/ui": failing, **chart_stalled}),
    )
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster)
    text = str(failure.value)
    assert text.startswith(
        "HelmRelease apps/ui (applied by Kustomization flux-system/releases from ./releases/development) "
        "failed: its HelmChart flux-system/apps-ui (source-controller): InvalidChartReference: invalid chart"
    )
    assert "Fix: the chart ./charts/missing of HelmRelease apps/ui cannot be found in its source" in text
    assert failure.value.details["waited"] == 0.0


def test_a_release_helm_controller_gave_up_on_ends_the_wait() -> None:
    failed = flux_object(
        reason="InstallFailed",
        message="Helm install failed: template: nodejs/templates/x.yaml: required value",
        stalled=True,
    )
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None), {}), (git(), CHECKING, {"HelmRelease apps/ui": failed})
    )
    with pytest.raises(fs.FluxSyncError, match=r"failed \(helm-controller\): InstallFailed: Helm install failed"):
        run(cluster)


def test_a_release_stalled_for_an_older_generation_is_not_the_answer() -> None:
    old = flux_object(reason="InstallFailed", stalled=True, generation=2, observed=1)  # the new spec is being installed
    done = flux_object(ready="True", reason="InstallSucceeded", generation=2, observed=2)
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None), {}),
        (git(), CHECKING, {"HelmRelease apps/ui": old}),
        (git(), ks(handled=TOKEN), {"HelmRelease apps/ui": done}),
    )
    outcome, _clock = run(cluster)
    assert outcome.ready


def test_a_failure_of_an_older_generation_is_waited_out() -> None:
    cluster = Cluster(
        (git(), ks(ready="False", reason="BuildFailed", generation=2, observed=1)),
        (git(), ks(ready="False", reason="BuildFailed", generation=2, observed=1, handled=TOKEN)),
        (git(), ks(generation=2, observed=2, handled=TOKEN)),
    )
    outcome, _clock = run(cluster)
    assert outcome.ready


def test_no_status_at_all_times_out_naming_the_controller_that_does_not_run() -> None:
    cluster = Cluster((git(ready=None, revision=None, observed=None), ks(ready=None, observed=None, attempted=None)))
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster, timeout=5)
    text = str(failure.value)
    assert "GitRepository flux-system/flux-system has no status after 5 s: no controller reconciled it" in text
    assert "Fix: check that source-controller runs" in text
    assert cluster.reads == 7  # the first read, then one a second until the deadline


def test_a_kustomization_still_on_the_old_revision_times_out_saying_so() -> None:
    cluster = Cluster((git(revision=REV2), ks(applied=REV1, attempted=REV1)))
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster, timeout=3)
    assert f"it has not applied the revision {REV2} yet" in str(failure.value)
    assert "flux_sync_wait_timeout" in str(failure.value)


@pytest.mark.parametrize(
    ("source", "kustomization", "expected"),
    [
        (None, ks(), "GitRepository flux-system/flux-system does not exist. Fix: run the flux role"),
        (git(), None, "Kustomization flux-system/releases does not exist. Fix: run the flux role"),
        (git(spec={"suspend": True}), ks(), "is suspended. Fix: resume it (flux resume gitrepository flux-system"),
    ],
)
def test_missing_or_suspended_objects_fail_before_any_request(source, kustomization, expected) -> None:
    cluster = Cluster((source, kustomization))
    with pytest.raises(fs.FluxSyncError, match=expected.replace("(", r"\(")):
        run(cluster, force=True)
    assert cluster.requests == []


def test_check_mode_requests_nothing_and_reports_what_it_would_request() -> None:
    cluster = Cluster((git(), ks(ready="False", reason="BuildFailed")))
    outcome, _clock = run(cluster, wait=False)
    assert cluster.requests == [] and not outcome.ready
    assert outcome.requested == ["Kustomization flux-system/releases"]


@pytest.mark.parametrize(
    ("message", "fix"),
    [
        ("ssh: handshake failed: knownhosts: key mismatch", "SSH host key is not one of the Secret"),
        ("couldn't find remote ref refs/heads/main", "the branch main is not in the repository"),
        ("dial tcp 127.0.0.1:2222: connect: connection refused", "cannot be reached from the controller"),
        ('secrets "flux-system" not found', "the Secret flux-system/flux-system is missing"),
        ("something new", "read the message above (source-controller's)"),
    ],
)
def test_source_fixes(message: str, fix: str) -> None:
    observed = fs.observe("GitRepository", git(ready="False", reason="GitOperationFailed", message=message), NS, "x")
    hints = fs._hints(observed, fs.observe("Kustomization", ks(), NS, "releases"), "flux-biomage-development")
    assert fix in fs.explain(observed, hints)


# -- Flux's multi-tenancy lockdown (docs/tenants.md): helm-controller installs as release-deployer ----------------
REFUSED = (
    "Could not determine release state: unable to determine current state: query: failed to query with labels: "
    'secrets is forbidden: User "system:serviceaccount:ui-old:release-deployer" cannot list resource "secrets" in '
    'API group "" in the namespace "ui-old"'
)


def applied(*ids: str) -> dict:
    """The Kustomization running health checks of what it applied (inventory ids)."""
    return ks(**IN_PROGRESS, applied=None, handled=TOKEN, step=step("Running health checks"), inventory=ids)


OLD_LAYOUT = ("ui-old__Namespace", "ui-old_ui-old_helm.toolkit.fluxcd.io_HelmRelease")
NEW_LAYOUT = (
    *OLD_LAYOUT,
    "ui-old_release-deployer__ServiceAccount",
    "ui-old_release-deployer_rbac.authorization.k8s.io_RoleBinding",
)


def test_a_release_without_the_deployer_binding_ends_the_wait_with_the_rbac_message_and_the_fix() -> None:
    """An older release file (no release-deployer account): helm-controller retries the refusal for ever without
    stalling; the wait reports it at once with Flux's own RBAC message and says to re-run the release step."""
    refused = flux_object(reason="StateError", message=REFUSED)
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None), {}),
        (git(), applied(*OLD_LAYOUT), {"HelmRelease ui-old/ui-old": refused}),
    )
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster)
    text = str(failure.value)
    assert text.startswith(
        "HelmRelease ui-old/ui-old (applied by Kustomization flux-system/releases from ./releases/development) failed "
        "(helm-controller): StateError: Could not determine release state:"
    )
    assert 'User "system:serviceaccount:ui-old:release-deployer" cannot list resource "secrets"' in text
    assert (
        "Fix: HelmRelease ui-old/ui-old is installed as the service account release-deployer of namespace ui-old, "
        "and its release file in ./releases/development has no ServiceAccount release-deployer and RoleBinding "
        "release-deployer (the layout before Flux's multi-tenancy lockdown): run the release step again for it"
    ) in text


def test_a_refusal_with_the_binding_applied_is_not_final() -> None:
    """Right after the RoleBinding is applied the API server may refuse once more: the release is waited for."""
    refused = flux_object(reason="StateError", message=REFUSED)
    done = flux_object(ready="True", reason="InstallSucceeded")
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None), {}),
        (git(), applied(*NEW_LAYOUT), {"HelmRelease ui-old/ui-old": refused}),
        (git(), ks(handled=TOKEN), {"HelmRelease ui-old/ui-old": done}),
    )
    outcome, _clock = run(cluster)
    assert outcome.ready


def test_a_kind_the_deployer_role_lacks_names_the_cluster_role_to_extend() -> None:
    forbidden = (
        'Helm install failed: configmaps is forbidden: User "system:serviceaccount:ui-old:release-deployer" cannot '
        'create resource "configmaps" in API group "" in the namespace "ui-old"'
    )
    failed = flux_object(reason="InstallFailed", message=forbidden, stalled=True)
    cluster = Cluster(
        (git(), ks(ready=None, observed=None, attempted=None), {}),
        (git(), applied(*NEW_LAYOUT), {"HelmRelease ui-old/ui-old": failed}),
    )
    with pytest.raises(fs.FluxSyncError) as failure:
        run(cluster)
    assert "does not let release-deployer manage (the message names its resource): add that resource to " in str(
        failure.value
    )
    assert "biomage-release-deployer in roles/flux/templates/tenants.yml.j2" in str(failure.value)


def test_a_removed_release_still_in_the_inventory_of_the_revision_before_is_not_the_answer() -> None:
    """kustomize-controller writes the new lastAttemptedRevision before it builds it, and the inventory without the
    removed release file only after applying and pruning: a refused release listed meanwhile is not the answer."""
    refused = flux_object(reason="StateError", message=REFUSED)
    removed = {"HelmRelease ui-old/ui-old": refused}
    for building in ("Building manifests", "Detecting drift"):
        cluster = Cluster(
            (git(revision=REV2), ks(applied=REV1, attempted=REV1, inventory=OLD_LAYOUT), removed),
            (git(revision=REV2), ks(**IN_PROGRESS, attempted=REV2, step=step(building, REV2), inventory=OLD_LAYOUT),
             removed),
            (git(revision=REV2), ks(**IN_PROGRESS, attempted=REV2, step=step("Running health checks", REV2),
                                    handled=TOKEN, inventory=()), removed),
            (git(revision=REV2), ks(applied=REV2, attempted=REV2, handled=TOKEN, inventory=()), removed),
        )  # fmt: skip
        outcome, _clock = run(cluster)
        assert outcome.ready and outcome.kustomization.revision == REV2


def test_a_refused_release_is_still_reported_once_the_attempt_failed_its_health_checks() -> None:
    """The attempt over (HealthCheckFailed, the Reconciling step kept as ProgressingWithRetry): the inventory is the
    attempted revision's, so a refused release in it is the answer."""
    failed = ks(
        ready="False",
        reason="HealthCheckFailed",
        message="health check failed after 30s: timeout waiting for: [HelmRelease/ui-old/ui-old status: 'Failed']",
        applied=REV1,
        attempted=REV1,
        handled=TOKEN,
        step=step("Running health checks"),
        inventory=OLD_LAYOUT,
    )
    refused = {"HelmRelease ui-old/ui-old": flux_object(reason="StateError", message=REFUSED)}
    cluster = Cluster((git(), ks(ready=None, observed=None, attempted=None), {}), (git(), failed, refused))
    with pytest.raises(fs.FluxSyncError, match=r"HelmRelease ui-old/ui-old \(applied by Kustomization"):
        run(cluster)
