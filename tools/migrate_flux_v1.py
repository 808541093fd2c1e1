"""Convert Flux v1 (helm.fluxcd.io/v1) HelmReleases to Flux v2, showing the diff first.

    python tools/migrate_flux_v1.py .flux.ci                    # the diff only: nothing is written
    python tools/migrate_flux_v1.py .flux.ci --write            # write the converted template
    python tools/migrate_flux_v1.py old-iac/releases --env staging   # every *.yaml, *.yml, *.flux.ci below

Each file holding a ``helm.fluxcd.io/v1`` HelmRelease is converted (chart from this repository's git
-> the flux-system GitRepository's ./charts/<name>; values, the Namespace beside it and every
FILLED_IN_BY_CI kept; plugins/module_utils/flux/flux_v1.py lists the rules), its unified diff is
printed, then the result is checked like tools/check_releases.py checks releases (a template when
it still holds FILLED_IN_BY_CI; the environment from --env or from a releases/<env>/ folder in its
path). ``--write`` writes the files whose result passes; the others are left as they were, with
each finding and its fix. Comments inside the converted documents are not kept (those before the
first document are). Exit status 0 when every converted file passes, 1 otherwise, 2 on a usage
error or an unreadable file.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "collections"))

import yaml  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.flux import flux_v1, releases  # noqa: E402

SUFFIXES = (".yaml", ".yml", ".flux.ci")


def candidates(paths: list[Path]) -> list[Path]:
    """The files to look at: each FILE, and the release files below each folder."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        else:
            found.append(path)
    return found


def header(text: str) -> str:
    """The comment lines before the first document (a template's explanation), kept as they were."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or not line.strip():
            lines.append(line)
        else:
            break
    return "".join(lines).rstrip("\n") + "\n" if any(line.startswith("#") for line in lines) else ""


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint (and the rest of the repository) wants them."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def render(documents: list, head: str) -> str:
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=120, allow_unicode=True)
    return head + body


def environment_of(path: Path) -> str | None:
    parts = path.resolve().parts
    return parts[-2] if len(parts) >= 2 and parts[-2] in releases.ENVIRONMENTS else None


def migrate(path: Path, args: argparse.Namespace, checker_for) -> tuple[bool, bool]:
    """``(converted, passed)`` for one file; prints its diff, notes and findings."""
    label = str(path)
    text = path.read_text(encoding="utf-8")
    if flux_v1.FLUX_V1 not in text:
        return False, True  # nothing to convert (a chart template in a scanned folder is not even parsed)
    try:
        documents = releases.load_documents(text)
    except yaml.YAMLError as exc:
        raise flux_v1.MigrationError(f"{label}: not valid YAML ({exc})") from exc
    conversion = flux_v1.convert_documents(documents, tuple(args.own_repo or flux_v1.OWN_REPOSITORIES))
    if not conversion.changed:
        return False, True
    new_text = render(conversion.documents, header(text))
    name = label.lstrip("/")
    sys.stdout.writelines(
        difflib.unified_diff(text.splitlines(True), new_text.splitlines(True), f"a/{name}", f"b/{name}")
    )
    for note in conversion.notes:
        print(f"{label}: {note}", file=sys.stderr)
    template = releases.PLACEHOLDER in new_text or path.name.endswith(".flux.ci")
    environment = args.env or environment_of(path)
    report = checker_for(template).check_documents(conversion.documents, None if template else environment, label)
    for finding in report.findings:
        print(finding if finding.severity == "error" else f"{finding.severity}: {finding}", file=sys.stderr)
    passed = not report.errors
    if args.write and passed:
        path.write_text(new_text, encoding="utf-8")
        print(f"{label}: written", file=sys.stderr)
    elif args.write:
        print(
            f"{label}: not written: fix the findings above first (in the Flux v1 file), then run again", file=sys.stderr
        )
    return True, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate_flux_v1", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("paths", nargs="+", type=Path, help="release files, .flux.ci templates or folders of them")
    parser.add_argument("--write", action="store_true", help="write the converted files that pass the checks")
    parser.add_argument(
        "--env", choices=releases.ENVIRONMENTS, help="check the results as releases of this environment"
    )
    parser.add_argument(
        "--root", type=Path, help="the checkout whose charts/ and CRDs to check against (default: this one)"
    )
    parser.add_argument(
        "--own-repo",
        action="append",
        metavar="OWNER/NAME",
        help="a repository whose charts/ the flux-system GitRepository serves "
        f"(default: {', '.join(flux_v1.OWN_REPOSITORIES)})",
    )
    args = parser.parse_args(argv)
    root = (args.root or REPO_ROOT).resolve()
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    checkers: dict[bool, releases.ReleaseChecker] = {}

    def checker_for(template: bool) -> releases.ReleaseChecker:
        if template not in checkers:
            checkers[template] = releases.ReleaseChecker(root, template=template)
        return checkers[template]

    converted = failed = 0
    try:
        for path in candidates(args.paths):
            changed, passed = migrate(path, args, checker_for)
            converted += changed
            failed += not passed
    except (BiomageError, OSError, UnicodeDecodeError) as exc:
        print(f"migrate_flux_v1: {exc}", file=sys.stderr)
        return 2
    if not converted:
        print("no Flux v1 HelmRelease found: nothing to convert", file=sys.stderr)
        return 0
    verb = "written" if args.write else "nothing written: run again with --write"
    print(
        f"{converted} file(s) with Flux v1 HelmReleases: {converted - failed} pass the checks ({verb}), "
        f"{failed} do not",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
