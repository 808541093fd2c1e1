# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prove that Flux syncs: a source and the Kustomization applying it are Ready for the latest revision.

What ``flux reconcile kustomization <name> --with-source`` and ``flux check`` tell an operator, as a
library for :mod:`flux_reconcile`:

* :func:`sync` requests a reconciliation (the annotation ``reconcile.fluxcd.io/requestedAt`` the
  flux CLI sets) of the source when it is not Ready (or on ``force``) and waits, bounded, until the
  source has handled it and is Ready with an artifact; then, unless the Kustomization already applied
  that artifact's revision, requests the Kustomization's and waits until it has applied it. A
  controller's answer to such a request that is a failure ends the wait at once, with the
  controller's own message and a fix (:func:`explain`); so does a missing or suspended object. A
  timeout names what was still missing.
* Everything the controllers wrote is read from the objects' ``status`` (conditions, artifact
  revision, ``lastHandledReconcileAt``, ``lastAttemptedRevision``); nothing is guessed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    ApiException,
    KubeError,
    api_client,
    k8s_client,
)

__all__ = ["HAS_KUBERNETES", "KUBERNETES_IMPORT_ERROR", "FluxObjects", "FluxSyncError", "sync"]

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SOURCE_KINDS = {
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "Bucket": ("source.toolkit.fluxcd.io", "v1", "buckets"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
}
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HELM_RELEASE = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
HELM_CHART = ("source.toolkit.fluxcd.io", "v1", "helmcharts")
CONTROLLER = {"Kustomization": "kustomize-controller", "HelmRelease": "helm-controller"}  # else source-controller
READY, PENDING, FAILED = "ready", "pending", "failed"


class FluxSyncError(BiomageError):
    """Flux did not sync: the controller's message (or what is missing), and the fix."""


# -- the objects' status -----------------------------------------------------------------------------
@dataclass
class Observed:
    """What a controller last wrote on one object (the parts this module reads)."""

    kind: str
    namespace: str
    name: str
    exists: bool = True
    generation: int | None = None
    observed_generation: int | None = None
    suspended: bool = False
    handled: str | None = None  # status.lastHandledReconcileAt
    conditions: dict = field(default_factory=dict)  # type -> {status, reason, message}
    revision: str | None = None  # the source's artifact revision; the Kustomization's last applied one
    attempted: str | None = None  # the Kustomization's last attempted revision
    spec: dict = field(default_factory=dict)
    inventory: list = field(default_factory=list)  # a Kustomization's applied objects: (namespace, name, group, kind)
    helm_chart: str | None = None  # a HelmRelease's HelmChart, <namespace>/<name>

    @property
    def ref(self):
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def controller(self):
        return CONTROLLER.get(self.kind, "source-controller")

    def condition(self, kind="Ready"):
        return self.conditions.get(kind) or {}

    @property
    def ready_message(self):
        ready = self.condition()
        if not ready:
            return None
        text = ready.get("message") or ""
        return f"{ready.get('reason') or ready.get('status')}: {text}".strip(": ")

    def describe(self):
        ready = self.condition()
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "ready": ready.get("status") == "True",
            "reason": ready.get("reason"),
            "message": ready.get("message"),
            "revision": self.revision,
        }


def observe(kind, obj, namespace, name):
    """An :class:`Observed` from an object as the API returns it (None: it does not exist)."""
    if obj is None:
        return Observed(kind, namespace, name, exists=False)
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    spec = obj.get("spec") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("type")}
    if kind == "Kustomization":
        revision, attempted = status.get("lastAppliedRevision"), status.get("lastAttemptedRevision")
    else:
        revision, attempted = (status.get("artifact") or {}).get("revision"), None
    return Observed(
        kind=kind,
        namespace=namespace,
        name=name,
        generation=metadata.get("generation"),
        observed_generation=status.get("observedGeneration"),
        suspended=bool(spec.get("suspend")),
        handled=status.get("lastHandledReconcileAt"),
        conditions=conditions,
        revision=revision,
        attempted=attempted,
        spec=spec,
        inventory=[_inventory_entry(e.get("id", "")) for e in (status.get("inventory") or {}).get("entries") or []],
        helm_chart=status.get("helmChart"),
    )


def _inventory_entry(entry_id):
    """``(namespace, name, group, kind)`` of a Kustomization inventory id, ``<ns>_<name>_<group>_<kind>``."""
    parts = entry_id.split("_")
    return tuple(parts) if len(parts) == 4 else ("", "", "", "")


