"""Lint the CloudFormation templates: cfn-lint, then the repository's own template rules and the IAM
analysis of every identity policy (cloudsplaining and parliament, docs/iam-analysis.md).

    python tools/lint_cf.py                 # cf/*.yaml and infra/cf-*.yaml (what `make lint` runs)
    python tools/lint_cf.py path/a.yaml ... # given templates
    python tools/lint_cf.py --no-cfn-lint   # only the repository's rules (fast)

The rules are the ones biomage.iac.cfn_stacks applies before any deployment
(plugins/module_utils/cloudformation/rules.py); docs/aws-resources.md explains each. Exit status 1 when a
template breaks a rule or cfn-lint reports an error or warning.
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
    proc = subprocess.run([found, "--format", "parseable", "--", *map(str, paths)], check=False)
    return 0 if proc.returncode == 0 else 1


def default_templates() -> list[Path]:
    """cf/*.yaml (biomage.iac.aws_resources, irsa) and infra/cf-*.yaml (e.g. route53_dns's template)."""
    return sorted((REPO_ROOT / "cf").glob("*.yaml")) + sorted((REPO_ROOT / "infra").glob("cf-*.yaml"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("templates", nargs="*", type=Path)
    parser.add_argument("--no-cfn-lint", action="store_true", help="only the repository's rules")
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
    findings = []
    for path in paths:
        label = str(path.resolve().relative_to(REPO_ROOT)) if path.resolve().is_relative_to(REPO_ROOT) else str(path)
        findings.extend(cfn_rules.check_file(str(path), label))
        findings.extend(_iam_findings(path, label, args.iam_threshold))
    for finding in findings:
        print(finding)
    stray = sorted(p.name for p in (REPO_ROOT / "cf").glob("*.yml"))
    for name in stray:
        print(f"cf/{name}: only *.yaml templates are deployed. Fix: rename it to .yaml")
    print(
        f"{len(paths)} template(s), {len(findings) + len(stray)} finding(s) of the repository's rules", file=sys.stderr
    )
    return 1 if findings or stray or status else status


if __name__ == "__main__":
    sys.exit(main())
