"""The repository's CloudFormation template rules as cfn-lint rules (BIO008 is E9008, and so on).

    cfn-lint --append-rules tools/cfn_lint_rules cf/*.yaml

`.cfnlintrc.yaml` at the repository root appends them to every cfn-lint run started there (an
editor's cfn-lint extension, the pre-commit hook). The findings come from the same code the
deployment runs (plugins/module_utils/cloudformation/rules.py), exemptions and the allow-list of
third-party accounts (`third-party-accounts.yaml`) included; docs/aws-resources.md describes them.
BIO000 (the template parses) is cfn-lint's own E0000.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules  # noqa: E402

DOCS = "https://github.com/biomage-org/iac/blob/main/docs/aws-resources.md#the-rules"
# allow-list files whose own problems were reported already (once per cfn-lint process)
_REPORTED_ALLOW_LISTS = set()


def _findings(cfn):
    """The findings of the template cfn-lint is checking (computed once for all the rules)."""
    cached = getattr(cfn, "_biomage_findings", None)
    if cached is not None:
        return cached
    label = cfn.filename or "<stdin>"
    anchor = cfn.filename if cfn.filename else os.path.join(os.getcwd(), "<stdin>")
    allow_list = rules.AllowLists().for_template(anchor)
    findings = list(rules.review_template(cfn.template, label, allow_list).findings)
    if allow_list.label and allow_list.label not in _REPORTED_ALLOW_LISTS:
        _REPORTED_ALLOW_LISTS.add(allow_list.label)
        findings.extend(allow_list.findings)
    cfn._biomage_findings = findings
    return findings


class _Biomage:
    """What every rule of this file does: report the findings of its BIO rule."""

    bio_rule = ""

    def match(self, cfn):
        matches = []
        for finding in _findings(cfn):
            if finding.rule == self.bio_rule:
                where = "" if finding.path == (cfn.filename or "<stdin>") else f"{finding.path}: "
                text = f"{where}[{finding.rule} {finding.name}] {finding.message} Fix: {finding.fix}"
                matches.append(RuleMatch(list(finding.keys), text))
        return matches


def _define(rule_id):
    name, summary = rules.RULES[rule_id]
    class_name = "Biomage" + "".join(part.capitalize() for part in name.split("-"))
    attributes = {
        "id": rules.cfn_lint_id(rule_id),
        "shortdesc": f"{rule_id} {name}",
        "description": summary,
        "source_url": DOCS,
        "tags": ["biomage", rule_id],
        "bio_rule": rule_id,
        "__module__": __name__,
        "__doc__": f"{rule_id} {name}: {summary}",
    }
    globals()[class_name] = type(class_name, (_Biomage, CloudFormationLintRule), attributes)


for _rule_id in rules.RULES:
    if _rule_id != "BIO000":
        _define(_rule_id)
