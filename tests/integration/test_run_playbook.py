"""tools/run-playbook.sh (what CI's plan, resources and deploy workflows run) on the development
inventory and the local stack: the plan is a --check --diff run that changes nothing."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.lib.ansible_run import REPO_ROOT, run_playbook
from tests.lib.aws import all_stacks
from tests.lib.aws import client as aws_client

pytestmark = pytest.mark.slow


def test_a_plan_run_uses_check_and_diff_and_changes_nothing(stack_ansible_env: dict[str, str]) -> None:
    # resources.yml reads the IRSA issuer from the cluster, as in the cloud: the cluster comes first
    run_playbook("playbooks/base.yml", env=stack_ansible_env, args=["--tags", "eks_cluster"]).assert_ok()
    cfn = aws_client(stack_ansible_env, "cloudformation")
    before = sorted(s["StackName"] for s in all_stacks(cfn))
    proc = subprocess.run(
        [str(REPO_ROOT / "tools/run-playbook.sh")],
        env={**stack_ansible_env, "ENVIRONMENT": "development", "PLAYBOOK": "resources", "CHECK": "true"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.startswith(
        "ansible-playbook playbooks/resources.yml -i inventories/development --check --diff\n"
    )
    assert re.search(r"biomage-development\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", proc.stdout)
    assert sorted(s["StackName"] for s in all_stacks(cfn)) == before
