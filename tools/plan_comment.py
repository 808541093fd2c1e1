"""Post the Markdown plan of one environment as a pull request comment, updated (not duplicated) on
every push: the comment is found by a hidden marker naming the environment and PATCHed; without one a
comment is created. Used by .github/workflows/plan-comment.yml after each plan of a pull request (docs/plan.md).

    GITHUB_TOKEN=... python tools/plan_comment.py --repository owner/name --pull-request 12 \\
        --environment staging --markdown plan.md

GITHUB_API_URL (set by GitHub Actions) selects the API; the token needs pull-requests: write.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

MAX_BODY = 65000  # GitHub refuses comment bodies over 65536 characters
PER_PAGE = 100
MAX_PAGES = 50


def marker(environment: str) -> str:
    return f"<!-- biomage-plan: {environment} -->"


def comment_body(environment: str, markdown: str, run_url: str = "") -> str:
    """The comment: marker, the plan (cut to GitHub's limit, saying so) and where the full run is."""
    tail = f"\n\n[The run]({run_url})" if run_url else ""
    head = marker(environment) + "\n"
    room = MAX_BODY - len(head) - len(tail) - 200
    if len(markdown) > room:
        markdown = markdown[:room].rsplit("\n", 1)[0] + "\n\n_The plan is longer than a comment may be: see the run._"
    return head + markdown.rstrip() + tail


class GitHub:
    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the API URL is GitHub's (or the stand-in's)
            self.api_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                **({"Content-Type": "application/json"} if data else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            payload = response.read()
        return json.loads(payload) if payload else None


def find_comment(github: GitHub, repository: str, number: int, environment: str) -> dict | None:
    """The first comment of the pull request carrying this environment's marker."""
    wanted = marker(environment)
    for page in range(1, MAX_PAGES + 1):
        comments = github.request(
            "GET", f"/repos/{repository}/issues/{number}/comments?per_page={PER_PAGE}&page={page}"
        )
        for comment in comments or []:
            if wanted in (comment.get("body") or ""):
                return comment
        if not comments or len(comments) < PER_PAGE:
            return None
    return None


def upsert(github: GitHub, repository: str, number: int, environment: str, body: str) -> tuple[str, int]:
    """``("updated" | "created" | "unchanged", comment id)``."""
    found = find_comment(github, repository, number, environment)
    if found is None:
        created = github.request("POST", f"/repos/{repository}/issues/{number}/comments", {"body": body})
        return "created", created["id"]
    if found.get("body") == body:
        return "unchanged", found["id"]
    github.request("PATCH", f"/repos/{repository}/issues/comments/{found['id']}", {"body": body})
    return "updated", found["id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repository", required=True, help="owner/name")
    parser.add_argument("--pull-request", type=int, required=True)
    parser.add_argument("--environment", required=True)
    parser.add_argument("--markdown", required=True, help="the plan as Markdown (biomage.iac.plan's markdown_file)")
    parser.add_argument("--run-url", default="")
    args = parser.parse_args(argv)
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        print(
            "plan_comment: GITHUB_TOKEN is not set. Fix: pass the job's token (pull-requests: write).", file=sys.stderr
        )
        return 2
    try:
        with open(args.markdown, encoding="utf-8") as handle:
            markdown = handle.read()
    except OSError as exc:
        print(f"plan_comment: cannot read {args.markdown}: {exc.strerror}. Did the plan run?", file=sys.stderr)
        return 2
    github = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), token)
    body = comment_body(args.environment, markdown, args.run_url)
    try:
        action, comment_id = upsert(github, args.repository, args.pull_request, args.environment, body)
    except urllib.error.HTTPError as exc:
        print(f"plan_comment: GitHub answered {exc.code} {exc.reason} for {exc.url}.", file=sys.stderr)
        return 1
    print(f"plan comment of {args.environment} {action} (id {comment_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
