# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release manifests Flux applies (``releases/<env>/*.yaml``), checked offline.

What a release file may hold, and how each object is checked:

* every object against the OpenAPI v3 schema of its CustomResourceDefinition at the pinned Flux
  version (the generated CRDs in ``tools/crds/generated`` of the checkout), the way the API server
  validates it with strict field validation: unknown fields are refused, ``x-kubernetes-int-or-string``
  accepts an integer or a string, ``x-kubernetes-preserve-unknown-fields`` keeps an object open,
  ``x-kubernetes-embedded-resource`` requires ``apiVersion`` and ``kind``, ``nullable`` admits null,
  ``x-kubernetes-list-type`` set/map lists have no duplicates, and the ``x-kubernetes-validations``
  rules written in the small part of CEL the Flux CRDs use are evaluated (a rule outside that part
  is skipped, never guessed);
* a HelmRelease's ``spec.values`` against the ``values.schema.json`` of its chart when the chart is
  one of this repository's ``charts/`` (merged with the chart's ``values.yaml`` as Helm does);
* the repository's conventions: a ``v1`` Namespace plus objects in it (Flux prunes them together);
  HelmReleases on ``helm.toolkit.fluxcd.io/v2``; the ServiceAccount and RoleBinding ``release-deployer``
  helm-controller installs a release with, exactly as the release step writes them (:mod:`.lockdown`;
  a file without them, the layout before Flux's lockdown, gets a warning, not an error); the
  standard Flux sources (GitRepository, OCIRepository, HelmRepository) and image automation objects
  (ImageRepository, ImagePolicy, ImageUpdateAutomation) in a Namespace of the same file; charts of the ``flux-system``
  GitRepository present under ``charts/`` and reconciled by revision; the environment and the IRSA
  role ARNs naming the folder's environment; no ``FILLED_IN_BY_CI`` left; across an environment, an
  object declared once and a host served by one release.

Every finding names the file, the document, the field path and a fix for that case
(:mod:`.documents`); the schema checks are :mod:`.crd_schema`. Nothing here
talks to a cluster or the network: the CLI ``tools/check_releases.py`` and the release step use
the same :class:`ReleaseChecker`.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown
from ansible_collections.biomage.iac.plugins.module_utils.flux.crd_schema import (
    SchemaContext,
    crd_schemas,
    schema_findings,
    values_validator,
)
from ansible_collections.biomage.iac.plugins.module_utils.flux.documents import (
    PLACEHOLDER,
    FileReport,
    Finding,
    field_path,
    get_path,
    has_placeholder,
    load_documents,
    placeholders,
    split_api_version,
    without_placeholders,
)

ENVIRONMENTS = ("development", "staging", "production")
HELM_RELEASE = "helm.toolkit.fluxcd.io/v2"
OLD_HELM_RELEASES = {
    "helm.fluxcd.io/v1": "Flux v1 (helm-operator), no longer reconciled",
    "helm.toolkit.fluxcd.io/v2beta1": "a beta removed from Flux 2.x",
    "helm.toolkit.fluxcd.io/v2beta2": "a beta removed from Flux 2.x",
}
# The GitRepository the biomage.iac.flux role creates (flux_source_name in flux-system): charts read
# from it are this repository's own charts/.
OWN_SOURCE = ("GitRepository", "flux-system", "flux-system")
CRD_DIR = Path("tools") / "crds" / "generated"
MIGRATE_COMMAND = "python tools/migrate_flux_v1.py"
FIX_TEMPLATE = "change the service repository's .flux.ci template or its CI, not this file (docs/examples/ui.flux.ci)"
FIX_RELEASE_STEP = (
    "run the release step again for this release (tools/release.py, or biomage.iac.flux_release): it writes the "
    "ServiceAccount and RoleBinding {account} of each release namespace (docs/tenants.md)"
)
VALUES_DOC = "charts/{chart}/README.md"

# What a release file may hold: (API group, kind) -> what it is.
RELEASE_KINDS = {
    ("", "Namespace"): "namespace",
    ("helm.toolkit.fluxcd.io", "HelmRelease"): "release",
    ("", "ServiceAccount"): "deployer",
    ("rbac.authorization.k8s.io", "RoleBinding"): "deployer",
    ("source.toolkit.fluxcd.io", "GitRepository"): "source",
    ("source.toolkit.fluxcd.io", "OCIRepository"): "source",
    ("source.toolkit.fluxcd.io", "HelmRepository"): "source",
    ("image.toolkit.fluxcd.io", "ImageRepository"): "image",
    ("image.toolkit.fluxcd.io", "ImagePolicy"): "image",
    ("image.toolkit.fluxcd.io", "ImageUpdateAutomation"): "image",
}
# Versions the pinned Flux release serves for allowed kinds whose CRD the checkout does not hold:
# such objects are checked for the conventions only, and a notice says so.
KNOWN_VERSIONS = {"image.toolkit.fluxcd.io": ("v1",)}
ADD_IMAGE_CRDS = (
    "add github.com/fluxcd/image-reflector-controller/api and image-automation-controller/api (the versions "
    "the pinned Flux release, flux_version, ships) to tools/crds (go.mod, apis.go, generate.sh), "
    "then `make -C tools/crds`"
)
# Why other objects do not belong in a release file, and where they go instead.
REFUSED = {
    "Secret": "never commit a Secret: create it out of band and reference it (valuesFrom, secretRef)",
    "Kustomization": "a release deploys a chart: put the manifests in a chart under charts/ and release it with a "
    "HelmRelease",
    "HelmChart": "a HelmRelease makes its own HelmChart: move its fields into the HelmRelease's spec.chart.spec",
    "Bucket": "charts come from the flux-system GitRepository (./charts/<name>), a HelmRepository or an OCIRepository",
    "ExternalArtifact": "charts come from the flux-system GitRepository (./charts/<name>), a HelmRepository or an "
    "OCIRepository",
}
REFUSED_DEFAULT = (
    "make it a template of the release's chart (charts/<name>/templates/) so it is rendered with the release"
)
# Namespaces of the platform itself, never a release's.
RESERVED_NAMESPACES = frozenset(
    (
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "flux-system",
        "cert-manager",
        "ingress-nginx",
        "traefik",
    )
)
# Fields of a Flux v1 HelmRelease that have no place in a v2 one.
FLUX_V1_FIELDS = frozenset(
    ("git", "ref", "path", "repository", "name", "version", "helmVersion", "rollback", "resetValues", "forceUpgrade")
)
# Values of charts/nodejs in the shapes older releases used (Flux v1 era), and what replaced them:
# named in the fix of an unknown key; tools/migrate_flux_v1.py rewrites them.
MOVED_VALUES = {
    "nodejs": {
        "livenessProbe": "probes.liveness (path, type for probeType, scheme, timings)",
        "readinessProbe": "probes.readiness (path, type for probeType, scheme, timings)",
        "probes.liveness.probeType": "probes.liveness.type",
        "probes.readiness.probeType": "probes.readiness.type",
        "service.internalPort": "containerPort",
        "service.externalPort": "service.port",
        "service.additionalHosts": "ingress.extraHosts (a list of host names)",
        "service.enabled": "ingress.enabled",
        "service.name": "nothing (the container port is named http)",
        "podDisruptionBudget": "pdb (enabled, minAvailable)",
    }
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role/(?:[^/]+/)*(?P<name>[^/]+)$")
# biomage-<app>-<env>-<region>, the RoleName of cf/irsa-<app>-role.yaml
IRSA_ROLE_NAME = re.compile(r"^biomage-(?P<app>.+)-(?P<env>development|staging|production)-[a-z]{2}(-[a-z]+)+-[0-9]$")


# --- chart values -------------------------------------------------------------------------------


def coalesce(defaults, overrides):
    """Helm's merge of a release's values over the chart's: maps merge, null deletes a default."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class _Chart:
    name: str
    path: Path
    defaults: dict
    validator: object  # None: the chart has no values.schema.json
    moved: dict


def _nodejs_hosts(values):
    ingress = values.get("ingress") or {}
    if not ingress.get("enabled", True):
        return []
    domain, subdomain = ingress.get("domainName") or "", ingress.get("subdomain") or ""
    hosts = [f"{subdomain}.{domain}" if subdomain else domain] if domain else []
    return [h for h in [*hosts, *(ingress.get("extraHosts") or [])] if isinstance(h, str) and h]


# Hosts a release of one of this repository's charts serves, from its merged values.
CHART_HOSTS = {"nodejs": _nodejs_hosts}


def _own_role_arns(values, chart):
    """IRSA role ARNs of merged values: every string that is one, plus a nodejs role given by name."""
    found = []

    def walk(node, parts):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*parts, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*parts, index))
        elif isinstance(node, str) and ROLE_ARN.match(node):
            found.append((parts, ROLE_ARN.match(node).group("name")))

    walk(values, ())
    role = get_path(values, "serviceAccount", "iamRole")
    if chart == "nodejs" and isinstance(role, str) and role and not role.startswith("arn:"):
        found.append((("serviceAccount", "iamRole"), role))
    return found


def _flux_v1_fix(label):
    """The fix for a Flux v1 field of a HelmRelease: the migration command."""

    def fix(key, _relative):
        if key in FLUX_V1_FIELDS:
            return f"{key} is a Flux v1 field: `{MIGRATE_COMMAND} {label}` converts the release to {HELM_RELEASE}"
        return None

    return fix


def _moved_values_fix(chart):
    """The fix for a chart value in an older shape: where it moved (MOVED_VALUES)."""

    def fix(_key, relative):
        if relative in chart.moved:
            return (
                f"an older shape: write {chart.moved[relative]} instead ({VALUES_DOC.format(chart=chart.name)}, "
                f"migrating older values; {MIGRATE_COMMAND} converts Flux v1 releases)"
            )
        return None

    return fix


# --- the checker --------------------------------------------------------------------------------


class ReleaseChecker:
    """Checks release files of one checkout: its ``charts/`` and the CRDs of ``crd_dir``.

    ``template=True`` checks a ``.flux.ci`` template: ``FILLED_IN_BY_CI`` values are expected (not
    findings) and are not held against the schemas.
    """

    def __init__(self, repo_root, crd_dir=None, template=False):
        self.repo_root = Path(repo_root)
        self.schemas = crd_schemas(crd_dir or self.repo_root / CRD_DIR)
        self.template = template
        self._charts: dict = {}
        self._services = None

    # files

    def check_text(self, text, environment, label) -> FileReport:
        try:
            documents = load_documents(text, label)
        except safe_yaml.InputLimitError as exc:
            report = FileReport(label)
            limit = exc.message.split(": ", 1)[-1].split(" Fix:")[0].rstrip(".")
            report.findings.append(Finding(label, "(file)", f"{limit};", "make the file smaller, without alias chains"))
            return report
        except safe_yaml.YamlError as exc:
            report = FileReport(label)
            detail = exc.__cause__ or exc
            report.findings.append(Finding(label, "(file)", f"is not valid YAML ({detail});", FIX_TEMPLATE))
            return report
        return self.check_documents(documents, environment, label)

    def check_file(self, path, environment, label=None) -> FileReport:
        label = label or str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            report = FileReport(label)
            report.findings.append(Finding(label, "(file)", f"is not UTF-8 text ({exc});", FIX_TEMPLATE))
            return report
        return self.check_text(text, environment, label)

    def check_documents(self, documents, environment, label) -> FileReport:
        """The findings of the documents of one file, as if it lived in ``releases/<environment>/``
        (``environment=None``: not known, e.g. a template)."""
        report = FileReport(label)
        namespaces = {
            get_path(d, "metadata", "name")
            for d in documents
            if isinstance(d, dict) and d.get("kind") == "Namespace" and d.get("apiVersion") == "v1"
        }
        released = {
            get_path(d, "metadata", "namespace")
            for d in documents
            if isinstance(d, dict) and d.get("kind") == "HelmRelease"
        }
        for index, doc in enumerate(documents, start=1):
            where = f"document {index}"
            if not isinstance(doc, dict):
                report.findings.append(
                    Finding(
                        label,
                        where,
                        "is not a Kubernetes object (a mapping)",
                        "each YAML document of a release file is one object",
                    )
                )
                continue
            if not self.template:
                report.findings += [
                    Finding(label, f"{where} {field_path(parts)}", f"still says {PLACEHOLDER};", FIX_TEMPLATE)
                    for parts in placeholders(doc)
                ]
            self._check_object(doc, index, environment, namespaces, report, released)
        if not self.template:
            report.findings += _deployer_warnings(documents, label)
        return report

    def _check_object(self, doc, index, environment, namespaces, report, released=frozenset()):
        label, where = report.label, f"document {index}"
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            report.findings.append(
                Finding(
                    label,
                    f"{where} {'apiVersion' if not api_version else 'kind'}",
                    "is missing: every object names its apiVersion and kind",
                    "e.g. apiVersion: helm.toolkit.fluxcd.io/v2 and kind: HelmRelease",
                )
            )
            return
        if kind == "HelmRelease" and api_version in OLD_HELM_RELEASES:
            report.findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} is {OLD_HELM_RELEASES[api_version]}.",
                    f"write apiVersion {HELM_RELEASE} with spec.chart.spec: `{MIGRATE_COMMAND} {label} --write` "
                    "converts it (run it on the service's .flux.ci template; docs/releases.md, migrating from Flux v1)",
                )
            )
            return
        group, version = split_api_version(api_version)
        role = RELEASE_KINDS.get((group, kind))
        if role is None:
            allowed = ", ".join(sorted({known for _group, known in RELEASE_KINDS}))
            report.findings.append(
                Finding(
                    label,
                    f"{where} kind",
                    f"{api_version}/{kind} is not allowed here: a release file holds a v1 Namespace and objects "
                    f"in it ({allowed}).",
                    REFUSED.get(kind, REFUSED_DEFAULT),
                )
            )
            return
        if role == "deployer":
            self._check_deployer(doc, index, namespaces, released, report)
            return
        served = self.schemas.served(group, kind)
        if served is None:
            served = KNOWN_VERSIONS.get(group, ())
            checked = False
        else:
            checked = True
        if version not in served:
            report.findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} is not a version of {kind} the pinned Flux serves"
                    + (f" (it serves {', '.join(served)})" if served else ""),
                    f"apiVersion {group + '/' if group else ''}{served[-1]}" if served else "see docs/flux.md",
                )
            )
            return
        name = get_path(doc, "metadata", "name")
        namespace = get_path(doc, "metadata", "namespace")
        if checked:
            validator = self.schemas.validator(group, version, kind)
            ctx = SchemaContext(
                label,
                index,
                (),
                self.schemas.schema_name(group, version, kind),
                legacy_fix=_flux_v1_fix(label) if kind == "HelmRelease" else None,
            )
            report.findings += schema_findings(validator, doc, ctx, self.template)
        else:
            report.findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} {kind}: tools/crds/generated holds no CRD for it, so only the conventions were "
                    "checked, not its schema",
                    ADD_IMAGE_CRDS if group == "image.toolkit.fluxcd.io" else "add its CRD to tools/crds",
                    severity="notice",
                )
            )
        self._check_name(doc, index, role, report)
        if role == "namespace":
            if namespace is not None:
                report.findings.append(
                    Finding(
                        label,
                        f"{where} metadata.namespace",
                        "is set on a Namespace, which is not namespaced",
                        "remove metadata.namespace",
                    )
                )
            if name in RESERVED_NAMESPACES:
                report.findings.append(
                    Finding(
                        label,
                        f"{where} metadata.name",
                        f"{name!r} is a namespace of the platform itself, not a release's",
                        "name the release's own namespace <app>-<ref> (e.g. ui-master)",
                    )
                )
            report.objects.append((("", kind, "", str(name)), index))
            return
        if not namespace:
            report.findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    "is missing;",
                    "the release's Namespace, declared in the same file",
                )
            )
        elif namespace not in namespaces and not (self.template and PLACEHOLDER in str(namespace)):
            report.findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    f"{namespace!r} is not declared in this file.",
                    "add its v1 Namespace to the same file (Flux prunes both together)",
                )
            )
        report.objects.append(((group, kind, str(namespace), str(name)), index))
        if role == "release":
            self._check_release(doc, index, environment, report)
        elif kind == "ImageUpdateAutomation":
            source = get_path(doc, "spec", "sourceRef") or {}
            if (source.get("kind", "GitRepository"), source.get("name"), source.get("namespace")) == OWN_SOURCE:
                report.findings.append(
                    Finding(
                        label,
                        f"{where} spec.sourceRef",
                        "is the flux-system GitRepository: its deploy key is read-only and releases/ is written by "
                        "the services' CI only",
                        "let the service's CI write the new image tag (its release step), or point sourceRef at a "
                        "GitRepository with write access declared in this file",
                    )
                )

    def _check_deployer(self, doc, index, namespaces, released, report):
        """A ServiceAccount or RoleBinding of a release file: only helm-controller's account release-deployer of
        the file's namespace and its binding to the ClusterRole biomage-release-deployer, as the release step
        writes them (the admission policy biomage-release-tenants refuses anything else)."""
        label, where, kind = report.label, f"document {index}", doc.get("kind")
        namespace = get_path(doc, "metadata", "namespace")
        name = get_path(doc, "metadata", "name")
        account = lockdown.DEFAULT_SERVICE_ACCOUNT
        fix = FIX_RELEASE_STEP.format(account=account) + "; do not write or edit them by hand"
        if not isinstance(namespace, str) or not namespace:
            report.findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    "is missing;",
                    "the release's Namespace, declared in the same file",
                )
            )
            return
        # a HelmRelease of that namespace says so already (the account belongs to it)
        undeclared = namespace not in namespaces and namespace not in released
        if undeclared and not (self.template and PLACEHOLDER in namespace):
            report.findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    f"{namespace!r} is not declared in this file.",
                    "add its v1 Namespace to the same file (Flux prunes both together)",
                )
            )
        expected = {o["kind"]: o for o in lockdown.deployer_objects(namespace)}[kind]
        if doc != expected:
            what = (
                f"ServiceAccount {account}"
                if kind == "ServiceAccount"
                else f"RoleBinding {lockdown.DEPLOYER_BINDING} of ClusterRole {lockdown.DEPLOYER_CLUSTER_ROLE} to the "
                f"ServiceAccount {account} of its own namespace"
            )
            report.findings.append(
                Finding(
                    label,
                    f"{where} ({kind} {namespace}/{name})",
                    f"is not the release step's {what}: a release file holds no other {kind} (helm-controller "
                    "installs the release with that account; RBAC tenant policy biomage-release-tenants)",
                    fix,
                )
            )
        report.objects.append(((split_api_version(doc.get("apiVersion"))[0], kind, namespace, str(name)), index))

    def _check_name(self, doc, index, role, report):
        name = get_path(doc, "metadata", "name")
        at = f"document {index} metadata.name"
        if self.template and PLACEHOLDER in str(name):
            return
        if not isinstance(name, str) or not name:
            report.findings.append(Finding(report.label, at, "is missing", "name the object (e.g. ui-master)"))
            return
        pattern, limit, what = (
            (DNS_LABEL, 63, "a DNS label") if role == "namespace" else (DNS_SUBDOMAIN, 253, "a DNS subdomain")
        )
        if PLACEHOLDER not in name and (not pattern.match(name) or len(name) > limit):
            report.findings.append(
                Finding(
                    report.label,
                    at,
                    f"{name!r} is not {what} (lower-case letters, digits and '-', at most {limit} characters)",
                    "e.g. ui-master or ui-<sandbox>",
                )
            )

    # HelmRelease

    def _chart(self, chart_path):
        key = str(chart_path)
        if key not in self._charts:
            directory = (self.repo_root / chart_path).resolve()
            chart = None
            inside = directory == self.repo_root.resolve() or self.repo_root.resolve() in directory.parents
            if inside and (directory / "Chart.yaml").is_file():
                values_file = directory / "values.yaml"
                defaults = (load_documents(values_file.read_text(encoding="utf-8"), str(values_file)) or [{}])[0] or {}
                schema_file = directory / "values.schema.json"
                validator = None
                if schema_file.is_file():
                    schema = json.loads(schema_file.read_text(encoding="utf-8"))
                    validator = values_validator(schema)
                chart = _Chart(directory.name, directory, defaults, validator, MOVED_VALUES.get(directory.name, {}))
            self._charts[key] = chart
        return self._charts[key]

    def services(self):
        """The platform's services: the <app> of every cf/irsa-<app>-role.yaml of the checkout."""
        if self._services is None:
            self._services = sorted(
                p.name[len("irsa-") : -len("-role.yaml")] for p in (self.repo_root / "cf").glob("irsa-*-role.yaml")
            )
        return self._services

    def own_charts(self):
        return sorted(
            "./" + p.parent.relative_to(self.repo_root).as_posix() for p in self.repo_root.glob("charts/*/Chart.yaml")
        )

    def _check_release(self, release, index, environment, report):
        label, where = report.label, f"document {index}"
        namespace = get_path(release, "metadata", "namespace")
        identity = (str(namespace), str(get_path(release, "metadata", "name")))
        report.findings += tenant_findings(release, label, where, self.services())
        chart_ref = get_path(release, "spec", "chartRef")
        if isinstance(chart_ref, dict):
            report.findings += _foreign_source(chart_ref, namespace, label, f"{where} spec.chartRef")
        chart_spec = get_path(release, "spec", "chart", "spec")
        if not isinstance(chart_spec, dict):
            return  # chartRef, or a missing chart: the schema and its rules said so
        source = (
            get_path(chart_spec, "sourceRef", "kind"),
            get_path(chart_spec, "sourceRef", "name"),
            get_path(chart_spec, "sourceRef", "namespace") or namespace,
        )
        if isinstance(chart_spec.get("sourceRef"), dict):
            at = f"{where} spec.chart.spec.sourceRef"
            report.findings += _foreign_source(chart_spec["sourceRef"], namespace, label, at)
        chart_name = chart_spec.get("chart")
        if source != OWN_SOURCE or not isinstance(chart_name, str) or not chart_name:
            return
        if self.template and PLACEHOLDER in chart_name:
            return
        chart = self._chart(chart_name)
        if chart is None:
            report.findings.append(
                Finding(
                    label,
                    f"{where} spec.chart.spec.chart",
                    f"{chart_name} is not a chart of this repository (no {chart_name}/Chart.yaml).",
                    f"one of {', '.join(self.own_charts())}",
                )
            )
            return
        if chart_spec.get("reconcileStrategy") != "Revision":
            report.findings.append(
                Finding(
                    label,
                    f"{where} spec.chart.spec.reconcileStrategy",
                    f"is {chart_spec.get('reconcileStrategy', 'ChartVersion (the default)')}: a chart of the "
                    "flux-system GitRepository keeps its version, so changes to it would never reach this release",
                    "reconcileStrategy: Revision",
                )
            )
        values = get_path(release, "spec", "values")
        values = values if isinstance(values, dict) else {}
        # A placeholder is a finding of its own (or expected, in a template): the chart's default
        # stands in for it, so that it does not also break rules that depend on it.
        merged = coalesce(chart.defaults, without_placeholders(values))
        if chart.validator is not None:
            ctx = SchemaContext(
                label,
                index,
                ("spec", "values"),
                f"charts/{chart.name}/values.schema.json",
                legacy_fix=_moved_values_fix(chart),
            )
            report.findings += schema_findings(chart.validator, merged, ctx, self.template)
        env = get_path(values, "kubernetes", "env")
        wrong_env = None
        if environment and env is not None and env != environment and PLACEHOLDER not in str(env):
            wrong_env = env
            report.findings.append(
                Finding(
                    label,
                    f"{where} spec.values.kubernetes.env",
                    f"is {env!r} in releases/{environment}/.",
                    f"{environment!r}, or push the file to releases/{env}/",
                )
            )
        if environment:
            for parts, role_name in _own_role_arns(merged, chart.name):
                tokens = set(role_name.split("-"))
                others = sorted((tokens & set(ENVIRONMENTS)) - {environment})
                if not others or environment in tokens or wrong_env in others:
                    continue
                app = IRSA_ROLE_NAME.match(role_name)
                stack = f"biomage-irsa-{app.group('app') if app else '<app>'}-role-{environment}"
                report.findings.append(
                    Finding(
                        label,
                        f"{where} {field_path(('spec', 'values', *parts))}",
                        f"names the IAM role {role_name} of {others[0]} in releases/{environment}/: the pods would "
                        f"run with {others[0]}'s permissions, or IRSA fails",
                        f"the RoleArn output of stack {stack} (the service's CI reads it from the {environment} IRSA "
                        "stack)",
                    )
                )
        hosts = CHART_HOSTS.get(chart.name)
        if hosts and not has_placeholder(get_path(merged, "ingress")):
            report.hosts += [(host, identity, index) for host in hosts(merged)]

    # a releases/ tree

    def check_tree(self, root) -> list[Finding]:
        """Every finding of ``root`` (a releases/ folder): each file, then what spans files."""
        root = Path(root)
        if not root.is_dir():
            nested = any((root.parent / env).is_dir() for env in ENVIRONMENTS)
            hint = f" ({root.parent} is itself a releases/ folder: give the checkout above it)" if nested else ""
            return [
                Finding(
                    str(root),
                    "(root)",
                    f"does not exist or is not a folder{hint}",
                    "give the checkout whose releases/ to check (--root DIR)",
                )
            ]
        present = [env for env in ENVIRONMENTS if (root / env).is_dir()]
        if not present:
            inside = [env for env in ENVIRONMENTS if (root / "releases" / env).is_dir()]
            return [
                Finding(
                    str(root),
                    "(root)",
                    f"holds no environment folder ({', '.join(ENVIRONMENTS)})",
                    "give the checkout above it (the folder holding releases/)"
                    if inside
                    else "check out the repository whose releases/<env>/ Flux applies",
                )
            ]
        findings: list[Finding] = []
        reports: dict[str, list[FileReport]] = {env: [] for env in ENVIRONMENTS}
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md"):
            rel = path.relative_to(root)
            label = f"releases/{rel.as_posix()}"
            if len(rel.parts) != 2 or rel.parts[0] not in ENVIRONMENTS:
                findings.append(
                    Finding(
                        label,
                        "(path)",
                        "is outside the environments' folders.",
                        f"releases/<{'|'.join(ENVIRONMENTS)}>/",
                    )
                )
            elif path.suffix not in (".yaml", ".yml"):
                findings.append(
                    Finding(
                        label,
                        "(path)",
                        "is not a .yaml release manifest (Flux would apply it)",
                        "remove it, or name it <release>.yaml",
                    )
                )
            else:
                report = self.check_file(path, rel.parts[0], label)
                findings += report.findings
                reports[rel.parts[0]].append(report)
        for env_reports in reports.values():
            findings += _duplicates(env_reports)
            findings += _shared_hosts(env_reports)
        return findings


# --- tenants: each service's releases in its own namespaces (docs/tenants.md) -------------------


def service_of(release):
    """``(service, where)``: which service a HelmRelease belongs to (its releaseName, else the repository
    of its biomage.net/ci-repo annotation or values.biomageCi.repo); ``(None, None)`` when none says."""
    candidates = (
        ("spec.releaseName", get_path(release, "spec", "releaseName")),
        (
            "metadata.annotations.biomage.net/ci-repo",
            get_path(release, "metadata", "annotations", "biomage.net/ci-repo"),
        ),
        ("spec.values.biomageCi.repo", get_path(release, "spec", "values", "biomageCi", "repo")),
    )
    for where, value in candidates:
        if isinstance(value, str) and value and PLACEHOLDER not in value:
            return value.rsplit("/", 1)[-1], where
    return None, None


def tenant_findings(release, label, where, services):
    """A HelmRelease of service <app> lives only in a namespace <app>-<ref> that no other service's
    prefix matches, names no other service's repository and runs with no other service's IRSA role."""
    findings = []
    namespace = get_path(release, "metadata", "namespace")
    app, source = service_of(release)
    if app is None:
        return findings
    if isinstance(namespace, str) and namespace and PLACEHOLDER not in namespace:
        owner = namespace_owner(namespace, services)
        if not namespace.startswith(app + "-") or (owner is not None and owner != app):
            findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    f"{namespace!r} is "
                    + (f"a namespace of service {owner}" if owner and owner != app else "not a namespace of " + app)
                    + f", but the release belongs to {app} ({source}): a service's releases live only in its own "
                    f"namespaces {app}-<ref>",
                    f"use namespace {app}-<ref> (e.g. {app}-master)",
                )
            )
    for key, value in (
        (
            "metadata.annotations.biomage.net/ci-repo",
            get_path(release, "metadata", "annotations", "biomage.net/ci-repo"),
        ),
        ("spec.values.biomageCi.repo", get_path(release, "spec", "values", "biomageCi", "repo")),
    ):
        if isinstance(value, str) and value and PLACEHOLDER not in value and value.rsplit("/", 1)[-1] != app:
            findings.append(
                Finding(
                    label,
                    f"{where} {key}",
                    f"names repository {value}, but the release belongs to {app} ({source})",
                    f"the {app} repository's CI pushes {app}'s releases; another service's are not its to write",
                )
            )
    role = get_path(release, "spec", "values", "serviceAccount", "iamRole")
    if isinstance(role, str) and role and PLACEHOLDER not in role:
        match = ROLE_ARN.match(role)
        name = match.group("name") if match else role
        role_app = IRSA_ROLE_NAME.match(name)
        if role_app and role_app.group("app") != app:
            findings.append(
                Finding(
                    label,
                    f"{where} spec.values.serviceAccount.iamRole",
                    f"is the IAM role of service {role_app.group('app')}, but the release belongs to {app}: its pods "
                    f"would run with {role_app.group('app')}'s permissions",
                    f"the RoleArn output of stack biomage-irsa-{app}-role-<environment>",
                )
            )
    return findings


