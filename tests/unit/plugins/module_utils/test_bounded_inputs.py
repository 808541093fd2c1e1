"""Every file read from a repository or the inventory goes through the bounded YAML loader: a `.ci.yaml`
(github/ci_config), a release or chart values (flux/releases), the cluster config (eks/config), a
service's `.flux.ci` (flux/release_step) and a template or allow-list in template syntax
(cloudformation/template). Each refuses an alias bomb and an oversized file at once, naming the file
and the limit, and does so in bounded memory (a child process under an address-space limit).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template
from ansible_collections.biomage.iac.plugins.module_utils.eks.config import parse_config
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.flux import releases
from ansible_collections.biomage.iac.plugins.module_utils.flux.releases import load_documents
from ansible_collections.biomage.iac.plugins.module_utils.github.ci_config import CiConfigError, parse_file

from tests.lib.ansible_run import REPO_ROOT


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


TEN_MB = "ci-policies:\n" + "  # padding\n" * (10 * 1024 * 1024 // 12)


def test_ci_yaml_alias_bomb_names_the_file_and_the_limit() -> None:
    with pytest.raises(CiConfigError) as refused:
        parse_file(alias_bomb(), "biomage-org", "ui")
    assert "biomage-org/ui:.ci.yaml" in str(refused.value)
    assert "expands to more than 200000 nodes" in str(refused.value)


def test_a_10_mb_ci_yaml_is_refused_before_parsing() -> None:
    started = time.monotonic()
    with pytest.raises(CiConfigError) as refused:
        parse_file(TEN_MB, "biomage-org", "ui")
    assert time.monotonic() - started < 1
    assert f"biomage-org/ui:.ci.yaml: {len(TEN_MB)} bytes exceeds the limit of 262144 bytes" in str(refused.value)


def test_a_release_file_alias_bomb_names_the_file() -> None:
    with pytest.raises(safe_yaml.InputLimitError, match=r"^releases/staging/ui.yaml: the document expands"):
        load_documents(alias_bomb(), "releases/staging/ui.yaml")


def test_the_cluster_config_alias_bomb_names_the_file() -> None:
    with pytest.raises(EksError) as refused:
        parse_config(alias_bomb(), "infra/cluster.yaml")
    assert str(refused.value).startswith("infra/cluster.yaml: the document expands to more than 200000 nodes")


def test_a_template_alias_bomb_names_the_file() -> None:
    with pytest.raises(safe_yaml.InputLimitError, match=r"^cf/sqs.yaml: the document expands"):
        load_template("Resources:\n  Q: {Type: AWS::SQS::Queue}\n" + alias_bomb(), "cf/sqs.yaml")


def test_a_release_check_reports_the_limit_as_a_finding() -> None:
    checker = releases.ReleaseChecker(REPO_ROOT)
    report = checker.check_text(alias_bomb(), "staging", "releases/staging/ui.yaml")
    (finding,) = report.findings
    assert finding.path == "releases/staging/ui.yaml" and "expands to more than 200000 nodes" in finding.message


@pytest.mark.parametrize(
    "call",
    [
        "from ansible_collections.biomage.iac.plugins.module_utils.github.ci_config import parse_file as f; "
        "f(TEXT, 'biomage-org', 'ui')",
        "from ansible_collections.biomage.iac.plugins.module_utils.flux.releases import load_documents as f; "
        "f(TEXT, 'releases/staging/ui.yaml')",
        "from ansible_collections.biomage.iac.plugins.module_utils.eks.config import parse_config as f; "
        "f(TEXT, 'infra/cluster.yaml')",
        "from ansible_collections.biomage.iac.plugins.module_utils.flux.release_step import fill as f; "
        "f(TEXT, None, '.flux.ci')",
        "from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template as f; "
        "f(TEXT, 'cf/sqs.yaml')",
    ],
    ids=["ci_yaml", "release", "cluster_config", "flux_ci", "template"],
)
@pytest.mark.parametrize("kind", ["alias_bomb", "ten_mb"])
def test_hostile_inputs_fail_fast_in_bounded_memory(call: str, kind: str) -> None:
    text = alias_bomb(10) if kind == "alias_bomb" else TEN_MB
    code = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (400 * 1024 * 1024, 400 * 1024 * 1024))
        sys.path.insert(0, {str(REPO_ROOT / "collections")!r})
        TEXT = sys.stdin.read()
        try:
            {call}
        except Exception as exc:
            print(type(exc).__name__, str(exc)[:400])
        else:
            print("accepted")
        """
    )
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert time.monotonic() - started < 20
    assert "MemoryError" not in child.stdout and "accepted" not in child.stdout
    assert "exceeds the limit" in child.stdout or "expands to more than" in child.stdout, child.stdout
