"""tools/check_releases.py: the rules a release manifest under releases/ must follow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.lib.ansible_run import REPO_ROOT
from tests.lib.releases import EXAMPLE, dump, dump_old_layout, filled_release
from tools import check_releases


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout with this repository's charts/ and an empty releases/<env>/ per environment."""
    shutil.copytree(REPO_ROOT / "charts", tmp_path / "charts")
    for env in check_releases.ENVIRONMENTS:
        (tmp_path / "releases" / env).mkdir(parents=True)
        (tmp_path / "releases" / env / "README.md").write_text("# docs\n")
    return tmp_path


def write(checkout: Path, rel: str, text: str) -> Path:
    path = checkout / "releases" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def messages(checkout: Path) -> list[str]:
    return [str(f) for f in check_releases.check_tree(checkout / "releases", checkout)]


def test_the_repository_releases_pass() -> None:
    assert check_releases.main([]) == 0


def test_a_filled_example_passes(checkout: Path) -> None:
    write(checkout, "staging/ui.yaml", dump(filled_release("staging")))
    write(checkout, "production/ui.yaml", dump(filled_release("production")))
    assert messages(checkout) == []


def test_the_unfilled_example_names_every_placeholder(checkout: Path) -> None:
    write(checkout, "staging/ui.yaml", EXAMPLE.read_text())
    found = messages(checkout)
    assert found, "the template itself must not pass"
    placeholders = [m for m in found if "still says FILLED_IN_BY_CI" in m]
    assert "releases/staging/ui.yaml: document 2 metadata.name: still says FILLED_IN_BY_CI" in " ".join(placeholders)
    assert any("spec.values.image.tag" in m for m in placeholders)
    assert all(".flux.ci template" in m for m in placeholders)


def test_a_flux_v1_release_is_refused_with_the_fix(checkout: Path) -> None:
    namespace, release = filled_release("staging")
    release["apiVersion"] = "helm.fluxcd.io/v1"
    write(checkout, "staging/ui.yaml", dump([namespace, release]))
    (message,) = messages(checkout)
    assert "document 2 apiVersion: helm.fluxcd.io/v1 is Flux v1" in message
    assert "Fix: write apiVersion helm.toolkit.fluxcd.io/v2" in message
    assert "`python tools/migrate_flux_v1.py releases/staging/ui.yaml --write` converts it" in message


def test_other_objects_are_refused(checkout: Path) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "ui-master"}}
    write(checkout, "staging/ui.yaml", dump([*filled_release("staging"), secret]))
    (message,) = messages(checkout)
    assert "document 3 kind: v1/Secret is not allowed here" in message


def test_the_release_namespace_must_be_declared_in_the_file(checkout: Path) -> None:
    write(checkout, "staging/ui.yaml", dump(filled_release("staging")[1:]))
    (message,) = messages(checkout)
    assert "metadata.namespace: 'ui-master' is not declared in this file" in message


def test_a_chart_of_this_repository_must_exist(checkout: Path) -> None:
    namespace, release = filled_release("staging")
    release["spec"]["chart"]["spec"]["chart"] = "./charts/nodejs-typo"
    write(checkout, "staging/ui.yaml", dump([namespace, release]))
    (message,) = messages(checkout)
    assert "spec.chart.spec.chart: ./charts/nodejs-typo is not a chart of this repository" in message
    assert "Fix: one of ./charts/nodejs" in message


def test_a_chart_from_another_source_is_not_looked_up_locally(checkout: Path) -> None:
    namespace, release = filled_release("staging")
    release["spec"]["chart"]["spec"].update(chart="podinfo", sourceRef={"kind": "HelmRepository", "name": "podinfo"})
    write(checkout, "staging/ui.yaml", dump([namespace, release]))
    assert messages(checkout) == []


def test_the_environment_value_must_match_the_folder(checkout: Path) -> None:
    write(checkout, "production/ui.yaml", dump(filled_release("staging")))
    (message,) = messages(checkout)
    assert "spec.values.kubernetes.env: is 'staging' in releases/production/" in message


