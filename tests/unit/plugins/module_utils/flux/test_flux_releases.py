"""plugins/module_utils/flux/releases.py: release objects checked against the pinned CRDs' schemas,
the charts' values schemas and the conventions, each finding with file, document, field and fix."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.flux import crd_schema, lockdown
from ansible_collections.biomage.iac.plugins.module_utils.flux import releases as rel

from tests.lib.ansible_run import REPO_ROOT
from tests.lib.releases import EXAMPLE, filled_release

LABEL = "releases/staging/ui.yaml"


@pytest.fixture(scope="module")
def checker() -> rel.ReleaseChecker:
    return rel.ReleaseChecker(REPO_ROOT)


def errors(checker: rel.ReleaseChecker, documents: list, environment: str | None = "staging") -> list[str]:
    report = checker.check_documents(documents, environment, LABEL)
    return [str(f) for f in report.findings if f.severity == "error"]


def namespace(name: str = "podinfo-master") -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def source(kind: str, name: str, spec: dict, ns: str = "podinfo-master") -> dict:
    return {
        "apiVersion": f"{'image' if kind.startswith('Image') else 'source'}.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def standard_objects() -> list[dict]:
    """A podinfo release from OCI, with every standard Flux source and image automation object."""
    return [
        namespace(),
        source("HelmRepository", "podinfo", {"interval": "1h", "url": "https://stefanprodan.github.io/podinfo"}),
        source(
            "OCIRepository",
            "podinfo-oci",
            {"interval": "10m", "url": "oci://ghcr.io/stefanprodan/charts/podinfo", "ref": {"semver": ">=6.0.0"}},
        ),
        source(
            "GitRepository",
            "podinfo-git",
            {"interval": "5m", "url": "https://github.com/stefanprodan/podinfo", "ref": {"branch": "master"}},
        ),
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "podinfo-master"},
            "spec": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "podinfo-oci"}},
        },
        source("ImageRepository", "podinfo", {"image": "ghcr.io/stefanprodan/podinfo", "interval": "5m"}),
        source(
            "ImagePolicy",
            "podinfo",
            {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semver": {"range": "6.x"}}},
        ),
        source(
            "ImageUpdateAutomation",
            "podinfo",
            {
                "interval": "30m",
                "sourceRef": {"kind": "GitRepository", "name": "podinfo-git"},
                "git": {"commit": {"author": {"email": "bot@example.org", "name": "bot"}}},
                "update": {"path": "./", "strategy": "Setters"},
            },
        ),
        # helm-controller's account of the namespace, as the release step writes it (docs/tenants.md)
        *lockdown.deployer_objects("podinfo-master"),
    ]


# --- accepted -----------------------------------------------------------------------------------


def test_the_filled_example_passes_in_every_environment(checker: rel.ReleaseChecker) -> None:
    for environment in rel.ENVIRONMENTS:
        assert errors(checker, filled_release(environment), environment) == []


def test_the_example_template_passes_as_a_template() -> None:
    template = rel.ReleaseChecker(REPO_ROOT, template=True)
    report = template.check_text(EXAMPLE.read_text(), None, "docs/examples/ui.flux.ci")
    assert report.findings == []


def test_standard_flux_sources_and_image_automation_objects_pass(checker: rel.ReleaseChecker) -> None:
    report = checker.check_documents(standard_objects(), "staging", LABEL)
    assert report.errors == []


def test_a_helm_repository_chart_passes(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["chart"]["spec"] = {
        "chart": "podinfo",
        "version": "6.x",
        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
    }
    repository = source(
        "HelmRepository", "podinfo", {"interval": "1h", "url": "https://example.org/charts"}, "ui-master"
    )
    assert errors(checker, [ns, repository, release]) == []


# --- the CRD schema -----------------------------------------------------------------------------


def test_an_unknown_field_is_named_with_the_closest_field(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["chart"]["spec"]["sourceRefs"] = release["spec"]["chart"]["spec"].pop("sourceRef")
    found = errors(checker, [ns, release])
    assert (
        f"{LABEL}: document 2 spec.chart.spec.sourceRefs: is not a field of the helm.toolkit.fluxcd.io/v2 "
        "HelmRelease schema Fix: did you mean spec.chart.spec.sourceRef?"
    ) in " ".join(found)
    assert any(
        "document 2 spec.chart.spec.sourceRef: is required" in f and "Fix: add spec.chart.spec.sourceRef" in f
        for f in found
    )


def test_a_wrong_type_says_what_is_wanted(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["interval"] = 5
    (found,) = errors(checker, [ns, release])
    assert found.startswith(f"{LABEL}: document 2 spec.interval: is an integer (5)")
    assert "Fix: give a string matching ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$ (quote it" in found


def test_an_enum_lists_the_choices(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["chart"]["spec"]["sourceRef"]["kind"] = "OCIRepository"
    (found,) = errors(checker, [ns, release])
    assert 'document 2 spec.chart.spec.sourceRef.kind: is "OCIRepository", not one of' in found
    assert 'Fix: one of "HelmRepository", "GitRepository", "Bucket"' in found


def test_crd_validation_rules_are_evaluated(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "podinfo"}
    (found,) = errors(checker, [ns, release])
    assert found.startswith(f"{LABEL}: document 2 spec: either chart or chartRef must be set")
    assert "Fix: change the object so that the CRD's rule holds: (has(self.chart)" in found


def test_metadata_is_checked_like_the_api_server_does(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["metadata"]["labels"] = {"sandboxId": 42}
    release["metadata"]["namespce"] = "typo"
    found = errors(checker, [ns, release])
    assert any("document 2 metadata.labels.sandboxId: is an integer (42)" in f and "(quote it" in f for f in found)
    assert any(
        "document 2 metadata.namespce: is not a field" in f and "did you mean metadata.namespace?" in f for f in found
    )


def test_a_source_version_the_pinned_flux_does_not_serve_is_named(checker: rel.ReleaseChecker) -> None:
    repository = source("GitRepository", "x", {"interval": "5m", "url": "https://example.org/x"})
    repository["apiVersion"] = "source.toolkit.fluxcd.io/v1beta2"
    (found,) = errors(checker, [namespace(), repository])
    assert "document 2 apiVersion: source.toolkit.fluxcd.io/v1beta2 is not a version of GitRepository" in found
    assert found.endswith("Fix: apiVersion source.toolkit.fluxcd.io/v1")


# --- kinds and where they belong -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "api_version", "fix"),
    [
        ("Secret", "v1", "never commit a Secret"),
        ("Kustomization", "kustomize.toolkit.fluxcd.io/v1", "put the manifests in a chart under charts/"),
        ("HelmChart", "source.toolkit.fluxcd.io/v1", "move its fields into the HelmRelease's spec.chart.spec"),
        ("Bucket", "source.toolkit.fluxcd.io/v1", "a HelmRepository or an OCIRepository"),
        ("ConfigMap", "v1", "make it a template of the release's chart"),
    ],
)
def test_other_kinds_are_refused_with_a_fix_for_the_kind(checker, kind: str, api_version: str, fix: str) -> None:
    other = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "podinfo-master"}}
    (found,) = errors(checker, [namespace(), other])
    assert f"document 2 kind: {api_version}/{kind} is not allowed here" in found
    assert found.index("Fix: ") < found.index(fix)


def test_sources_belong_in_a_namespace_of_the_file(checker: rel.ReleaseChecker) -> None:
    repository = source("HelmRepository", "podinfo", {"url": "https://example.org/charts"}, "elsewhere")
    (found,) = errors(checker, [namespace(), repository])
    assert "document 2 metadata.namespace: 'elsewhere' is not declared in this file." in found
    assert "Fix: add its v1 Namespace to the same file" in found


def test_the_platforms_namespaces_are_not_a_releases(checker: rel.ReleaseChecker) -> None:
    (found,) = errors(checker, [namespace("flux-system")])
    assert "document 1 metadata.name: 'flux-system' is a namespace of the platform itself" in found


def test_image_automation_cannot_write_through_the_read_only_flux_system_source(checker) -> None:
    automation = next(o for o in standard_objects() if o["kind"] == "ImageUpdateAutomation")
    automation["spec"]["sourceRef"] = {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}
    (found,) = errors(checker, [namespace(), automation])
    assert "document 2 spec.sourceRef: is the flux-system GitRepository: its deploy key is read-only" in found


def test_an_own_chart_must_be_reconciled_by_revision(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    del release["spec"]["chart"]["spec"]["reconcileStrategy"]
    (found,) = errors(checker, [ns, release])
    assert "document 2 spec.chart.spec.reconcileStrategy: is ChartVersion (the default)" in found
    assert found.endswith("Fix: reconcileStrategy: Revision")


# --- chart values -------------------------------------------------------------------------------


def test_an_unknown_value_key_is_named_with_its_path(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["ingress"]["subdomian"] = "ui"
    (found,) = errors(checker, [ns, release])
    assert found == (
        f"{LABEL}: document 2 spec.values.ingress.subdomian: is not a field of charts/nodejs/values.schema.json "
        "Fix: did you mean spec.values.ingress.subdomain? Otherwise remove it"
    )


def test_a_value_key_of_an_older_shape_names_its_replacement(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["service"] = {"internalPort": 8080}
    (found,) = errors(checker, [ns, release])
    assert "document 2 spec.values.service.internalPort: is not a field of charts/nodejs/values.schema.json" in found
    assert "Fix: an older shape: write containerPort instead (charts/nodejs/README.md" in found


def test_a_fixed_replica_count_with_the_autoscaler_on_is_refused(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["replicaCount"] = 3
    (found,) = errors(checker, [ns, release])
    assert "document 2 spec.values.replicaCount: is an integer (3)" in found
    assert "Fix: replicaCount is ignored while hpa.enabled is true: set hpa.enabled: false" in found
    release["spec"]["values"]["hpa"] = {"enabled": False}
    assert errors(checker, [ns, release]) == []


def test_an_iam_role_name_needs_the_account(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["serviceAccount"] = {"iamRole": "biomage-ui-staging-eu-west-1"}
    (found,) = errors(checker, [ns, release])
    assert "document 2 spec.values.serviceAccount.accountId: " in found
    assert "Fix: serviceAccount.iamRole is a role name: give serviceAccount.accountId" in found
    release["spec"]["values"]["serviceAccount"]["accountId"] = "000000000000"
    assert errors(checker, [ns, release]) == []


def test_a_malformed_role_arn_is_refused(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["serviceAccount"]["iamRole"] = "arn:aws:iam::1234:role/x"
    (found,) = errors(checker, [ns, release])
    assert (
        'document 2 spec.values.serviceAccount.iamRole: "arn:aws:iam::1234:role/x" matches none of its forms' in found
    )
    assert "the RoleArn output of stack biomage-irsa-<app>-role-<env>" in found


def test_the_role_of_another_environment_is_refused(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["serviceAccount"]["iamRole"] = (
        "arn:aws:iam::000000000000:role/biomage-ui-production-eu-west-1"
    )
    (found,) = errors(checker, [ns, release])
    assert found == (
        f"{LABEL}: document 2 spec.values.serviceAccount.iamRole: names the IAM role biomage-ui-production-eu-west-1 "
        "of production in releases/staging/: the pods would run with production's permissions, or IRSA fails "
        "Fix: the RoleArn output of stack biomage-irsa-ui-role-staging (the service's CI reads it from the staging "
        "IRSA stack)"
    )


def test_a_placeholder_is_one_finding_not_also_a_schema_error(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["serviceAccount"]["iamRole"] = rel.PLACEHOLDER
    release["spec"]["interval"] = rel.PLACEHOLDER
    found = errors(checker, [ns, release])
    assert found == [
        f"{LABEL}: document 2 spec.interval: still says FILLED_IN_BY_CI; Fix: {rel.FIX_TEMPLATE}",
        f"{LABEL}: document 2 spec.values.serviceAccount.iamRole: still says FILLED_IN_BY_CI; Fix: {rel.FIX_TEMPLATE}",
    ]


@pytest.mark.parametrize(
    ("key", "value", "message", "fix"),
    [
        ("containerPort", 0, "0 is less than the minimum of 1", "Fix: a value of at least 1"),
        ("hpa", {"maxReplicas": 0}, "0 is less than the minimum of 1", "Fix: a value of at least 1"),
        (
            "ingress",
            {"extraHosts": ["a.example.org", "a.example.org"]},
            "has non-unique elements",
            "list each entry once",
        ),
    ],
)
def test_bounds_say_the_bound(checker: rel.ReleaseChecker, key: str, value: object, message: str, fix: str) -> None:
    ns, release = filled_release("staging")
    current = release["spec"]["values"].get(key)
    release["spec"]["values"][key] = {**current, **value} if isinstance(value, dict) and current else value
    (found,) = errors(checker, [ns, release])
    assert message in found
    assert fix in found


def test_helm_merges_values_like_the_checker() -> None:
    merged = rel.coalesce({"a": {"b": 1, "c": 2}, "d": [1], "e": 1}, {"a": {"b": 3}, "d": [2], "e": None})
    assert merged == {"a": {"b": 3, "c": 2}, "d": [2]}


# --- across files: a releases/ tree -------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "charts", tmp_path / "charts")
    for environment in rel.ENVIRONMENTS:
        (tmp_path / "releases" / environment).mkdir(parents=True)
    return tmp_path


def write(tree: Path, rel_path: str, documents: list) -> None:
    (tree / "releases" / rel_path).write_text(yaml.safe_dump_all(documents, sort_keys=False))


def tree_errors(tree: Path) -> list[str]:
    checker = rel.ReleaseChecker(tree, REPO_ROOT / rel.CRD_DIR)
    return [str(f) for f in checker.check_tree(tree / "releases") if f.severity == "error"]


def test_two_releases_serving_one_host_are_refused(tree: Path) -> None:
    write(tree, "staging/ui.yaml", filled_release("staging"))
    ns, release = filled_release("staging", ref="my-sandbox")  # subdomain "ui" as well
    write(tree, "staging/ui-my-sandbox.yaml", [ns, release])
    (found,) = tree_errors(tree)
    assert found.startswith(
        "releases/staging/ui.yaml: document 2 spec.values.ingress: serves ui.scp-staging.biomage.test, which "
        "HelmRelease ui-my-sandbox/ui-my-sandbox in releases/staging/ui-my-sandbox.yaml serves already"
    )
    assert "Fix: one host per release: a distinct ingress.subdomain" in found
    release["spec"]["values"]["ingress"]["subdomain"] = "ui-my-sandbox"
    write(tree, "staging/ui-my-sandbox.yaml", [ns, release])
    assert tree_errors(tree) == []


def test_an_extra_host_counts_as_served(tree: Path) -> None:
    write(tree, "production/ui.yaml", filled_release("production", domain="scp.biomage.test"))
    ns, release = filled_release("production", ref="api", domain="scp.biomage.test")
    release["spec"]["values"]["ingress"].update(subdomain="api", extraHosts=["ui.scp.biomage.test"])
    write(tree, "production/api.yaml", [ns, release])
    (found,) = tree_errors(tree)  # api.yaml comes first: ui.yaml is named
    assert found.startswith(
        "releases/production/ui.yaml: document 2 spec.values.ingress: serves ui.scp.biomage.test, which "
        "HelmRelease ui-api/ui-api in releases/production/api.yaml serves already"
    )


def test_an_object_declared_in_two_files_is_named_once(tree: Path) -> None:
    write(tree, "staging/a.yaml", filled_release("staging"))
    ns, release = filled_release("staging")
    release["metadata"]["name"] = "ui-other"
    release["spec"]["values"]["ingress"]["subdomain"] = "ui-other"
    write(tree, "staging/b.yaml", [ns, release])
    (found,) = tree_errors(tree)
    assert found.startswith(
        "releases/staging/b.yaml: metadata: Namespace ui-master is also in releases/staging/a.yaml."
    )


def test_a_root_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    checker = rel.ReleaseChecker(REPO_ROOT)
    (found,) = checker.check_tree(tmp_path / "nowhere")
    assert found.severity == "error"
    assert str(found).startswith(f"{tmp_path / 'nowhere'}: (root): does not exist or is not a folder")


def test_a_root_without_environment_folders_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "releases" / "qa").mkdir(parents=True)
    (found,) = rel.ReleaseChecker(REPO_ROOT).check_tree(tmp_path / "releases")
    assert "(root): holds no environment folder (development, staging, production)" in str(found)
    (tmp_path / "checkout" / "releases" / "staging").mkdir(parents=True)
    (found,) = rel.ReleaseChecker(REPO_ROOT).check_tree(tmp_path / "checkout")
    assert str(found).endswith("Fix: give the checkout above it (the folder holding releases/)")


def test_no_crds_is_an_error_not_a_pass(tmp_path: Path) -> None:
    with pytest.raises(crd_schema.ReleaseError) as raised:
        crd_schema.CrdSchemas(tmp_path)
    assert "no CustomResourceDefinitions in" in str(raised.value)
    assert "Fix:" in str(raised.value)


# --- the Kubernetes schema extensions, on schemas of their own ------------------------------------

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.org"},
    "spec": {
        "group": "example.org",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "!has(self.mode) || self.mode == 'a' || has(self.extra)",
                                        "message": "mode b needs extra",
                                    },
                                    {"rule": "self.size(x) > 1", "message": "not understood: skipped"},
                                    {"rule": "self.missing == 'x'", "message": "reads an absent field: skipped"},
                                ],
                                "properties": {
                                    "port": {
                                        "x-kubernetes-int-or-string": True,
                                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                                    },
                                    "bare": {"x-kubernetes-int-or-string": True},
                                    "open": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                        "properties": {"a": {"type": "string"}},
                                    },
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": True,
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                    "maybe": {"type": "string", "nullable": True},
                                    "tags": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "x-kubernetes-list-type": "set",
                                    },
                                    "ports": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {
                                            "type": "object",
                                            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                                        },
                                    },
                                    "mode": {"type": "string", "default": "a"},
                                    "extra": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def widgets(tmp_path: Path) -> crd_schema.CrdSchemas:
    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump(CRD))
    return crd_schema.CrdSchemas(tmp_path)


def widget_errors(widgets: crd_schema.CrdSchemas, spec: dict) -> list[str]:
    doc = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "n"}, "spec": spec}
    ctx = crd_schema.SchemaContext("w.yaml", 1, (), "the Widget schema")
    validator = widgets.validator("example.org", "v1", "Widget")
    return [str(f) for f in crd_schema.schema_findings(validator, doc, ctx, False)]


def test_extensions_accept_what_the_api_server_accepts(widgets: crd_schema.CrdSchemas) -> None:
    spec = {
        "port": "http",
        "bare": 8080,
        "open": {"a": "x", "anything": {"goes": True}},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"free": 1}},
        "maybe": None,
        "tags": ["a", "b"],
        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
        "mode": "b",
        "extra": "needed",
    }
    assert widget_errors(widgets, spec) == []
    assert widgets.served("example.org", "Widget") == ("v1",)


def test_extensions_refuse_what_the_api_server_refuses(widgets: crd_schema.CrdSchemas) -> None:
    found = widget_errors(
        widgets,
        {
            "port": 1.5,
            "bare": [],
            "open": {"a": 1},
            "template": {"metadata": {"nam": "p"}},
            "tags": ["a", "a"],
            "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}],
            "mode": "b",
            "unknown": 1,
        },
    )
    text = "\n".join(found)
    assert "document 1 spec.port: is a number, must be an integer or a string" in text
    assert "document 1 spec.bare: is a list, must be an integer or a string" in text
    assert "document 1 spec.open.a: is an integer (1)" in text
    assert "document 1 spec.template.apiVersion: is required" in text
    assert "document 1 spec.template.kind: is required" in text
    assert "document 1 spec.template.metadata.nam: is not a field" in text
    assert "document 1 spec.tags[1]: repeats 'a' (a set)" in text
    assert "document 1 spec.ports[1]: repeats the entry name='http' of item [0]" in text
    assert "document 1 spec: mode b needs extra" in text
    assert "document 1 spec.unknown: is not a field of the Widget schema" in text
    assert "skipped" not in text, "rules outside the supported CEL, or reading absent fields, are never guessed"


@pytest.mark.parametrize(
    ("rule", "instance", "expected"),
    [
        ("has(self.a) || has(self.b)", {"a": 1}, True),
        ("has(self.a) && has(self.b)", {"a": 1}, False),
        ("!has(self.a.b) || self.a.b == 'x'", {"a": {"b": "x"}}, True),
        ("!has(self.a.b) || self.a.b == 'x'", {"a": {"b": "y"}}, False),
        ("self.a != 'x' || !has(self.b)", {"a": "x", "b": 1}, False),
        ("(has(self.a) && !has(self.b)) || (!has(self.a) && has(self.b))", {}, False),
        ("self.missing == 'x' || has(self.a)", {"a": 1}, True),  # true || error is true in CEL
    ],
)
def test_the_cel_subset(rule: str, instance: dict, expected: bool) -> None:
    assert crd_schema._Cel(rule, instance, {}).evaluate() is expected


def test_cel_outside_the_subset_is_skipped() -> None:
    with pytest.raises(crd_schema._CelUnsupported):
        crd_schema._Cel("self.size() > 1", {}, {}).evaluate()
    with pytest.raises(crd_schema._CelUnknown):
        crd_schema._Cel("self.missing == 'x'", {}, {}).evaluate()


def test_structural_leaves_the_crd_untouched() -> None:
    schema = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    before = copy.deepcopy(schema)
    converted = crd_schema.structural(schema, top=True)
    assert schema == before
    assert converted["additionalProperties"] is False
    assert "additionalProperties" not in converted["properties"]["spec"]["properties"]["open"]
    assert converted["properties"]["spec"]["properties"]["maybe"]["type"] == ["string", "null"]


def test_image_automation_objects_are_checked_against_their_crds(checker: rel.ReleaseChecker) -> None:
    assert checker.schemas.served("image.toolkit.fluxcd.io", "ImagePolicy") == ("v1",)
    assert checker.check_documents(standard_objects(), "staging", LABEL).findings == []
    policy = source("ImagePolicy", "podinfo", {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semvr": {}}})
    found = errors(checker, [namespace(), policy])
    assert any(
        f.startswith(
            f"{LABEL}: document 2 spec.policy.semvr: is not a field of the image.toolkit.fluxcd.io/v1 "
            "ImagePolicy schema"
        )
        and "did you mean spec.policy.semver?" in f
        for f in found
    ), found


def test_a_kind_whose_crd_is_missing_is_checked_for_conventions_with_a_notice(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    shutil.copytree(REPO_ROOT / rel.CRD_DIR, crds, ignore=shutil.ignore_patterns("image.toolkit.*"))
    report = rel.ReleaseChecker(REPO_ROOT, crds).check_documents(standard_objects(), "staging", LABEL)
    assert report.errors == []
    assert [f.field for f in report.findings] == [
        "document 6 apiVersion",
        "document 7 apiVersion",
        "document 8 apiVersion",
    ]
    for finding in report.findings:
        assert finding.severity == "notice"
        assert "holds no CRD for it, so only the conventions were checked" in finding.message
        assert "make -C tools/crds" in finding.fix
