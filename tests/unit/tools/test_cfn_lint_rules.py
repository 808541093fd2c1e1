"""tools/cfn_lint_rules: the repository's template rules as cfn-lint rules (`--append-rules`), the
`.cfnlintrc.yaml` that appends them in the repository root, and the pre-commit hook that runs them."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules

from tests.lib.ansible_run import REPO_ROOT

CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
RULES_DIR = "tools/cfn_lint_rules"


def cfn_lint(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([CFN_LINT, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_every_rule_but_the_parse_check_is_a_cfn_lint_rule() -> None:
    listed = cfn_lint("--append-rules", RULES_DIR, "--list-rules").stdout
    for rule, (name, _summary) in cfn_rules.RULES.items():
        if rule != "BIO000":  # cfn-lint's own E0000 reports a template that does not parse
            assert f"{cfn_rules.cfn_lint_id(rule)}: {rule} {name}" in listed


def test_cfn_lint_with_the_appended_rules_reports_a_seeded_defect_with_our_rule_id(tmp_path: Path) -> None:
    cf = tmp_path / "cf"
    shutil.copytree(REPO_ROOT / "cf", cf)
    clean = cfn_lint("--append-rules", RULES_DIR, "--", *sorted(map(str, cf.glob("*.yaml"))))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    sqs = cf / "sqs.yaml"
    name = 'Fn::Sub: "pipeline-jobs-${Environment}"'
    sqs.write_text(sqs.read_text().replace(name, 'Fn::Sub: "pipeline-jobs-${Environment}-eu-west-1"'))
    seeded = cfn_lint("--format", "parseable", "--append-rules", RULES_DIR, "--", *sorted(map(str, cf.glob("*.yaml"))))
    assert seeded.returncode == 2, seeded.stdout + seeded.stderr  # 2: errors
    (line,) = [line for line in seeded.stdout.splitlines() if ":E9003:" in line]
    assert line.startswith(f"{sqs}:") and "[BIO003 no-literal-region] region literal eu-west-1 Fix: " in line
    assert "pipeline-jobs-${Environment}-eu-west-1" in sqs.read_text().splitlines()[int(line.split(":")[1]) - 1]


def test_the_platform_set_passes_cfn_lint_with_its_exemptions_and_fails_without_one(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "tests/fixtures/cf-platform", tmp_path / "set")
    templates = sorted(map(str, (tmp_path / "set").glob("*.template")))
    passed = cfn_lint("--append-rules", RULES_DIR, "--", *templates)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    downloads = tmp_path / "set" / "downloads.template"
    text = downloads.read_text()
    downloads.write_text(text[: text.index("    Metadata:\n")] + text[text.index("    Properties:\n      Bucket:") :])
    failed = cfn_lint("--format", "parseable", "--append-rules", RULES_DIR, "--", *templates)
    assert [line.split(":")[5] for line in failed.stdout.splitlines()] == ["E9008"], failed.stdout
    assert "[BIO008 no-public-principal]" in failed.stdout


def test_the_repository_cfnlintrc_appends_the_rules() -> None:
    assert yaml.safe_load((REPO_ROOT / ".cfnlintrc.yaml").read_text()) == {"append_rules": [RULES_DIR]}
    proc = cfn_lint("--format", "parseable", "--", str(REPO_ROOT / "tests/fixtures/cf/bio009-admin-statement.yaml"))
    assert ":E9009:[BIO009 no-admin-statement]" in proc.stdout


def test_the_pre_commit_hooks_are_local_and_run_the_rules(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # nothing is fetched
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert all(hook["language"] == "system" for hook in hooks.values())
    # run the cfn-lint hook as pre-commit does: its entry, then the staged files that match `files`
    hook = hooks["cfn-lint"]
    bad = tmp_path / "bad.yaml"
    shutil.copy(REPO_ROOT / "tests/fixtures/cf/bio008-public-principal.yaml", bad)
    entry = shlex.split(hook["entry"])
    assert (REPO_ROOT / entry[0]).exists() and entry[1:3] == ["--append-rules", RULES_DIR]
    proc = subprocess.run(
        [str(REPO_ROOT / entry[0]), *entry[1:], str(bad)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0 and "E9008 [BIO008 no-public-principal]" in proc.stdout
    matcher = re.compile(hook["files"])
    assert matcher.search("cf/sqs.yaml") and matcher.search("infra/cf-route53.yaml")
    assert not matcher.search("cf/README.md") and not matcher.search("infra/cluster.yaml")
    every = hooks["cfn-template-rules-all"]
    assert every["pass_filenames"] is False and re.search(every["files"], "third-party-accounts.yaml")