def _foreign_source(ref, namespace, label, at):
    """A chart source in another namespace than the release's, other than the flux-system GitRepository:
    helm-controller runs without --no-cross-namespace-refs (docs/tenants.md, "Not done yet"), so this check
    and the admission policy keep a release from reading another tenant's sources."""
    source_namespace = ref.get("namespace")
    if not isinstance(source_namespace, str) or not source_namespace or PLACEHOLDER in source_namespace:
        return []
    # the kind of a source of flux-system named flux-system is the schema's finding (only the GitRepository exists)
    if source_namespace == namespace or (ref.get("name"), source_namespace) == OWN_SOURCE[1:]:
        return []
    return [
        Finding(
            label,
            f"{at}.namespace",
            f"{source_namespace!r} is not the release's namespace: a release's chart comes from a source of its own "
            "namespace or from the flux-system GitRepository (RBAC tenant policy biomage-release-tenants)",
            f"declare the source in {namespace} (this file), or use ./charts/<name> of the GitRepository "
            "flux-system/flux-system",
        )
    ]


def _deployer_warnings(documents, label):
    """Warnings for HelmReleases whose namespace has no ServiceAccount or RoleBinding release-deployer in the
    file: the layout before Flux's lockdown, which helm-controller can no longer install (RBAC)."""
    present = {
        (doc.get("kind"), get_path(doc, "metadata", "namespace"))
        for doc in documents
        if isinstance(doc, dict) and lockdown.is_deployer_object(doc)
    }
    account = lockdown.DEFAULT_SERVICE_ACCOUNT
    findings = []
    for index, doc in enumerate(documents, start=1):
        if not isinstance(doc, dict) or doc.get("kind") != "HelmRelease":
            continue
        namespace = get_path(doc, "metadata", "namespace")
        if not isinstance(namespace, str) or not namespace or PLACEHOLDER in namespace:
            continue
        wanted = (("ServiceAccount", account), ("RoleBinding", lockdown.DEPLOYER_BINDING))
        missing = [f"{kind} {name}" for kind, name in wanted if (kind, namespace) not in present]
        if missing:
            findings.append(
                Finding(
                    label,
                    f"document {index} (HelmRelease {namespace}/{get_path(doc, 'metadata', 'name')})",
                    f"has no {' and no '.join(missing)} in namespace {namespace} (a release file of the layout before "
                    f"Flux's multi-tenancy lockdown): helm-controller installs it as "
                    f"system:serviceaccount:{namespace}:{account}, which has no rights without them, so the "
                    "HelmRelease would not become Ready (RBAC)",
                    FIX_RELEASE_STEP.format(account=account),
                    severity="warning",
                )
            )
    return findings


