"""`.ci.yaml` texts for the unit tests of the CI privileges (github/ci_config, ci_template, ci_privileges)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_privileges
from ansible_collections.biomage.iac.plugins.module_utils.github.ci_config import CiConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = json.loads((REPO_ROOT / "tools/devstack/github_seed.json").read_text())
UI_CI = next(r for r in SEED if r["name"] == "ui")["files"][".ci.yaml"]
OWNER = "biomage-org"


def ci_yaml(statement: str, extra_policy: str = "") -> str:
    return (
        "ci-policies:\n"
        "  - PolicyName: first\n"
        "    PolicyDocument:\n"
        "      Version: '2012-10-17'\n"
        "      Statement:\n"
        f"        - {statement}\n" + extra_policy
    )


def problems(text: str, repo: str = "ui") -> list[str]:
    """Every problem ``ci_privileges.build`` finds in ``text`` (it must find one)."""
    with pytest.raises(CiConfigError) as caught:
        ci_privileges.build(text, OWNER, repo, ["main"])
    return caught.value.problems