def stalled(observed):
    """True when the controller gave up on the object's current generation (Stalled=True): retrying is futile
    until its spec or its source changes."""
    condition = observed.condition("Stalled")
    seen = condition.get("observedGeneration", observed.observed_generation)
    return observed.exists and condition.get("status") == "True" and seen == observed.generation


def state(observed, token=None, source_revision=None):
    """READY, FAILED or PENDING for one object, given the request ``token`` it must have handled
    and, for a Kustomization, the source revision it must have applied.

    Without a token, a failure is only PENDING: it may be a verdict about an older artifact (the
    caller requests a reconciliation and judges its answer). A Kustomization's failure is final only
    for a request made once its source was Ready, so it is about that source's artifact.
    """
    if not observed.exists or observed.suspended:
        return FAILED
    if token is not None and observed.handled != token:
        return PENDING
    # a failed attempt leaves status.observedGeneration behind (-1 on a first failure); the Ready
    # condition's own observedGeneration says which generation its verdict is about
    seen = observed.condition().get("observedGeneration", observed.observed_generation)
    if seen is None or seen != observed.generation:
        return PENDING
    ready = observed.condition().get("status")
    stalled = observed.condition("Stalled").get("status") == "True"
    if ready == "True":
        if observed.kind == "Kustomization":
            return READY if observed.revision == source_revision else PENDING
        return READY if observed.revision else PENDING
    if ready == "False" or stalled:
        return FAILED if token is not None else PENDING
    return PENDING


# -- the fixes ---------------------------------------------------------------------------------------
_SOURCE_FIXES = (
    (
        r"unable to authenticate|permission denied|publickey|no supported methods remain|authentication required"
        r"|key is not registered|access denied",
        "the Git host refuses Flux's key: check that the deploy key {title} is still registered on the "
        "repository (an ordinary run of this role adds it again when it was deleted behind its back) and that the "
        "Secret {secret} holds its private key; rotate with -e flux_regenerate=always when in doubt.",
    ),
    (
        r"knownhosts|known_hosts|host key|key mismatch|hostkey",
        "the Git host's SSH host key is not one of the Secret {secret}'s known_hosts: set flux_known_hosts "
        "to the host's published keys (in development: the line of the stack's GITHUB_SSH_KNOWN_HOSTS_FILE) and "
        "run the role again.",
    ),
    (
        r"couldn't find remote ref|reference not found|unable to resolve|remote ref .* not found|branch .* not found",
        "the branch {branch} is not in the repository: push it, or set flux_git_branch to an existing branch.",
    ),
    (
        r"repository not found|repository .* does not exist|no such repository|not a git repository",
        "the repository {url} does not exist for this key: check flux_git_url (and flux_github_owner/_repo).",
    ),
    (
        r"connection refused|no such host|i/o timeout|network is unreachable|dial tcp|context deadline exceeded"
        r"|connection reset",
        "{url} cannot be reached from the controller: check flux_git_url and the network (in development: "
        "the stack's GitHub stand-in, make dev-up).",
    ),
    (
        r"'identity' is required|invalid 'ssh' auth option|failed to configure authentication",
        "the Secret {secret} holds no usable SSH key (identity, known_hosts): run the role again; "
        "-e flux_regenerate=always replaces a Secret without a usable key.",
    ),
    (
        r"secret.* not found|secrets? \".*\" not found",
        "the Secret {secret} is missing: run the role again (it writes the Secret).",
    ),
)
_KUSTOMIZATION_FIXES = (
    (
        r"path not found|no such file or directory",
        "{path} does not exist in the revision {revision}: commit it (a folder with a kustomization.yaml or "
        "plain manifests) to the branch {branch}, or set flux_releases_path to an existing folder.",
    ),
    (
        r"kustomize build failed|build failed|accumulating resources|json: |yaml: |invalid Kustomization",
        "the manifests of {path} do not build: correct the file the message names in the repository, then "
        "push (kubectl kustomize {path} shows the error locally).",
    ),
    (
        r"health check failed|timeout waiting for|HealthCheckFailed",
        "a workload applied from {path} did not become ready: kubectl describe the object the message names "
        "(and the HelmRelease's own status for a chart).",
    ),
    (
        r"dry-run failed|apply failed|is invalid|forbidden|admission webhook|unknown field|no matches for kind",
        "the API server refused an object of {path} (the message names it): correct it in the repository.",
    ),
)


