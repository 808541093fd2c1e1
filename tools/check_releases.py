"""Check the release manifests under releases/ before Flux applies them.

    python tools/check_releases.py                  # every releases/<env>/*.yaml (what `make lint` runs)
    python tools/check_releases.py --root DIR       # another checkout's releases/
    python tools/check_releases.py --env staging FILE ...   # files as if they were in releases/staging/
    python tools/check_releases.py --template .flux.ci      # a service's template (FILLED_IN_BY_CI expected)

The services' CI writes these files (docs/releases.md); this check is what the repository's own CI
runs on every push so that a broken release is named with its fix instead of failing silently in
the cluster. Every object is checked offline against the schema of its CRD at the pinned Flux
version (tools/crds/generated) and a HelmRelease's values against its chart's values.schema.json,
plus the conventions (plugins/module_utils/flux/releases.py lists them). Each finding names the
file, the document, the field and the fix. Exit status 1 when a rule is broken (a missing root, or
one without environment folders, included), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.flux import releases  # noqa: E402

ENVIRONMENTS = releases.ENVIRONMENTS
Finding = releases.Finding


def check_file(
    path: Path, environment: str | None, label: str, repo_root: Path = REPO_ROOT, template: bool = False
) -> list[Finding]:
    """The findings of one release file, as if it lived in releases/<environment>/."""
    return (
        releases.ReleaseChecker(repo_root, _crd_dir(repo_root), template).check_file(path, environment, label).findings
    )


def check_tree(root: Path, repo_root: Path = REPO_ROOT) -> list[Finding]:
    """Every finding of ``root`` (a releases/ folder)."""
    return releases.ReleaseChecker(repo_root, _crd_dir(repo_root)).check_tree(root)


def _crd_dir(repo_root: Path) -> Path:
    """The checkout's pinned CRDs; this checkout's when the other one has none (an older checkout)."""
    folder = Path(repo_root) / releases.CRD_DIR
    return folder if any(folder.glob("*.yaml")) else REPO_ROOT / releases.CRD_DIR


def _report(findings: list[Finding]) -> int:
    errors = [f for f in findings if f.severity == "error"]
    for finding in findings:
        print(finding if finding.severity == "error" else f"{finding.severity}: {finding}", file=sys.stderr)
    return len(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_releases", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--root", type=Path, help="a checkout whose releases/ to check (default: this one)")
    parser.add_argument(
        "--crds", type=Path, help="the folder of the pinned CRDs (default: <root>/tools/crds/generated)"
    )
    parser.add_argument("--env", choices=ENVIRONMENTS, help="check FILEs as if they were in releases/<env>/")
    parser.add_argument(
        "--template", action="store_true", help="FILEs are .flux.ci templates: FILLED_IN_BY_CI values are expected"
    )
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    repo_root = (args.root or REPO_ROOT).resolve()
    if args.files and not (args.env or args.template):
        parser.error("give --env (or --template) with FILEs")
    if (args.env or args.template) and not args.files:
        parser.error("--env and --template check FILEs: name them")
    try:
        checker = releases.ReleaseChecker(repo_root, args.crds or _crd_dir(repo_root), template=args.template)
        if args.files:
            findings = [f for path in args.files for f in checker.check_file(path, args.env, str(path)).findings]
            count = len(args.files)
        else:
            root = repo_root / "releases"
            findings = checker.check_tree(root)
            count = sum(1 for p in root.rglob("*.y*ml")) if root.is_dir() else 0
    except BiomageError as exc:
        print(f"check_releases: {exc}", file=sys.stderr)
        return 2
    errors = _report(findings)
    print(f"{count} release file(s), {errors} finding(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
