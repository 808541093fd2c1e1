"""The repository is an installable Ansible collection whose metadata holds together."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import yaml
from ansible_collections.biomage.iac.plugins.module_utils.eks.eksctl import MIN_EKSCTL_VERSION, parse_version

from tests.lib.fake_eksctl import VERSION_INFO

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _galaxy() -> dict:
    return yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())


def test_galaxy_metadata() -> None:
    galaxy = _galaxy()
    assert (galaxy["namespace"], galaxy["name"]) == ("biomage", "iac")
    assert galaxy["license"] and galaxy["repository"] and galaxy["tags"]
    for ignored in (".venv", ".cache", ".devstack", "tests/output"):
        assert ignored in galaxy["build_ignore"]


def test_runtime_metadata_requires_the_pinned_core() -> None:
    runtime = yaml.safe_load((REPO_ROOT / "meta/runtime.yml").read_text())
    pinned = next(
        line.split("==")[1]
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("ansible-core==")
    )
    minimum = runtime["requires_ansible"].removeprefix(">=")
    assert tuple(map(int, pinned.split(".")[:2])) >= tuple(map(int, minimum.split(".")[:2]))
    modules = {p.stem for p in (REPO_ROOT / "plugins/modules").glob("*.py") if p.stem != "__init__"}
    # a group's `metadata` entry (extend_group) is not a module
    grouped = {name for group in runtime.get("action_groups", {}).values() for name in group if isinstance(name, str)}
    assert grouped <= modules, f"action_groups name modules that do not exist: {grouped - modules}"
    assert modules <= grouped, f"modules in no action group (module_defaults cannot reach them): {modules - grouped}"


def test_sanity_runs_without_ignore_files() -> None:
    ignores = sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("tests/sanity/ignore-*.txt"))
    assert ignores == [], "ansible-test sanity must pass without ignore entries"


def test_collection_symlink_points_at_the_checkout() -> None:
    link = REPO_ROOT / "collections/ansible_collections/biomage/iac"
    assert link.is_symlink() and link.resolve() == REPO_ROOT


def test_every_role_has_argument_specs_readme_and_prefixed_defaults() -> None:
    roles = [p for p in (REPO_ROOT / "roles").iterdir() if p.is_dir()]
    assert roles
    for role in roles:
        assert (role / "meta/argument_specs.yml").is_file(), role.name
        assert (role / "README.md").is_file(), role.name
        defaults = role / "defaults/main.yml"
        if defaults.is_file():
            for var in yaml.safe_load(defaults.read_text()) or {}:
                assert var.startswith(f"{role.name}_"), f"{role.name}: default {var} lacks the role prefix"


def test_build_produces_an_installable_artefact(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (artefact,) = out.glob("biomage-iac-*.tar.gz")
    with tarfile.open(artefact) as tar:
        names = tar.getnames()
    assert "roles/preflight/tasks/main.yml" in names
    assert not [n for n in names if n.startswith((".venv", ".devstack", ".cache", "collections/"))]
    install = tmp_path / "installed"
    subprocess.run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--no-deps",
            "--force",
            "-p",
            str(install),
            str(artefact),
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    doc = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "role", "biomage.iac.preflight"],
        env={"ANSIBLE_COLLECTIONS_PATH": str(install), "PATH": str(BIN)},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "preflight_environment" in doc.stdout, doc


def test_execution_environment_pins_match_the_lock() -> None:
    ee = yaml.safe_load((REPO_ROOT / "meta/execution-environment.yml").read_text())
    lock = {
        line.split("==")[0].lower(): line.split("==")[1]
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    }
    pins = [
        line.split("==")
        for line in (REPO_ROOT / ee["dependencies"]["python"]).read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins
    for name, version in pins:
        assert lock.get(name.lower()) == version, f"{name}=={version} differs from requirements.txt"


def test_tool_pins_match_the_builds_and_the_eksctl_minimum() -> None:
    pins = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "meta/tool-versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(pins) == {"EKSCTL_VERSION", "KUBECTL_VERSION", "HELM_VERSION"}

    def go_mod_version(folder: str, module: str) -> str:
        for line in (REPO_ROOT / "tools/kube" / folder / "go.mod").read_text().splitlines():
            fields = line.split()
            if fields[:1] == [module]:
                return fields[1].removeprefix("v")
        raise AssertionError(f"{module} is not required in tools/kube/{folder}/go.mod")

    assert pins["KUBECTL_VERSION"] == go_mod_version("kubernetes", "k8s.io/kubernetes")
    assert pins["HELM_VERSION"] == go_mod_version("helm", "helm.sh/helm/v4")
    assert parse_version(pins["EKSCTL_VERSION"]) >= parse_version(MIN_EKSCTL_VERSION)
    assert VERSION_INFO["Version"] == pins["EKSCTL_VERSION"], "the scripted eksctl replays the pinned release"
    assert "meta/tool-versions.env" in (REPO_ROOT / "meta/ee-bindep.txt").read_text()
