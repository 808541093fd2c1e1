"""tools/migrate_flux_v1.py on the Flux v1 fixture set (tests/fixtures/flux_v1, in the original
platform's format): the diff first, files written only with --write and only when they pass, and
the converted releases then pass tools/check_releases.py, whose failures name file, field and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.lib.ansible_run import REPO_ROOT
from tests.lib.releases import render_chart, rendered_objects
from tools import check_releases, migrate_flux_v1

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "flux_v1"
PLACEHOLDER = "FILLED_IN_BY_CI"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout with this repository's charts/ and the Flux v1 fixtures' releases/ and service/."""
    shutil.copytree(REPO_ROOT / "charts", tmp_path / "charts")
    shutil.copytree(FIXTURES / "releases", tmp_path / "releases")
    shutil.copytree(FIXTURES / "service", tmp_path / "service")
    (tmp_path / "releases" / "development").mkdir()
    return tmp_path


def texts(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def findings(checkout: Path) -> list[str]:
    return [str(f) for f in check_releases.check_tree(checkout / "releases", checkout) if f.severity == "error"]


def migrated(checkout: Path) -> Path:
    assert migrate_flux_v1.main([str(checkout / "releases"), str(checkout / "service"), "--write"]) == 0
    return checkout


def test_the_fixtures_are_flux_v1_and_refused_with_a_pointer_to_the_migration(checkout: Path) -> None:
    found = findings(checkout)
    assert len(found) == 4, found  # one per v1 HelmRelease: ui, api, and the sandbox's two
    for message in found:
        assert "apiVersion: helm.fluxcd.io/v1 is Flux v1 (helm-operator), no longer reconciled." in message
        assert (
            "Fix: write apiVersion helm.toolkit.fluxcd.io/v2 with spec.chart.spec: `python tools/migrate_flux_v1.py"
            in message
        )
    assert "releases/staging/my-sandbox.yaml: document 4 apiVersion" in " ".join(found)


def test_the_diff_comes_first_and_nothing_is_written_without_write(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = texts(checkout / "releases") | texts(checkout / "service")
    assert migrate_flux_v1.main([str(checkout / "releases"), str(checkout / "service")]) == 0
    out, err = capsys.readouterr()
    assert texts(checkout / "releases") | texts(checkout / "service") == before
    assert out.count("+++ b/") == 4
    assert "-apiVersion: helm.fluxcd.io/v1\n+apiVersion: helm.toolkit.fluxcd.io/v2\n" in out
    assert "-    git: git@github.com:biomage-ltd/iac\n" in out
    assert "+      chart: ./charts/nodejs\n" in out
    assert "4 file(s) with Flux v1 HelmReleases: 4 pass the checks (nothing written: run again with --write)" in err
    assert "ui.yaml: document 2: spec.values.livenessProbe -> spec.values.probes.liveness" in err


def test_the_fixture_set_converts_and_validates(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    migrated(checkout)
    assert "written" in capsys.readouterr().err
    assert findings(checkout) == []
    # the service's template: still a template, every placeholder kept, and it passes as one
    template = checkout / "service" / "ui.flux.ci"
    text = template.read_text()
    assert text.startswith("# The ui repository's release template"), "the header comment is kept"
    assert text.count(PLACEHOLDER) == (FIXTURES / "service" / "ui.flux.ci").read_text().count(PLACEHOLDER) - 2
    assert check_releases.main(["--template", str(template)]) == 0
    namespace, release = yaml.safe_load_all(text)
    assert namespace["metadata"]["name"] == PLACEHOLDER
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["chart"]["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": "flux-system",
        "namespace": "flux-system",
    }
    assert release["spec"]["values"]["probes"]["liveness"] == {
        "type": "tcpSocket",
        "initialDelaySeconds": 30,
        "timeoutSeconds": 10,
    }
    # a second run finds nothing left to convert
    assert migrate_flux_v1.main([str(checkout / "releases"), str(checkout / "service")]) == 0
    assert "no Flux v1 HelmRelease found" in capsys.readouterr().err


def test_the_converted_releases_render_with_the_chart(checkout: Path) -> None:
    migrated(checkout)
    api = list(yaml.safe_load_all((checkout / "releases" / "production" / "api.yaml").read_text()))[1]
    objects = rendered_objects(render_chart(api["spec"]["values"], "api", "api-master"))
    assert objects["Ingress/api"]["spec"]["tls"][0]["hosts"] == ["api.scp.biomage.test", "scp.biomage.test"]
    (container,) = objects["Deployment/api"]["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 3000
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/health"
    assert container["livenessProbe"]["initialDelaySeconds"] == 60
    assert objects["PodDisruptionBudget/api"]["spec"]["minAvailable"] == 1


def edit(checkout: Path, rel: str, change) -> None:
    path = checkout / "releases" / rel
    documents = list(yaml.safe_load_all(path.read_text()))
    change(documents)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


@pytest.mark.parametrize(
    ("change", "field", "message", "fix"),
    [
        pytest.param(
            lambda d: d[1]["spec"].update(interval=10),
            "document 2 spec.interval",
            "is an integer (10), the helm.toolkit.fluxcd.io/v2 HelmRelease schema wants a string",
            "give a string matching",
            id="bad-schema",
        ),
        pytest.param(
            lambda d: d[1]["spec"]["values"]["serviceAccount"].update(
                iamRole="arn:aws:iam::000000000000:role/biomage-ui-production-eu-west-1"
            ),
            "document 2 spec.values.serviceAccount.iamRole",
            "names the IAM role biomage-ui-production-eu-west-1 of production in releases/staging/",
            "the RoleArn output of stack biomage-irsa-ui-role-staging",
            id="wrong-environment-role-arn",
        ),
        pytest.param(
            lambda d: d[1]["spec"]["chart"]["spec"].update(chart="./charts/node"),
            "document 2 spec.chart.spec.chart",
            "./charts/node is not a chart of this repository (no ./charts/node/Chart.yaml).",
            "one of ./charts/nodejs",
            id="missing-chart",
        ),
        pytest.param(
            lambda d: d[1]["spec"]["values"].update(readinessProbe={"path": "/health"}),
            "document 2 spec.values.readinessProbe",
            "is not a field of charts/nodejs/values.schema.json",
            "an older shape: write probes.readiness",
            id="unknown-value-key",
        ),
        pytest.param(
            lambda d: d[1]["spec"]["values"]["image"].update(tag=PLACEHOLDER),
            "document 2 spec.values.image.tag",
            "still says FILLED_IN_BY_CI;",
            "change the service repository's .flux.ci template or its CI",
            id="placeholder-left",
        ),
    ],
)
def test_each_failure_class_names_file_field_and_fix(
    checkout: Path, change, field: str, message: str, fix: str
) -> None:
    migrated(checkout)
    edit(checkout, "staging/ui.yaml", change)
    (found,) = findings(checkout)
    assert found.startswith(f"releases/staging/ui.yaml: {field}: {message}")
    assert found.index(" Fix: ") < found.index(fix)
    assert check_releases.main(["--root", str(checkout)]) == 1


def test_a_file_that_would_not_pass_is_not_written(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = checkout / "releases" / "staging" / "ui.yaml"
    path.write_text(
        path.read_text().replace(
            "arn:aws:iam::000000000000:role/biomage-ui-staging-eu-west-1", "biomage-ui-staging-eu-west-1"
        )
    )
    before = path.read_text()
    assert migrate_flux_v1.main([str(path), "--write"]) == 1
    err = capsys.readouterr().err
    assert path.read_text() == before
    assert f"{path}: document 2 spec.values.serviceAccount.accountId: " in err
    assert "Fix: serviceAccount.iamRole is a role name: give serviceAccount.accountId" in err
    assert f"{path}: not written: fix the findings above first" in err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        migrate_flux_v1.main([str(tmp_path / "missing.yaml")])
    assert usage.value.code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: helm.fluxcd.io/v1\nkind: [unclosed\n")
    assert migrate_flux_v1.main([str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
