"""Fill docs/examples/ui.flux.ci the way a service's CI does, and render charts/ with helm, for the
release tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown

from tests.lib.ansible_run import REPO_ROOT

EXAMPLE = REPO_ROOT / "docs/examples/ui.flux.ci"


def filled_release(
    environment: str, ref: str = "master", domain: str = "scp-staging.biomage.test"
) -> list[dict[str, Any]]:
    """The example's Namespace and HelmRelease with every FILLED_IN_BY_CI value set."""
    namespace, release = yaml.safe_load_all(EXAMPLE.read_text(encoding="utf-8"))
    name = f"ui-{ref}"
    namespace["metadata"]["name"] = name
    namespace["metadata"]["labels"]["sandboxId"] = ref
    release["metadata"].update(name=name, namespace=name)
    release["metadata"]["annotations"] = {"biomage.net/ci-repo": "biomage-org/ui", "biomage.net/ci-sha": "0" * 40}
    values = release["spec"]["values"]
    values["biomageCi"] = {"repo": "biomage-org/ui", "ref": ref}
    values["image"].update(registry="000000000000.dkr.ecr.eu-west-1.amazonaws.com", tag=f"{ref}-{'0' * 7}")
    values["kubernetes"]["env"] = environment
    values["serviceAccount"]["iamRole"] = f"arn:aws:iam::000000000000:role/biomage-ui-{environment}-eu-west-1"
    values["ingress"].update(domainName=domain, subdomain="ui")
    return [namespace, release]


def dump(documents: list[dict[str, Any]]) -> str:
    """A release file as the release step writes it: ``documents`` followed by the ServiceAccount and
    RoleBinding release-deployer of each HelmRelease's namespace (docs/tenants.md)."""
    return yaml.safe_dump_all(lockdown.with_deployer(documents), sort_keys=False)


def dump_old_layout(documents: list[dict[str, Any]]) -> str:
    """A release file of the layout before Flux's lockdown (no release-deployer account): ``documents`` only."""
    return yaml.safe_dump_all(documents, sort_keys=False)


def helm() -> str:
    """The pinned helm of the virtualenv (make setup), else the one on PATH."""
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    assert found, "helm is not installed: run tools/kube/install-tools.sh (make setup)"
    return found


def render_chart(
    values: dict[str, Any], release: str = "ui", namespace: str = "ui-master", chart: str = "nodejs"
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of one of charts/ with ``values`` given as a values file, as Flux does."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
        yaml.safe_dump(values, values_file)
        values_file.flush()
        return subprocess.run(
            [
                helm(),
                "template",
                release,
                str(REPO_ROOT / "charts" / chart),
                f"--namespace={namespace}",
                "-f",
                values_file.name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )


def rendered_objects(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(result.stdout) if d}


def irsa_template(app: str, environment: str, region: str = "eu-west-1") -> str:
    """A CloudFormation template like cf/irsa-<app>-role.yaml, reduced to its role and RoleArn output
    (for the release step's lookup of stack biomage-irsa-<app>-role-<environment>)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = {"RoleName": f"biomage-{app}-{environment}-{region}", "AssumeRolePolicyDocument": trust}
    return json.dumps(
        {
            "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": role}},
            "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}}},
        }
    )