def namespace_owner(namespace, services):
    """The service whose namespaces ``namespace`` is (the longest ``<service>-`` prefix), or None."""
    owners = [s for s in services if namespace.startswith(s + "-")]
    return max(owners, key=len) if owners else None


def _object_name(identity):
    _group, kind, namespace, name = identity
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _duplicates(reports):
    """Objects declared in two files of one environment (Flux's kustomize build refuses them)."""
    findings, seen = [], {}
    for report in reports:
        again: dict[str, list] = {}
        for identity, _document in report.objects:
            if identity in seen and seen[identity] != report.label:
                again.setdefault(seen[identity], []).append(identity)
            seen.setdefault(identity, report.label)
        for other, identities in again.items():
            identities.sort(key=lambda i: (i[1] != "HelmRelease", i[1], i[2], i[3]))
            also = ", ".join(_object_name(i) for i in identities[1:])
            findings.append(
                Finding(
                    report.label,
                    "metadata",
                    f"{_object_name(identities[0])} is also in {other}" + (f" (so are {also})." if also else "."),
                    "one file per release: keep one of the two (Flux's build of the folder fails on an object "
                    "declared twice)",
                )
            )
    return findings


def _shared_hosts(reports):
    """A host served by two releases of one environment: one of them would never get its traffic."""
    findings, owners = [], {}
    for report in reports:
        for host, release, index in report.hosts:
            owner = owners.get(host)
            if owner is None:
                owners[host] = (release, report.label)
            elif owner[0] != release:
                findings.append(
                    Finding(
                        report.label,
                        f"document {index} spec.values.ingress",
                        f"serves {host}, which HelmRelease {owner[0][0]}/{owner[0][1]} in {owner[1]} serves already",
                        "one host per release: a distinct ingress.subdomain (sandboxes: <app>-<sandbox>), or drop it "
                        "from ingress.extraHosts",
                    )
                )
    return findings
