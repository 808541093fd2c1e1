"""Every role's molecule scenarios (delegated driver on the control node, against the session's
local stack): converge, idempotence (second run changed=0), verify incl. check mode after apply."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, ansible_env

pytestmark = pytest.mark.slow
BASE_CONFIG = REPO_ROOT / "tests/molecule/base.yml"
SCENARIOS = sorted(REPO_ROOT.glob("roles/*/molecule/*/molecule.yml"))


def test_every_role_has_a_scenario() -> None:
    roles = {p.name for p in (REPO_ROOT / "roles").iterdir() if p.is_dir()}
    with_scenario = {p.parents[2].name for p in SCENARIOS}
    assert roles == with_scenario, f"roles without a molecule scenario: {sorted(roles - with_scenario)}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: f"{p.parents[2].name}-{p.parent.name}")
def test_molecule_scenario(scenario: Path, stack_ansible_env: dict[str, str], tmp_path: Path) -> None:
    role_dir = scenario.parents[2]
    # Molecule's default ephemeral directory is ~/.ansible/tmp/molecule.<hash of the role folder's
    # *name*>.<scenario>: shared by every clone on the machine, so a run killed in another clone
    # leaves state (and scripts pointing at that clone's virtualenv) behind. Each run gets its own.
    ephemeral = tmp_path / "molecule"
    proc = subprocess.run(
        [str(BIN_DIR / "molecule"), "-c", str(BASE_CONFIG), "test", "-s", scenario.parent.name],
        cwd=role_dir,
        env={
            **stack_ansible_env,
            "NO_COLOR": "1",
            "PY_COLORS": "0",
            "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        },
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    recap = re.search(r"actions=(\d+)\s+successful=(\d+).*failed=(\d+)", output)
    assert recap, output[-3000:]
    actions, successful, failed = map(int, recap.groups())
    assert failed == 0 and successful == actions >= 4, output[-3000:]


def test_stack_env_is_complete_for_molecule(stack_ansible_env: dict[str, str]) -> None:
    assert ansible_env()["ANSIBLE_CONFIG"] == stack_ansible_env["ANSIBLE_CONFIG"]
    assert Path(stack_ansible_env["BIOMAGE_DEVSTACK_DIR"], "env").is_file()
