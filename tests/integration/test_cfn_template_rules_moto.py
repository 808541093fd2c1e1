"""issue 11 against moto: the templates platform teams write (tests/fixtures/cf-platform) go through
biomage.iac.cfn_stacks by change set: the plan (--check --diff) lists the reasoned exemptions and the
allowed third-party accounts, the apply creates every stack, a re-run changes nothing, and a template
without its exemption (or with an exemption without a reason) stops the run before any change."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook
from tests.lib.moto_server import in_process_moto

pytestmark = pytest.mark.slow
REGION = "eu-west-1"
PLATFORM = REPO_ROOT / "tests/fixtures/cf-platform"
PARAMETERS = {
    "monitoring-role": {"ExternalId": "from-the-vendor"},
    "shared-key": {"OrganizationId": "o-abcdefghij"},
    "irsa-exporter-role": {"OIDCProvider": "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"},
}


@pytest.fixture(scope="module")
def moto_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # the local stack's patched emulator (AWS::Backup and others as AWS creates them)
    with in_process_moto(tmp_path_factory.mktemp("rules-moto"), REGION) as env:
        yield env


@pytest.fixture
def platform_set(tmp_path: Path) -> Path:
    """A copy of the set with its allow-list beside the templates (the nearest one applies)."""
    shutil.copytree(PLATFORM, tmp_path / "cf")
    return tmp_path / "cf"


PLAYBOOK = """\
- name: Converge the platform set
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Converge the stacks
      biomage.iac.cfn_stacks:
        environment: staging
        group: platform-set
        region: eu-west-1
        endpoint_url: "{{ lookup('ansible.builtin.env', 'AWS_ENDPOINT_URL') }}"
        poll_delay: 0.2
        stacks: "{{ platform_stacks }}"
      register: converged

    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ converged | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
      changed_when: false
"""


def converge(env: dict[str, str], folder: Path, *, check: bool = False, diff: bool = False) -> tuple:
    playbook = folder.parent / "converge.yml"
    playbook.write_text(PLAYBOOK)
    stacks = [
        {
            "name": f"platform-{path.stem}-staging",
            "template": str(path),
            "template_label": f"cf/{path.stem}.yaml",
            "parameters": {"Environment": "staging", **PARAMETERS.get(path.stem, {})},
        }
        for path in sorted(folder.glob("*.template"))
    ]
    result_file = folder.parent / "result.json"
    result_file.unlink(missing_ok=True)
    run = run_playbook(
        playbook,
        "localhost,",
        env=ansible_env(env),
        check=check,
        diff=diff,
        extra_vars={"platform_stacks": stacks, "result_file": str(result_file)},
    )
    return run, (json.loads(result_file.read_text()) if result_file.exists() else None)


def test_the_platform_set_is_planned_with_its_exemptions_applied_and_then_unchanged(
    moto_env: dict[str, str], platform_set: Path
) -> None:
    plan, planned = converge(moto_env, platform_set, check=True, diff=True)
    plan.assert_ok()
    assert planned["summary"] == {"create": 6}
    assert "Exemptions from the template rules (6):" in plan.stdout
    assert (
        "cf/downloads.yaml: Resources.DownloadsBucketPolicy.Properties.PolicyDocument.Statement[0].Principal: "
        "[BIO008 no-public-principal] exempt: The example data sets are published" in plan.stdout
    )
    assert "[BIO003 no-literal-region] exempt: The disaster-recovery copy must stay in eu-central-1" in plan.stdout
    assert "third-party account 464622532012: Datadog AWS integration" in plan.stdout
    assert sorted({(e["template"], e["rule"]) for e in planned["exemptions"]}) == [
        ("cf/access-logs.yaml", "BIO002"),
        ("cf/backup-plan.yaml", "BIO003"),
        ("cf/downloads.yaml", "BIO008"),
        ("cf/monitoring-role.yaml", "BIO002"),
    ]
    cfn = aws.client(moto_env, "cloudformation")
    assert not [s for s in aws.all_stacks(cfn) if s["StackName"].startswith("platform-")]

    applied, result = converge(moto_env, platform_set)
    applied.assert_ok()
    assert {s["action"] for s in result["stacks"]} == {"create"} and len(result["stacks"]) == 6
    assert result["exemptions"] == planned["exemptions"]

    again, unchanged = converge(moto_env, platform_set)
    assert again.assert_ok().total("changed") == 0 and unchanged["summary"] == {"unchanged": 6}
    assert unchanged["exemptions"] == planned["exemptions"]


def _without_metadata(path: Path, resource: str | None) -> None:
    """Remove the Metadata block of the template (or of ``resource``) from the copy, nothing else."""
    lines = path.read_text().splitlines(keepends=True)
    indent = "    " if resource else ""
    after = lines.index(f"  {resource}:\n") if resource else 0
    start = lines.index(f"{indent}Metadata:\n", after)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith(indent + " "))
    path.write_text("".join(lines[:start] + lines[end:]))


@pytest.mark.parametrize(
    ("template", "resource", "expected"),
    [
        (
            "backup-plan",
            None,
            "cf/backup-plan.yaml: Resources.BackupPlan.Properties.BackupPlan.BackupPlanRule[0].CopyActions[0]."
            "DestinationBackupVaultArn.Fn::Sub: [BIO003 no-literal-region] region literal eu-central-1",
        ),
        (
            "downloads",
            "DownloadsBucketPolicy",
            "cf/downloads.yaml: Resources.DownloadsBucketPolicy.Properties.PolicyDocument.Statement[0].Principal: "
            '[BIO008 no-public-principal] an Allow statement grants to Principal "*"',
        ),
    ],
)
def test_without_an_exemption_the_run_stops_with_its_one_finding_before_any_change(
    moto_env: dict[str, str], platform_set: Path, template: str, resource: str | None, expected: str
) -> None:
    _without_metadata(platform_set / f"{template}.template", resource)
    failed, _result = converge(moto_env, platform_set)
    assert failed.returncode != 0
    assert "1 problem(s) in the templates or their inputs; nothing was changed" in failed.output
    assert expected in failed.output


def test_an_exemption_without_a_reason_stops_the_run(moto_env: dict[str, str], platform_set: Path) -> None:
    downloads = platform_set / "downloads.template"
    text = downloads.read_text()
    reason = text[text.index("            reason: >-\n") : text.index("    Properties:\n      Bucket:")]
    downloads.write_text(text.replace(reason, ""))
    failed, _result = converge(moto_env, platform_set)
    assert failed.returncode != 0 and "nothing was changed" in failed.output
    assert (
        "cf/downloads.yaml: Resources.DownloadsBucketPolicy.Metadata.biomage.exemptions[0]: "
        "[BIO012 exemption-valid] the exemption from BIO008 gives no reason" in failed.output
    )
