"""Check the release manifests under releases/ before Flux applies them.

    python tools/check_releases.py                  # every releases/<env>/*.yaml (what `make lint` runs)
    python tools/check_releases.py --root DIR       # another checkout's releases/
    python tools/check_releases.py --env staging FILE ...   # files as if they were in releases/staging/

The services' CI writes these files (docs/releases.md); this check is what the repository's own CI
runs on every push so that a broken release is named with its fix instead of failing silently in
the cluster. Rules: only the environments' folders; each file a Namespace and a Flux v2 HelmRelease
(``helm.toolkit.fluxcd.io/v2``; Flux v1's ``helm.fluxcd.io/v1`` and the removed v2 betas are refused)
in that Namespace; no ``FILLED_IN_BY_CI`` left; a chart from this repository's GitRepository must
exist under charts/; ``values.kubernetes.env`` must name the folder's environment; a release name is
used once per environment. Exit status 1 when a rule is broken, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = ("development", "staging", "production")
HELM_RELEASE = "helm.toolkit.fluxcd.io/v2"
OLD_HELM_RELEASES = {
    "helm.fluxcd.io/v1": "Flux v1 (helm-operator), no longer reconciled",
    "helm.toolkit.fluxcd.io/v2beta1": "a beta removed from Flux 2.x",
    "helm.toolkit.fluxcd.io/v2beta2": "a beta removed from Flux 2.x",
}
PLACEHOLDER = "FILLED_IN_BY_CI"
# The GitRepository the biomage.iac.flux role creates (flux_source_name in flux-system): charts read
# from it are this repository's own charts/.
OWN_SOURCE = ("GitRepository", "flux-system", "flux-system")
FIX_TEMPLATE = "fix the service repository's .flux.ci template or its CI (see docs/examples/ui.flux.ci)"


@dataclass(frozen=True)
class Finding:
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.message}"


def _placeholders(node: object, where: str) -> list[str]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _placeholders(value, f"{where}.{key}" if where else key)]
    if isinstance(node, list):
        return [p for i, value in enumerate(node) for p in _placeholders(value, f"{where}[{i}]")]
    return [where] if isinstance(node, str) and PLACEHOLDER in node else []


def _get(node: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def check_file(path: Path, environment: str, label: str, repo_root: Path = REPO_ROOT) -> list[Finding]:
    """The findings of one release file, as if it lived in releases/<environment>/."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return [Finding(label, "(file)", f"is not valid YAML ({exc}); {FIX_TEMPLATE}")]
    findings: list[Finding] = []
    namespaces: set[str] = set()
    releases: list[tuple[int, dict]] = []
    for index, doc in enumerate(documents):
        where = f"document {index + 1}"
        if not isinstance(doc, dict):
            findings.append(Finding(label, where, "is not a Kubernetes object (a mapping)"))
            continue
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        findings += [
            Finding(label, f"{where} {field}", f"still says {PLACEHOLDER}; {FIX_TEMPLATE}")
            for field in _placeholders(doc, "")
        ]
        if kind == "Namespace" and api_version == "v1":
            namespaces.add(str(_get(doc, "metadata", "name")))
        elif kind == "HelmRelease" and api_version == HELM_RELEASE:
            releases.append((index, doc))
        elif kind == "HelmRelease" and api_version in OLD_HELM_RELEASES:
            findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} is {OLD_HELM_RELEASES[api_version]}. Fix: write apiVersion {HELM_RELEASE} "
                    f"with spec.chart.spec (docs/examples/ui.flux.ci)",
                )
            )
        else:
            findings.append(
                Finding(
                    label,
                    f"{where} kind",
                    f"{api_version}/{kind} is not allowed here: a release file holds a v1 Namespace and "
                    f"{HELM_RELEASE} HelmReleases. Fix: put other objects in the chart",
                )
            )
    for index, release in releases:
        where = f"document {index + 1} (HelmRelease {_get(release, 'metadata', 'name')})"
        namespace = _get(release, "metadata", "namespace")
        if not namespace:
            findings.append(Finding(label, f"{where} metadata.namespace", "is missing; Fix: the release's Namespace"))
        elif namespace not in namespaces:
            findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    f"{namespace!r} is not declared in this file. Fix: add its v1 Namespace to the same file "
                    "(Flux prunes both together)",
                )
            )
        chart = _get(release, "spec", "chart", "spec") or {}
        source = (
            _get(chart, "sourceRef", "kind"),
            _get(chart, "sourceRef", "name"),
            _get(chart, "sourceRef", "namespace") or namespace,
        )
        chart_name = chart.get("chart") if isinstance(chart, dict) else None
        if not chart_name:
            findings.append(Finding(label, f"{where} spec.chart.spec.chart", "is missing; Fix: e.g. ./charts/nodejs"))
        elif source == OWN_SOURCE and not (repo_root / str(chart_name) / "Chart.yaml").is_file():
            charts = sorted(
                "./" + p.parent.relative_to(repo_root).as_posix() for p in repo_root.glob("charts/*/Chart.yaml")
            )
            findings.append(
                Finding(
                    label,
                    f"{where} spec.chart.spec.chart",
                    f"{chart_name} is not a chart of this repository (no {chart_name}/Chart.yaml). "
                    f"Fix: one of {', '.join(charts)}",
                )
            )
        env = _get(release, "spec", "values", "kubernetes", "env")
        if env is not None and env != environment and PLACEHOLDER not in str(env):
            findings.append(
                Finding(
                    label,
                    f"{where} spec.values.kubernetes.env",
                    f"is {env!r} in releases/{environment}/. Fix: {environment!r}, or push the file to releases/{env}/",
                )
            )
    return findings


