"""tools/plan_comment.py: one comment per environment, found by its hidden marker and updated on every
push, against a small fake of GitHub's issue-comment endpoints (list, create, update)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import plan_comment
import pytest

REPO = "biomage-org/iac"


class FakeGitHub:
    def __init__(self) -> None:
        self.comments: list[dict] = [{"id": 1, "body": "a reviewer's comment"}]
        self.calls: list[tuple[str, str]] = []


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def _reply(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_GET(self) -> None:
            fake.calls.append(("GET", self.path))
            assert self.headers["Authorization"] == "Bearer t0ken"
            match = re.fullmatch(rf"/repos/{REPO}/issues/7/comments\?per_page=(\d+)&page=(\d+)", self.path)
            assert match, self.path
            size, page = int(match[1]), int(match[2])
            self._reply(200, fake.comments[(page - 1) * size : page * size])

        def do_POST(self) -> None:
            fake.calls.append(("POST", self.path))
            assert self.path == f"/repos/{REPO}/issues/7/comments"
            comment = {"id": 100 + len(fake.comments), "body": self._body()["body"]}
            fake.comments.append(comment)
            self._reply(201, comment)

        def do_PATCH(self) -> None:
            fake.calls.append(("PATCH", self.path))
            comment_id = int(self.path.rsplit("/", 1)[1])
            assert self.path == f"/repos/{REPO}/issues/comments/{comment_id}"
            comment = next(c for c in fake.comments if c["id"] == comment_id)
            comment["body"] = self._body()["body"]
            self._reply(200, comment)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    try:
        yield fake
    finally:
        server.shutdown()


def post(tmp_path: Path, environment: str, text: str) -> int:
    plan = tmp_path / f"{environment}.md"
    plan.write_text(text)
    args = ["--repository", REPO, "--pull-request", "7", "--environment", environment, "--markdown", str(plan)]
    return plan_comment.main(args)


def test_one_comment_per_environment_updated_on_every_push(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert post(tmp_path, "staging", "### staging\n\n**Plan: 1 to create**\n") == 0
    assert post(tmp_path, "production", "### production\n\nNo changes.\n") == 0
    assert post(tmp_path, "staging", "### staging\n\n**Plan: 2 to create**\n") == 0
    assert post(tmp_path, "staging", "### staging\n\n**Plan: 2 to create**\n") == 0
    bodies = [c["body"] for c in github.comments]
    assert len(bodies) == 3  # the reviewer's, one for staging, one for production
    (staging,) = [b for b in bodies if "<!-- biomage-plan: staging -->" in b]
    assert "Plan: 2 to create" in staging and "Plan: 1 to create" not in staging
    assert [m for m, _path in github.calls if m != "GET"] == ["POST", "POST", "PATCH"]
    assert capsys.readouterr().out.splitlines()[-1].startswith("plan comment of staging unchanged")


def test_the_marker_is_found_on_a_later_page(tmp_path: Path, github: FakeGitHub) -> None:
    github.comments += [{"id": 2 + i, "body": f"comment {i}"} for i in range(150)]
    github.comments.append({"id": 999, "body": "<!-- biomage-plan: staging -->\nold"})
    assert post(tmp_path, "staging", "new plan") == 0
    assert github.comments[-1]["body"].endswith("new plan")
    assert ("PATCH", f"/repos/{REPO}/issues/comments/999") in github.calls


def test_a_long_plan_is_cut_to_a_comment_and_says_so() -> None:
    body = plan_comment.comment_body("staging", "| row |\n" * 20000, "https://example.invalid/run")
    assert len(body) <= plan_comment.MAX_BODY
    assert "longer than a comment may be" in body and body.endswith("[The run](https://example.invalid/run)")


def test_without_a_token_it_says_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert post(tmp_path, "staging", "x") == 2