# helm-controller installs a release as the account release-deployer of its namespace (docs/tenants.md): the
# API server's refusal of that account, as helm-controller reports it
_IMPERSONATION_REFUSED = re.compile(r"forbidden: User \"system:serviceaccount:[^\"]+\" cannot", re.IGNORECASE)
_OLD_LAYOUT_FIX = (
    "{release} is installed as the service account {account} of namespace {namespace}, and its release file in "
    "{path} has no ServiceAccount {account} and RoleBinding {binding} (the layout before Flux's multi-tenancy "
    "lockdown): run the release step again for it (tools/release.py, or biomage.iac.flux_release), which writes "
    "both, then push; `python tools/check_releases.py` warns about every such file (docs/tenants.md)."
)
_DEPLOYER_ROLE_FIX = (
    "the chart {chart} of {release} renders an object the ClusterRole {role} does not let {account} manage (the "
    "message names its resource): add that resource to {role} in roles/flux/templates/tenants.yml.j2 (only a "
    "namespaced kind: releases get nothing cluster-wide) and run the flux role (docs/tenants.md)."
)
_HELM_RELEASE_FIXES = (
    (
        r"chart .*not found|no chart|path .* not found|no such file|does not exist|invalid chart|chart.*missing",
        "the chart {chart} of {release} cannot be found in its source: commit it, or correct spec.chart.spec.chart "
        "in {path}.",
    ),
    (
        r"values|template|render|parse error|yaml:|required",
        "helm cannot render {release}'s chart {chart} with its values: correct the values in {path}.",
    ),
)


def explain(observed, hints):
    """The fix for an object's failure, from its controller's message; ``hints`` fill in names."""
    message = " ".join(filter(None, [observed.condition().get("reason"), observed.condition().get("message")]))
    if not observed.exists:
        return f"run the flux role (it creates {observed.ref})."
    if observed.suspended:
        return f"resume it (flux resume {observed.kind.lower()} {observed.name} -n {observed.namespace})."
    fixes = {"Kustomization": _KUSTOMIZATION_FIXES, "HelmRelease": _HELM_RELEASE_FIXES}.get(
        observed.kind, _SOURCE_FIXES
    )
    if observed.kind == "HelmRelease":
        chart = ((observed.spec.get("chart") or {}).get("spec") or {}).get("chart") or "(the chart)"
        hints = {**hints, "release": observed.ref, "chart": chart}
        if _IMPERSONATION_REFUSED.search(message):
            names = {
                "namespace": observed.namespace,
                "account": lockdown.DEFAULT_SERVICE_ACCOUNT,
                "binding": lockdown.DEPLOYER_BINDING,
                "role": lockdown.DEPLOYER_CLUSTER_ROLE,
            }
            fix = _DEPLOYER_ROLE_FIX if hints.get("deployer_bound") else _OLD_LAYOUT_FIX
            return fix.format(**hints, **names)
    for pattern, fix in fixes:
        if re.search(pattern, message, re.IGNORECASE):
            return fix.format(**hints)
    if observed.kind == "HelmRelease":
        return (
            f"read helm-controller's message above and correct {observed.ref} in {hints['path']} "
            f"(kubectl -n {observed.namespace} describe helmrelease {observed.name})."
        )
    return (
        f"read the message above ({observed.controller}'s), fix its cause and run the role again "
        f"(kubectl -n {observed.namespace} describe {observed.kind.lower()} {observed.name})."
    )


def _hints(source, kustomization, deploy_key_title):
    secret = (source.spec.get("secretRef") or {}).get("name")
    return {
        "title": deploy_key_title or "(the deploy key)",
        "secret": f"{source.namespace}/{secret}" if secret else "(no secretRef)",
        "branch": (source.spec.get("ref") or {}).get("branch") or "(the ref)",
        "url": source.spec.get("url") or source.spec.get("endpoint") or source.ref,
        "path": kustomization.spec.get("path") or "./",
        "revision": source.revision or "(none)",
    }


def _failure(observed, hints, waited, applied_by=None, chart=None):
    if applied_by is not None and observed.kind == "HelmRelease":
        hints = {**hints, "deployer_bound": _deployer_bound(observed, applied_by)}
    if not observed.exists:
        what = "does not exist"
    elif observed.suspended:
        what = "is suspended"
    elif chart is not None:  # the HelmRelease's own message may still be about an older attempt of the chart
        what = f"failed: its HelmChart {chart.namespace}/{chart.name} ({chart.controller}): {chart.ready_message}"
        observed = Observed(**{**observed.__dict__, "conditions": {"Ready": chart.condition()}})
    else:
        what = f"failed ({observed.controller}): {observed.ready_message}"
    where = f" (applied by {applied_by.ref} from {hints['path']})" if applied_by else ""
    return FluxSyncError(f"{observed.ref}{where} {what}.", fix=explain(observed, hints), waited=round(waited, 1))


