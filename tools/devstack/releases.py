"""What Flux runs on the local stack (``python -m devstack releases``, the end of ``make demo``): the
GitRepository and Kustomization the flux role created, and every HelmRelease with its Ready state and the
ready replicas of its workloads, as the stack's real controllers report them."""

from __future__ import annotations

from collections.abc import Iterable

from kubernetes import client

FLUX_NAMESPACE = "flux-system"
SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories", "flux-system")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "releases")
HELM_RELEASES = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")


def ready_of(obj: dict | None) -> tuple[str, str]:
    """``(Ready status, "reason: message")`` of a Flux object; ``("-", "not found")`` when it is None."""
    if obj is None:
        return "-", "not found"
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            text = f"{condition.get('reason') or ''}: {condition.get('message') or ''}".strip(": ")
            return str(condition.get("status")), text
    return "Unknown", "no status yet (does the controller run?)"


def release_lines(releases: Iterable[dict], workloads: dict[tuple[str, str], str]) -> list[str]:
    """One line per HelmRelease: ``<namespace>/<name>  Ready=<status>  <chart version>  <workloads>  <message>``."""
    lines = []
    for release in sorted(releases, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"])):
        namespace, name = release["metadata"]["namespace"], release["metadata"]["name"]
        status, message = ready_of(release)
        history = (release.get("status") or {}).get("history") or [{}]
        chart = f"{history[0].get('chartName', '?')}@{history[0].get('chartVersion', '?')}" if history[0] else "-"
        pods = workloads.get((namespace, release.get("spec", {}).get("releaseName") or name), "no Deployment")
        lines.append(f"  {namespace}/{name}  Ready={status}  {chart}  {pods}  {message}")
    return lines


def report(api) -> str:
    """The report for the stack whose API server ``api`` (a kubernetes ApiClient) reaches."""
    custom = client.CustomObjectsApi(api)

    def get(group: str, version: str, plural: str, name: str) -> dict | None:
        try:
            return custom.get_namespaced_custom_object(group, version, FLUX_NAMESPACE, plural, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    source, kustomization = get(*SOURCE), get(*KUSTOMIZATION)
    revision = ((source or {}).get("status") or {}).get("artifact", {}).get("revision", "-")
    lines = [
        f"GitRepository {FLUX_NAMESPACE}/{SOURCE[3]}: Ready={ready_of(source)[0]} {revision}",
        f"Kustomization {FLUX_NAMESPACE}/{KUSTOMIZATION[3]}: Ready={ready_of(kustomization)[0]} "
        f"{ready_of(kustomization)[1]}",
    ]
    releases = custom.list_cluster_custom_object(*HELM_RELEASES)["items"]
    workloads = {
        (d.metadata.namespace, d.metadata.name): f"{d.status.ready_replicas or 0}/{d.spec.replicas} Pods ready"
        for d in client.AppsV1Api(api).list_deployment_for_all_namespaces().items
    }
    if releases:
        lines.append(f"HelmReleases ({len(releases)}):")
        lines += release_lines(releases, workloads)
    else:
        lines.append("HelmReleases: none (releases/<env>/ holds no release yet)")
    return "\n".join(lines)
