"""The release step's filling of .flux.ci, its inputs, and its optimistic writes (conflicts retried
on the new head, bounded; nothing written in check mode; unchanged content makes no commit)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown, release_step
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubError

EXAMPLE = Path(__file__).resolve().parents[5] / "docs/examples/ui.flux.ci"


def release(**overrides: object) -> release_step.Release:
    values = dict(app="ui", environment="staging", ref="feature/X", commit="abcdef0123456789", ci_repo="o/ui",
                  image_registry="1.dkr.ecr.eu-west-1.amazonaws.com", role_arn="arn:aws:iam::1:role/r",
                  domain="d.test")  # fmt: skip
    values.update(overrides)
    return release_step.Release(**values)  # type: ignore[arg-type]


def test_every_ci_field_of_the_example_is_filled() -> None:
    documents, filled = release_step.fill(EXAMPLE.read_text(), release(sandbox="sb"))
    text = release_step.render(documents, release(sandbox="sb"))
    assert "FILLED_IN_BY_CI" not in text
    namespace, helm = documents
    assert namespace["metadata"] == {"name": "ui-sb", "labels": {"sandboxId": "sb"}}
    assert helm["spec"]["values"]["image"]["tag"] == "feature-x-abcdef0"
    assert helm["spec"]["values"]["ingress"]["subdomain"] == "ui-sb"
    assert "spec.values.serviceAccount.iamRole" in filled
    assert release(sandbox="sb").path == "releases/staging/ui-sb.yaml" and release().path == "releases/staging/ui.yaml"


def test_wrong_inputs_are_named() -> None:
    with pytest.raises(release_step.ReleaseStepError) as caught:
        release(app="UI_x", environment="production", sandbox="sb", commit="nope").check()
    text = str(caught.value)
    assert "app:" in text and "sandbox: sandboxes live in staging" in text and "commit:" in text


class Repo:
    """A file store with GitHub's optimistic writes; ``races`` writes by others happen before ours."""

    def __init__(self, text: str | None = None, races: int = 0) -> None:
        self.text, self.version, self.races, self.commits = text, 0, races, []

    def get_file_with_sha(self, owner: str, repo: str, path: str) -> tuple[str, str] | None:
        return None if self.text is None else (self.text, f"sha{self.version}")

    def _race(self) -> None:
        if self.races:
            self.races -= 1
            self.text, self.version = f"other {self.version}", self.version + 1
            raise GitHubError("conflict", status=409)

    def put_file(self, owner: str, repo: str, path: str, text: str, message: str, sha: str | None = None) -> str:
        self._race()
        assert sha == (None if self.text is None else f"sha{self.version}")
        self.text, self.version = text, self.version + 1
        self.commits.append(message)
        return f"c{len(self.commits)}"

    def delete_file(self, owner: str, repo: str, path: str, message: str, sha: str) -> str:
        self._race()
        self.text = None
        self.commits.append(message)
        return f"c{len(self.commits)}"


def test_a_conflict_is_retried_on_the_new_head() -> None:
    repo = Repo("old", races=2)
    waits: list[float] = []
    action, before, commit, conflicts = release_step.write(repo, "o", "r", "p", "new", "m", sleep=waits.append)
    assert (action, commit, conflicts, repo.text) == ("update", "c1", 2, "new")
    assert before.startswith("other ") and len(waits) == 2 and all(0 <= w <= release_step.BACKOFF_CAP for w in waits)


def test_conflicts_are_bounded() -> None:
    repo = Repo("old", races=99)
    with pytest.raises(release_step.ReleaseStepError) as caught:
        release_step.write(repo, "o", "r", "p", "new", "m", attempts=3, sleep=lambda s: None)
    assert "3 times in a row" in str(caught.value) and "Fix:" in str(caught.value)


def test_unchanged_content_and_check_mode_write_nothing() -> None:
    repo = Repo("same")
    assert release_step.write(repo, "o", "r", "p", "same", "m")[0] == "unchanged"
    assert release_step.write(repo, "o", "r", "p", "new", "m", check_mode=True)[0] == "update"
    assert release_step.write(repo, "o", "r", "p", None, "m", check_mode=True)[0] == "delete"
    assert repo.commits == [] and repo.text == "same"
    assert release_step.write(Repo(None), "o", "r", "p", None, "m")[0] == "unchanged"


def test_every_release_file_gets_helm_controllers_account(tmp_path: Path) -> None:
    """The step appends the release namespace's release-deployer account and RoleBinding (Flux's multi-tenancy
    lockdown) to what the template holds, so that services' templates need no change; a second run changes
    nothing."""
    repo = Repo()
    checkout = Path(__file__).resolve().parents[5]
    arn = "arn:aws:iam::000000000000:role/biomage-ui-staging-eu-west-1"
    done = release_step.run(repo, "o", "r", release(sandbox="sb", role_arn=arn), EXAMPLE.read_text(), checkout)
    assert done["action"] == "create" and done["notices"] == []
    documents = list(yaml.safe_load_all(repo.text))
    assert [d["kind"] for d in documents] == ["Namespace", "HelmRelease", "ServiceAccount", "RoleBinding"]
    assert documents[2:] == lockdown.deployer_objects("ui-sb")
    again = release_step.run(repo, "o", "r", release(sandbox="sb", role_arn=arn), EXAMPLE.read_text(), checkout)
    assert again["action"] == "unchanged" and len(repo.commits) == 1