def _release_ids(path: Path) -> list[tuple[str, str]]:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError):
        return []
    return [
        (str(_get(d, "metadata", "namespace")), str(_get(d, "metadata", "name")))
        for d in documents
        if isinstance(d, dict) and d.get("kind") == "HelmRelease"
    ]


def check_tree(root: Path, repo_root: Path = REPO_ROOT) -> list[Finding]:
    """Every finding of ``root`` (a releases/ folder)."""
    findings: list[Finding] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md"):
        rel = path.relative_to(root)
        label = f"releases/{rel.as_posix()}"
        if len(rel.parts) != 2 or rel.parts[0] not in ENVIRONMENTS:
            findings.append(
                Finding(
                    label, "(path)", f"is outside the environments' folders. Fix: releases/<{'|'.join(ENVIRONMENTS)}>/"
                )
            )
        elif path.suffix not in (".yaml", ".yml"):
            findings.append(Finding(label, "(path)", "is not a .yaml release manifest (Flux would apply it)"))
        else:
            findings += check_file(path, rel.parts[0], label, repo_root)
    for environment in ENVIRONMENTS:
        seen: dict[tuple[str, str], str] = {}
        for path in sorted((root / environment).glob("*.y*ml")):
            label = f"releases/{environment}/{path.name}"
            for release in _release_ids(path):
                if release in seen:
                    findings.append(
                        Finding(
                            label,
                            "metadata",
                            f"HelmRelease {release[0]}/{release[1]} is also in {seen[release]}. "
                            "Fix: one file per release",
                        )
                    )
                seen.setdefault(release, label)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_releases", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--root", type=Path, help="a checkout whose releases/ to check (default: this one)")
    parser.add_argument("--env", choices=ENVIRONMENTS, help="check FILEs as if they were in releases/<env>/")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    repo_root = (args.root or REPO_ROOT).resolve()
    if args.files:
        if not args.env:
            parser.error("give --env with FILEs")
        findings = [f for path in args.files for f in check_file(path, args.env, str(path), repo_root)]
        count = len(args.files)
    else:
        root = repo_root / "releases"
        findings = check_tree(root, repo_root)
        count = sum(1 for p in root.rglob("*.y*ml"))
    for finding in findings:
        print(finding, file=sys.stderr)
    print(f"{count} release file(s), {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