def _timeout(source, kustomization, source_state, hints, timeout):
    if source_state != READY:
        late, detail = source, source.ready_message
    else:
        late, detail = kustomization, kustomization.ready_message
        if kustomization.attempted != source.revision:
            detail = f"it has not applied the revision {source.revision} yet ({detail or 'no status'})"
    if detail is None:
        return FluxSyncError(
            f"{late.ref} has no status after {timeout} s: no controller reconciled it.",
            fix=f"check that {late.controller} runs (kubectl -n {late.namespace} get deployment {late.controller}, "
            "and its logs; in development the stack runs it: make dev-up).",
        )
    return FluxSyncError(
        f"{late.ref} is not Ready after {timeout} s: {detail}.",
        fix=f"{explain(late, hints)} Or wait longer (flux_sync_wait_timeout).",
    )


# -- the cluster -------------------------------------------------------------------------------------
class FluxObjects:
    """Reads and annotates Flux objects with the kubernetes client."""

    def __init__(self, kubeconfig=None, context=None, request_timeout=30):
        try:
            api = api_client(kubeconfig, context, timeout=request_timeout)  # the kube room's one client factory
        except KubeError as exc:
            raise FluxSyncError(str(exc)) from exc
        self.custom = k8s_client.CustomObjectsApi(api)
        self.request_timeout = request_timeout

    @staticmethod
    def _resource(kind):
        return {"Kustomization": KUSTOMIZATION, "HelmRelease": HELM_RELEASE, "HelmChart": HELM_CHART}.get(
            kind
        ) or SOURCE_KINDS[kind]

    def get(self, kind, namespace, name):
        group, version, plural = self._resource(kind)
        try:
            obj = self.custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=self.request_timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                obj = None
            else:
                raise FluxSyncError(
                    f"reading {kind} {namespace}/{name} failed: HTTP {exc.status} {exc.reason}.",
                    fix="check the kubeconfig's permissions and that the Flux CRDs are installed.",
                    status=exc.status,
                ) from exc
        except Exception as exc:  # connection refused, TLS, timeouts
            raise FluxSyncError(
                f"reading {kind} {namespace}/{name} failed: {exc}.", fix="check that the cluster answers."
            ) from exc
        return observe(kind, obj, namespace, name)

    def request(self, kind, namespace, name, token):
        group, version, plural = self._resource(kind)
        body = {"metadata": {"annotations": {REQUESTED_AT: token}}}
        try:
            self.custom.patch_namespaced_custom_object(
                group, version, namespace, plural, name, body, _request_timeout=self.request_timeout
            )
        except Exception as exc:
            raise FluxSyncError(
                f"requesting a reconciliation of {kind} {namespace}/{name} failed: {exc}.",
                fix="check the kubeconfig's permissions (patch on the object).",
            ) from exc


def _deployer_bound(release, kustomization):
    """True when the Kustomization applied the RoleBinding of helm-controller's account in the release's
    namespace (a release file of the current layout, docs/tenants.md)."""
    binding = (release.namespace, lockdown.DEPLOYER_BINDING, lockdown.RBAC_GROUP, "RoleBinding")
    return binding in kustomization.inventory


def _refused_without_deployer(release, kustomization):
    """True when the API server refused helm-controller's account for the release's current generation and the
    Kustomization applied no RoleBinding for it: a release file of the layout before Flux's lockdown, which no
    retry mends (with the binding applied, a refusal may be the moment before RBAC sees it: not final)."""
    ready = release.condition()
    seen = ready.get("observedGeneration", release.observed_generation)
    return (
        release.exists
        and ready.get("status") == "False"
        and seen == release.generation
        and bool(_IMPERSONATION_REFUSED.search(ready.get("message") or ""))
        and not _deployer_bound(release, kustomization)
    )


