# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flux v1 (helm-operator) HelmReleases converted to Flux v2 objects.

A ``helm.fluxcd.io/v1`` HelmRelease becomes a ``helm.toolkit.fluxcd.io/v2`` one:

* chart from this repository's git (``spec.chart.git``/``ref``/``path``): ``spec.chart.spec`` with
  ``chart: ./<path>``, ``reconcileStrategy: Revision`` and ``sourceRef`` the ``flux-system``
  GitRepository the flux role creates (which follows the environment's branch: the v1 ``ref`` goes);
  chart from another git repository: a GitRepository beside the release, in its namespace; chart
  from a Helm repository (``repository``/``name``/``version``): a HelmRepository likewise;
* ``values`` kept (for ``charts/nodejs``, the keys of its older shapes rewritten: probes, ports,
  extra hosts, PodDisruptionBudget, a fixed replica count); ``valuesFrom`` ConfigMap/Secret
  references, ``timeout``, ``wait``, ``forceUpgrade``, ``maxHistory``, ``skipCRDs``,
  ``targetNamespace`` and ``test`` carried over to their v2 fields; install and upgrade remediation
  as the example release has it;
* Flux v1 automation annotations (``fluxcd.io/*``, ``filter.fluxcd.io/*``, ...) dropped: the
  service's CI writes the image tag;
* the Namespace beside the release kept (added when the file had none), every other document and
  every ``FILLED_IN_BY_CI`` placeholder left as it is.

Each change the conversion makes, or cannot make, is a note naming the document and field. The
result is meant to pass :mod:`releases` validation; whatever it cannot convert is left in place
for validation to name with its fix.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.flux.releases import HELM_RELEASE, OWN_SOURCE, PLACEHOLDER

FLUX_V1 = "helm.fluxcd.io/v1"
# The repositories whose charts/ the flux-system GitRepository serves (the platform's, then its old name).
OWN_REPOSITORIES = ("biomage-org/iac", "biomage-ltd/iac")
V1_ANNOTATION_PREFIXES = (
    "fluxcd.io/",
    "flux.weave.works/",
    "filter.fluxcd.io/",
    "repository.fluxcd.io/",
    "tag.fluxcd.io/",
)
REMEDIATION = {"remediation": {"retries": 3}}
_GIT_URL = re.compile(
    r"^(?:(?:ssh|https?|git)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::[0-9]+)?/|(?:[^@/]+@)?(?P<scp_host>[^/:]+):)"
    r"(?P<path>[^?#]+?)(?:\.git)?/?$"
)
_SHA = re.compile(r"^[0-9a-f]{40}$")


class MigrationError(BiomageError):
    """A file that cannot be converted at all (not YAML)."""


@dataclass
class Conversion:
    """The converted documents of one file and what the conversion did."""

    documents: list
    notes: list[str] = field(default_factory=list)
    converted: int = 0  # Flux v1 HelmReleases converted

    @property
    def changed(self) -> bool:
        return self.converted > 0


def git_repository(url):
    """``(host, owner/name)`` of a git URL (ssh, https or scp-like ``git@host:owner/name``), or None."""
    match = _GIT_URL.match(str(url or "").strip())
    if not match:
        return None
    return (match.group("host") or match.group("scp_host")).lower(), match.group("path").strip("/")


def _ssh_url(url):
    """A git URL Flux's GitRepository accepts (``ssh://`` instead of scp-like ``git@host:path``)."""
    text = str(url).strip()
    if re.match(r"^[a-z+]+://", text):
        return text
    parsed = git_repository(text)
    user = text.split("@", 1)[0] + "@" if "@" in text.split(":", 1)[0] else ""
    return f"ssh://{user}{parsed[0]}/{parsed[1]}" if parsed else text


def _dns_name(text, limit=63):
    name = re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-")
    return name[:limit].rstrip("-") or "chart-source"


def _add_probe(values, old, new, notes, where):
    probe = values.pop(old)
    if not isinstance(probe, dict):
        notes.append(f"{where}: spec.values.{old} is not a mapping: dropped")
        return
    converted = {("type" if key == "probeType" else key): value for key, value in probe.items()}
    probes = values.get("probes")
    if not isinstance(probes, dict):
        probes = values["probes"] = {}
    target = probes.get(new)
    if not isinstance(target, dict):
        target = probes[new] = {}
    target.update(converted)
    notes.append(f"{where}: spec.values.{old} -> spec.values.probes.{new} (probeType -> type)")


def convert_nodejs_values(values, where="values"):
    """``charts/nodejs`` values of the older shapes rewritten to the chart's current keys."""
    values = copy.deepcopy(values) if isinstance(values, dict) else {}
    notes: list[str] = []
    for old, new in (("livenessProbe", "liveness"), ("readinessProbe", "readiness")):
        if old in values:
            _add_probe(values, old, new, notes, where)
    service = values.get("service")
    if isinstance(service, dict):
        if "internalPort" in service:
            values["containerPort"] = service.pop("internalPort")
            notes.append(f"{where}: spec.values.service.internalPort -> spec.values.containerPort")
        if "externalPort" in service:
            service["port"] = service.pop("externalPort")
            notes.append(f"{where}: spec.values.service.externalPort -> spec.values.service.port")
        if "name" in service:
            service.pop("name")
            notes.append(f"{where}: spec.values.service.name dropped (the chart names its port http)")
        ingress = values.get("ingress")
        if not isinstance(ingress, dict):
            ingress = values["ingress"] = {}
        if "enabled" in service:
            ingress["enabled"] = service.pop("enabled")
            notes.append(f"{where}: spec.values.service.enabled -> spec.values.ingress.enabled")
        if "additionalHosts" in service:
            extra = service.pop("additionalHosts")
            if isinstance(extra, str):
                extra = [extra]
            elif extra is True:
                domain = ingress.get("domainName")
                extra = [domain] if domain and ingress.get("subdomain") else []
            elif not isinstance(extra, list):
                extra = []
            if extra:
                ingress["extraHosts"] = extra
            notes.append(
                f"{where}: spec.values.service.additionalHosts -> spec.values.ingress.extraHosts {extra}"
                + ("" if extra else " (nothing to add: dropped)")
            )
        if not ingress:
            values.pop("ingress")
        if not service:
            values.pop("service")
    if "podDisruptionBudget" in values:
        pdb = values.pop("podDisruptionBudget")
        values["pdb"] = pdb if isinstance(pdb, dict) else {}
        notes.append(f"{where}: spec.values.podDisruptionBudget -> spec.values.pdb")
    hpa = values.get("hpa")
    if values.get("replicaCount") is not None and not (isinstance(hpa, dict) and "enabled" in hpa):
        hpa = values["hpa"] = hpa if isinstance(hpa, dict) else {}
        hpa["enabled"] = False
        notes.append(
            f"{where}: spec.values.hpa.enabled: false added (the older chart ran replicaCount pods without an "
            "autoscaler; the chart's autoscaler is on by default)"
        )
    return values, notes


def _values_from(items, where, notes):
    converted = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        for v1_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = item.get(v1_key) if isinstance(item, dict) else None
            if isinstance(ref, dict):
                entry = {"kind": kind, "name": ref.get("name")}
                if ref.get("key"):
                    entry["valuesKey"] = ref["key"]
                if "optional" in ref:
                    entry["optional"] = ref["optional"]
                converted.append(entry)
                break
        else:
            notes.append(
                f"{where}: spec.valuesFrom[{index}] dropped: Flux v2 reads values from ConfigMaps and Secrets only "
                "(move them into spec.values)"
            )
    return converted


def _chart(release, spec, where, own_repositories, notes):
    """The v2 ``spec.chart`` of a v1 release, the source objects it needs, and the chart's name."""
    chart = spec.get("chart") if isinstance(spec.get("chart"), dict) else {}
    namespace = (release.get("metadata") or {}).get("namespace")
    name = (release.get("metadata") or {}).get("name") or "release"
    if chart.get("git"):
        path = "./" + re.sub(r"^(\./)+", "", str(chart.get("path") or "").strip()).strip("/")
        repository = git_repository(chart["git"])
        ref = chart.get("ref")
        if repository and repository[1].lower() in {r.lower() for r in own_repositories}:
            if ref is not None:
                notes.append(
                    f"{where}: spec.chart.ref {ref!r} dropped: the flux-system GitRepository follows the "
                    "environment's branch (flux_git_branch)"
                )
            kind, source_name, source_namespace = OWN_SOURCE
            return (
                {
                    "spec": {
                        "chart": path,
                        "reconcileStrategy": "Revision",
                        "sourceRef": {"kind": kind, "name": source_name, "namespace": source_namespace},
                    }
                },
                [],
                path.rsplit("/", 1)[-1] if path.startswith("./charts/") else None,
            )
        source_name = _dns_name(f"{name}-chart")
        git_ref = {"commit": ref} if ref and _SHA.match(str(ref)) else {"branch": ref or "master"}
        source = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": source_name, "namespace": namespace},
            "spec": {"interval": "5m", "url": _ssh_url(chart["git"]), "ref": git_ref},
        }
        notes.append(
            f"{where}: added GitRepository {namespace}/{source_name} for {chart['git']} (a private repository "
            "also needs spec.secretRef)"
        )
        return (
            {
                "spec": {
                    "chart": path,
                    "reconcileStrategy": "Revision",
                    "sourceRef": {"kind": "GitRepository", "name": source_name},
                }
            },
            [source],
            None,
        )
    if chart.get("repository"):
        url = str(chart["repository"]).strip()
        host = re.sub(r"^[a-z]+://", "", url).split("/", 1)[0]
        source_name = _dns_name(host)
        source_spec = {"interval": "1h", "url": url.rstrip("/")}
        if url.startswith("oci://"):
            source_spec["type"] = "oci"
        source = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": source_name, "namespace": namespace},
            "spec": source_spec,
        }
        notes.append(f"{where}: added HelmRepository {namespace}/{source_name} for {url}")
        chart_spec = {"chart": chart.get("name"), "sourceRef": {"kind": "HelmRepository", "name": source_name}}
        if chart.get("version") is not None:
            chart_spec["version"] = str(chart["version"])
        return {"spec": chart_spec}, [source], None
    notes.append(f"{where}: spec.chart has neither git nor repository: left for validation to name")
    return copy.deepcopy(spec.get("chart")), [], None


def convert_release(release, index, own_repositories=OWN_REPOSITORIES):
    """``(documents, notes)``: the v2 HelmRelease of a v1 one, after the sources it needs."""
    where = f"document {index}"
    notes: list[str] = []
    spec = release.get("spec") if isinstance(release.get("spec"), dict) else {}
    metadata = copy.deepcopy(release.get("metadata") or {})
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        for key in [k for k in annotations if str(k).startswith(V1_ANNOTATION_PREFIXES)]:
            annotations.pop(key)
            notes.append(f"{where}: metadata.annotations[{key!r}] dropped (Flux v1 automation; CI writes the tag)")
        if not annotations:
            metadata.pop("annotations")
    chart, sources, chart_name = _chart(release, spec, where, own_repositories, notes)
    new_spec = {"interval": "5m"}
    for key in ("releaseName", "targetNamespace"):
        if key in spec:
            new_spec[key] = spec[key]
    new_spec["chart"] = chart
    install, upgrade = copy.deepcopy(REMEDIATION), copy.deepcopy(REMEDIATION)
    if spec.get("skipCRDs"):
        install["crds"] = upgrade["crds"] = "Skip"
    if spec.get("wait") is False:
        install["disableWait"] = upgrade["disableWait"] = True
    if spec.get("forceUpgrade"):
        upgrade["force"] = True
    new_spec["install"], new_spec["upgrade"] = install, upgrade
    if "timeout" in spec:
        timeout = spec["timeout"]
        new_spec["timeout"] = f"{timeout}s" if isinstance(timeout, int) else str(timeout)
    if "maxHistory" in spec:
        new_spec["maxHistory"] = spec["maxHistory"]
    if isinstance(spec.get("test"), dict):
        new_spec["test"] = {k: v for k, v in spec["test"].items() if k in ("enable", "ignoreFailures")}
    if "valuesFrom" in spec:
        new_spec["valuesFrom"] = _values_from(spec["valuesFrom"], where, notes)
        if not new_spec["valuesFrom"]:
            new_spec.pop("valuesFrom")
    for key, why in (
        ("rollback", "install/upgrade remediation (3 retries) replaces it"),
        ("resetValues", "Flux v2 always installs the given values"),
        ("helmVersion", "Flux v2 runs Helm 3 only"),
    ):
        if key in spec:
            notes.append(f"{where}: spec.{key} dropped: {why}")
    values = spec.get("values")
    if chart_name == "nodejs" and isinstance(values, dict):
        values, value_notes = convert_nodejs_values(values, where)
        notes += value_notes
    if values is not None:
        new_spec["values"] = copy.deepcopy(values)
    handled = {
        "chart",
        "releaseName",
        "targetNamespace",
        "skipCRDs",
        "wait",
        "forceUpgrade",
        "timeout",
        "maxHistory",
        "test",
        "valuesFrom",
        "rollback",
        "resetValues",
        "helmVersion",
        "values",
    }
    for key in spec:
        if key not in handled:
            new_spec[key] = copy.deepcopy(spec[key])
            notes.append(f"{where}: spec.{key} kept as it was: no Flux v2 equivalent known, validation will say")
    converted = {"apiVersion": HELM_RELEASE, "kind": "HelmRelease", "metadata": metadata, "spec": new_spec}
    notes.insert(0, f"{where}: HelmRelease {FLUX_V1} -> {HELM_RELEASE}")
    return [*sources, converted], notes


def convert_documents(documents, own_repositories=OWN_REPOSITORIES):
    """Every Flux v1 HelmRelease of a file's documents converted; the rest as it was."""
    result = Conversion([])
    declared = {
        (d.get("metadata") or {}).get("name")
        for d in documents
        if isinstance(d, dict) and d.get("kind") == "Namespace" and d.get("apiVersion") == "v1"
    }
    for index, doc in enumerate(documents, start=1):
        if not (isinstance(doc, dict) and doc.get("kind") == "HelmRelease" and doc.get("apiVersion") == FLUX_V1):
            result.documents.append(doc)
            continue
        namespace = (doc.get("metadata") or {}).get("namespace")
        if namespace and namespace not in declared:
            namespace_doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            if PLACEHOLDER in str(namespace):
                namespace_doc["metadata"]["labels"] = {"sandboxId": PLACEHOLDER}
            result.documents.append(namespace_doc)
            declared.add(namespace)
            result.notes.append(f"added Namespace {namespace} before document {index} (Flux prunes both together)")
        converted, notes = convert_release(doc, index, own_repositories)
        result.documents += converted
        result.notes += notes
        result.converted += 1
    return result
