"""Lint the CloudFormation templates: cfn-lint, then the repository's own template rules and the IAM
analysis of every identity policy (cloudsplaining and parliament, docs/iam-analysis.md).

    python tools/lint_cf.py                 # cf/*.yaml and infra/cf-*.yaml (what `make lint` runs)
    python tools/lint_cf.py path/a.yaml ... # given templates
    python tools/lint_cf.py --no-cfn-lint   # only the repository's rules (fast)

The rules are the ones biomage.iac.cfn_stacks applies before any deployment
(plugins/module_utils/cloudformation/rules.py), with the same exemptions (Metadata.biomage.exemptions)
and the same allow-list of third-party accounts (the nearest third-party-accounts.yaml above each
template); docs/aws-resources.md explains each. Every exemption that applies is listed. Exit status 1
when a template breaks a rule or cfn-lint reports an error or warning.

cfn-lint runs with its default rules here; the repository's rules, which `.cfnlintrc.yaml` appends to
every cfn-lint run in the repository root (tools/cfn_lint_rules, E9xxx), are reported by this script
once, in its own words.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import iam_analysis  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (  # noqa: E402
    TemplateError,
    load_template,
)


def _iam_findings(path: Path, label: str, threshold: str) -> list:
    """The IAM analysis (docs/iam-analysis.md) of one template, for each environment it can deploy to."""
    try:
        template = load_template(path.read_text(encoding="utf-8"), label)
    except (OSError, TemplateError):
        return []  # the template rules report it (BIO000)
    seen, out = set(), []
    for environment in cfn_rules.ENVIRONMENTS:
        for finding in iam_analysis.analyse_template(
            template, label, {"Environment": environment}, threshold=threshold
        ):
            if str(finding) not in seen:
                seen.add(str(finding))
                out.append(finding)
    return out


def _cfn_lint(paths: list[Path]) -> int:
    exe = Path(sys.executable).with_name("cfn-lint")
    found = str(exe) if exe.exists() else shutil.which("cfn-lint")
    if found is None:
        print("cfn-lint is not installed. Fix: run `make setup`.", file=sys.stderr)
        return 1
    # --merge-configs keeps the templates' own cfn-lint settings next to this ignore
    command = [found, "--format", "parseable", "--merge-configs", "--ignore-checks", cfn_rules.CFN_LINT_PREFIX]
    proc = subprocess.run([*command, "--", *map(str, paths)], check=False)
    return 0 if proc.returncode == 0 else 1


def default_templates() -> list[Path]:
    """cf/*.yaml (biomage.iac.aws_resources, irsa) and infra/cf-*.yaml (e.g. route53_dns's template)."""
    return sorted((REPO_ROOT / "cf").glob("*.yaml")) + sorted((REPO_ROOT / "infra").glob("cf-*.yaml"))


def _label(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("templates", nargs="*", type=Path)
    parser.add_argument("--no-cfn-lint", action="store_true", help="only the repository's rules")
    parser.add_argument(
        "--third-party-accounts",
        type=Path,
        help="the allow-list for every template (default: the nearest third-party-accounts.yaml above each)",
    )
    parser.add_argument(
        "--iam-threshold",
        choices=iam_analysis.SEVERITIES,
        default=iam_analysis.DEFAULT_THRESHOLD,
        help="report IAM analysis findings at or above this severity (default: %(default)s, what deployments refuse)",
    )
    args = parser.parse_args(argv)
    paths = args.templates or default_templates()
    if not paths:
        print("no templates found under cf/", file=sys.stderr)
        return 1
    status = 0 if args.no_cfn_lint else _cfn_lint(paths)
    allow_path = args.third_party_accounts
    allow_lists = cfn_rules.AllowLists(
        str(allow_path) if allow_path else None, _label(allow_path) if allow_path else None
    )
    findings, exemptions, blocked = [], [], 0
    for path in paths:
        review = cfn_rules.review_file(str(path), _label(path), allow_lists.for_template(str(path)))
        findings.extend(review.findings)
        exemptions.extend(review.exemptions)
        iam = _iam_findings(path, _label(path), args.iam_threshold)
        findings.extend(iam)
        blocked += 1 if review.findings or iam else 0
    findings.extend(allow_lists.findings)
    for finding in findings:
        print(finding)
    for exemption in exemptions:
        print(exemption)
    stray = sorted(p.name for p in (REPO_ROOT / "cf").glob("*.yml"))
    for name in stray:
        print(f"cf/{name}: only *.yaml templates are deployed. Fix: rename it to .yaml")
    print(
        f"{len(paths)} template(s), {blocked} blocked, {len(findings) + len(stray)} finding(s) of the repository's "
        f"rules, {len(exemptions)} exemption(s)",
        file=sys.stderr,
    )
    return 1 if findings or stray or status else status


if __name__ == "__main__":
    sys.exit(main())
