"""An endpoint that accepts connections and never answers fails within 30 s, naming the endpoint: the
AWS client (botocore: connect/read timeouts of aws.py), the Kubernetes client (kube/client.py: default
request timeout, no read retries) and the GitHub client (github/client.py: connect/read timeout)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils import aws
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubClient, GitHubError
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError
from ansible_collections.biomage.iac.plugins.module_utils.kube.secrets import KubernetesSecretStore
from ansible_collections.biomage.iac.plugins.modules import cfn_stacks

from tests.lib.cfn_scenarios import ENV, GROUP, REGION, item, queue_template
from tests.lib.module_run import run_module

BUDGET = 30


@pytest.fixture
def silent() -> Iterator[str]:
    """``127.0.0.1:<port>``: accepts every connection, reads nothing, answers nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_aws_client(silent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = {"region": "eu-west-1", "endpoint_url": f"http://{silent}", "read_timeout": 5.0, "max_attempts": 2}
    client = aws.make_client("sts", settings)
    started = time.monotonic()
    with pytest.raises((aws.BotoCoreError, aws.ClientError)) as raised:
        client.get_caller_identity()
    assert time.monotonic() - started < BUDGET
    error = aws.aws_error(raised.value, settings, "ask AWS who we are")
    assert f"http://{silent}" in str(error)


def test_an_aws_module_with_default_settings(silent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """cfn_stacks, as a playbook runs it (no timeout option given), against the silent endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    args = {
        "environment": ENV,
        "group": GROUP,
        "region": REGION,
        "endpoint_url": f"http://{silent}",
        "stacks": [item("s", queue_template())],
    }
    started = time.monotonic()
    outcome = run_module(cfn_stacks.main, args)
    elapsed = time.monotonic() - started
    assert outcome.failed
    assert f"http://{silent}" in outcome.result["msg"] and "timeout" in outcome.result["msg"].lower()
    assert elapsed < BUDGET, f"a silent endpoint held the module {elapsed:.1f} s"
    assert elapsed >= aws.DEFAULT_READ_TIMEOUT, "the read timeout was waited out (not a connection refusal)"


def test_kubernetes_client(silent: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://{silent}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    store = KubernetesSecretStore("flux-system", "flux-system", str(kubeconfig), timeout=None)
    started = time.monotonic()
    with pytest.raises(KubeError) as raised:
        store.read()
    assert time.monotonic() - started < BUDGET
    assert f"the Kubernetes API server at http://{silent} did not answer in time" in str(raised.value)


def test_github_client(silent: str) -> None:
    client = GitHubClient(f"http://{silent}", "token")
    started = time.monotonic()
    with pytest.raises(GitHubError) as raised:
        client.request("POST", "/repos/biomage-org/ui/keys", {"title": "k", "key": "ssh-ed25519 AAAA"})
    assert time.monotonic() - started < BUDGET
    message = str(raised.value)
    assert f"the GitHub API at http://{silent} did not answer POST" in message and "within 20 s" in message
    assert "GitHub may have processed the request" in message