def test_a_release_is_written_once_per_environment(checkout: Path) -> None:
    write(checkout, "staging/ui.yaml", dump(filled_release("staging")))
    write(checkout, "staging/ui-copy.yaml", dump(filled_release("staging")))
    (message,) = messages(checkout)
    assert message.startswith("releases/staging/ui.yaml: metadata: HelmRelease ui-master/ui-master is also in")


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("ui.yaml", "is outside the environments' folders"),
        ("qa/ui.yaml", "is outside the environments' folders"),
        ("staging/nested/ui.yaml", "is outside the environments' folders"),
        ("staging/ui.json", "is not a .yaml release manifest"),
    ],
)
def test_files_outside_the_rules_are_named(checkout: Path, rel: str, expected: str) -> None:
    write(checkout, rel, "{}\n")
    (message,) = messages(checkout)
    assert message.startswith(f"releases/{rel}: (path): {expected}")


def test_malformed_yaml_is_named(checkout: Path) -> None:
    write(checkout, "staging/ui.yaml", "kind: [unclosed\n")
    (message,) = messages(checkout)
    assert message.startswith("releases/staging/ui.yaml: (file): is not valid YAML")


def test_cli_checks_files_as_if_in_an_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(dump(filled_release("staging")))
    assert check_releases.main(["--env", "staging", str(good)]) == 0
    assert check_releases.main(["--env", "production", str(good)]) == 1
    assert "spec.values.kubernetes.env" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        check_releases.main([str(good)])
    assert usage.value.code == 2


def test_a_root_that_does_not_exist_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_releases.main(["--root", str(tmp_path / "nowhere")]) == 1
    out, err = capsys.readouterr()
    assert "0 release file(s), 1 finding(s)" in out
    assert f"{tmp_path / 'nowhere' / 'releases'}: (root): does not exist or is not a folder" in err


def test_a_root_without_environment_folders_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "releases" / "qa").mkdir(parents=True)
    assert check_releases.main(["--root", str(tmp_path)]) == 1
    assert "(root): holds no environment folder (development, staging, production)" in capsys.readouterr().err


def test_standard_flux_objects_pass(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace, release = filled_release("staging")
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "podinfo", "namespace": "ui-master"},
        "spec": {"interval": "1h", "url": "https://stefanprodan.github.io/podinfo"},
    }
    oci = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "podinfo-oci", "namespace": "ui-master"},
        "spec": {"interval": "10m", "url": "oci://ghcr.io/stefanprodan/charts/podinfo", "ref": {"tag": "6.5.0"}},
    }
    policy = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": "ui", "namespace": "ui-master"},
        "spec": {"imageRepositoryRef": {"name": "ui"}, "policy": {"semver": {"range": "1.x"}}},
    }
    write(checkout, "staging/ui.yaml", dump([namespace, repository, oci, policy, release]))
    found = check_releases.check_tree(checkout / "releases", checkout)
    assert [f for f in found if f.severity == "error"] == []
    assert check_releases.main(["--env", "staging", str(checkout / "releases" / "staging" / "ui.yaml")]) == 0
    assert "1 release file(s), 0 finding(s)" in capsys.readouterr().out


def test_cli_checks_a_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_releases.main(["--template", str(EXAMPLE)]) == 0
    broken = tmp_path / "ui.flux.ci"
    broken.write_text(EXAMPLE.read_text().replace("chart: ./charts/nodejs", "chart: ./charts/nodes"))
    assert check_releases.main(["--template", str(broken)]) == 1
    assert (
        "document 2 spec.chart.spec.chart: ./charts/nodes is not a chart of this repository" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as usage:
        check_releases.main(["--template"])
    assert usage.value.code == 2


def test_a_release_file_of_the_older_layout_is_a_warning_not_an_error(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file written before Flux's lockdown (no release-deployer account): passes, and says to re-run the step."""
    old = write(checkout, "staging/ui.yaml", dump_old_layout(filled_release("staging")))
    assert check_releases.main(["--env", "staging", str(old)]) == 0
    captured = capsys.readouterr()
    assert f"warning: {old}: document 2 (HelmRelease ui-master/ui-master): has no ServiceAccount" in captured.err
    assert "Fix: run the release step again for this release" in captured.err
    assert "1 release file(s), 0 finding(s)" in captured.out