def _inventory_of_attempt(kustomization):
    """True when the Kustomization's inventory lists what it applied of its last attempted revision.

    kustomize-controller writes ``lastAttemptedRevision`` when it starts building a revision, but the new
    inventory only once it applied it and pruned what the revision no longer has; the step it is at is the
    Reconciling condition's message (kept, as ProgressingWithRetry, when the attempt failed). Until its health
    checks, the inventory is the previous revision's: a release file just removed is still listed there."""
    reconciling = kustomization.condition("Reconciling")
    if reconciling.get("status") == "True":
        step = reconciling.get("message") or ""
        return step.startswith(f"Running health checks for revision {kustomization.attempted} ")
    return kustomization.condition().get("reason") in ("ReconciliationSucceeded", "HealthCheckFailed")


def _failing_release(objects, kustomization):
    """``(release, chart)``: the first HelmRelease the Kustomization applied that helm-controller gave up on
    (Stalled: its install or upgrade failed past remediation; chart None) or that the API server refuses to
    helm-controller's account because its file lacks that account's RoleBinding (an older layout), or whose
    HelmChart source-controller gave up on (a chart that is not in the source). Ready=False alone may be a step
    on the way (the chart not built yet). ``(None, None)`` when there is none."""
    for namespace, name, group, kind in kustomization.inventory:
        if kind != "HelmRelease" or group != HELM_RELEASE[0]:
            continue
        release = objects.get("HelmRelease", namespace, name)
        if stalled(release) or _refused_without_deployer(release, kustomization):
            return release, None
        if release.helm_chart and "/" in release.helm_chart:
            chart = objects.get("HelmChart", *release.helm_chart.split("/", 1))
            if stalled(chart):
                return release, chart
    return None, None


def _now():
    """The request's token: the time, as the flux CLI writes it (RFC 3339, sub-second)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


@dataclass
class Outcome:
    source: Observed
    kustomization: Observed
    requested: list
    waited: float
    ready: bool


def sync(
    objects,
    namespace,
    source_kind,
    source_name,
    kustomization_name,
    force=False,
    timeout=300,
    wait=True,
    deploy_key_title=None,
    poll=1.0,
    clock=time.monotonic,
    sleep=time.sleep,
    now=None,
):
    """Request (when ``force`` or not Ready) and wait until both objects are Ready; see the module doc.

    With ``wait=False`` (check mode) nothing is requested and the current state is returned.
    """
    started = clock()
    new_token = now or _now
    source = objects.get(source_kind, namespace, source_name)
    kustomization = objects.get("Kustomization", namespace, kustomization_name)
    hints = _hints(source, kustomization, deploy_key_title)
    for observed in (source, kustomization):
        if not observed.exists or observed.suspended:
            raise _failure(observed, hints, 0)
    source_state = state(source)
    kustomization_state = state(kustomization, source_revision=source.revision)
    want = [o for o, s in ((source, source_state), (kustomization, kustomization_state)) if force or s != READY]
    if not wait:
        ready = source_state == READY and kustomization_state == READY
        return Outcome(source, kustomization, [o.ref for o in want], 0.0, ready)

    source_token = kustomization_token = None
    if source in want:
        source_token = new_token()
        objects.request(source.kind, namespace, source.name, source_token)
    requested = [source.ref] if source_token else []
    deadline = started + timeout
    while True:
        source = objects.get(source_kind, namespace, source_name)
        kustomization = objects.get("Kustomization", namespace, kustomization_name)
        hints = _hints(source, kustomization, deploy_key_title)
        source_state = state(source, source_token)
        if source_state == FAILED:
            raise _failure(source, hints, clock() - started)
        if source_state == READY:
            kustomization_state = state(kustomization, kustomization_token, source.revision)
            if kustomization_state == READY and (kustomization_token or not force):
                return Outcome(source, kustomization, requested, clock() - started, True)
            # applied (health checks may still run): a failed HelmRelease is the cause to show, at once
            release, chart = (None, None)
            if kustomization.attempted == source.revision and _inventory_of_attempt(kustomization):
                release, chart = _failing_release(objects, kustomization)
            if release is not None:
                raise _failure(release, hints, clock() - started, applied_by=kustomization, chart=chart)
            if kustomization_state == FAILED:
                raise _failure(kustomization, hints, clock() - started)
            if kustomization_token is None:
                # asked now that the source has its artifact: the answer is about that artifact
                kustomization_token = new_token()
                objects.request(kustomization.kind, namespace, kustomization.name, kustomization_token)
                requested.append(kustomization.ref)
                continue
        if clock() >= deadline:
            raise _timeout(source, kustomization, source_state, hints, timeout)
        sleep(poll)
