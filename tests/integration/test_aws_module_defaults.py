"""One `module_defaults: group/biomage.iac.aws` entry drives biomage.iac's AWS modules and amazon.aws's.

Our AWS modules are built on amazon.aws's AnsibleAWSModule and our `aws` action group extends
`amazon.aws.aws` (meta/runtime.yml), so a play sets the connection (endpoint_url, region, profile)
once for the modules of both collections.
The environment of this test holds no AWS_ENDPOINT_URL, AWS_REGION or AWS_PROFILE: only the play's
module_defaults can point the modules at the emulator.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from tests.lib import aws
from tests.lib.ansible_run import ansible_env, run_playbook
from tests.lib.cfn_scenarios import queue_template

pytestmark = pytest.mark.slow
MOTO_ACCOUNT = "123456789012"


def play(group: str, devstack: dict[str, str], template: Path, results: Path) -> list[dict]:
    stack_name = f"biomage-{group}-development"
    return [
        {
            "name": "AWS modules of both collections from one module_defaults group",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "module_defaults": {
                "group/biomage.iac.aws": {
                    "endpoint_url": devstack["AWS_ENDPOINT_URL"],
                    "region": devstack["AWS_REGION"],
                    "profile": devstack["AWS_PROFILE"],
                }
            },
            "tasks": [
                {"name": "amazon.aws: who am I", "amazon.aws.aws_caller_info": {}, "register": "caller"},
                {
                    "name": "biomage.iac: a stack",
                    "biomage.iac.cfn_stacks": {
                        "environment": "development",
                        "group": group,
                        "stacks": [
                            {
                                "name": stack_name,
                                "template": str(template),
                                "parameters": {"Environment": "development"},
                            }
                        ],
                    },
                    "register": "stacks",
                },
                {
                    "name": "amazon.aws: read the stack back",
                    "amazon.aws.cloudformation_info": {"stack_name": stack_name},
                    "register": "info",
                },
                {
                    "name": "biomage.iac: the GitHub Actions OIDC provider",
                    "biomage.iac.github_oidc_provider": {},
                    "register": "oidc",
                },
                {
                    "name": "biomage.iac: a cluster the emulator does not have",
                    "biomage.iac.eks_oidc_provider_info": {"cluster_name": f"missing-{group}"},
                    "register": "eks",
                    "ignore_errors": True,
                },
                {
                    "name": "amazon.aws: delete the stack",
                    "amazon.aws.cloudformation": {"stack_name": stack_name, "state": "absent"},
                },
                {
                    "name": "Keep what the modules returned",
                    "ansible.builtin.copy": {
                        "dest": str(results),
                        "content": "{{ {'caller': caller, 'stacks': stacks, 'info': info, 'oidc': oidc, "
                        "'eks': eks} | to_json }}",
                        "mode": "0600",
                    },
                },
            ],
        }
    ]


def test_one_module_defaults_entry_serves_both_collections(devstack: dict[str, str], tmp_path: Path) -> None:
    group = f"defaults-{uuid.uuid4().hex[:6]}"
    template = tmp_path / "queue.yaml"
    template.write_text(queue_template("defaults", secret=False))
    results = tmp_path / "results.json"
    playbook = tmp_path / "defaults.yml"
    playbook.write_text(yaml.safe_dump(play(group, devstack, template, results), sort_keys=False))
    env = ansible_env(
        AWS_SHARED_CREDENTIALS_FILE=devstack["AWS_SHARED_CREDENTIALS_FILE"],
        AWS_CONFIG_FILE=devstack["AWS_CONFIG_FILE"],
    )
    for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"):
        env.pop(key, None)

    iam = aws.client(devstack, "iam")
    providers_before = {p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
    try:
        run_playbook(playbook, inventory="localhost,", env=env).assert_ok()
    finally:
        # the session stack is shared: leave no OIDC provider the CI privileges tests would find
        for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
            if provider["Arn"] not in providers_before:
                iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider["Arn"])

    out = json.loads(results.read_text())
    assert out["caller"]["account"] == MOTO_ACCOUNT
    assert out["stacks"]["changed"] is True
    assert out["info"]["cloudformation"][f"biomage-{group}-development"]["stack_description"]["stack_status"] == (
        "CREATE_COMPLETE"
    )
    assert out["oidc"]["arn"] == (f"arn:aws:iam::{MOTO_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com")
    # the failure is the emulator's answer (no such cluster), so the call reached it
    assert out["eks"]["failed"] is True
    assert f"EKS cluster missing-{group} does not exist" in out["eks"]["msg"]
    remaining = aws.client(devstack, "cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])
    assert f"biomage-{group}-development" not in {s["StackName"] for s in remaining["StackSummaries"]}
