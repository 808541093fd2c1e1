"""tools/devstack/releases.py: the lines `python -m devstack releases` (the end of make demo) prints."""

from __future__ import annotations

from devstack.releases import ready_of, release_lines


def helm_release(namespace: str, ready: str | None, message: str = "", history: bool = True) -> dict:
    status: dict = {}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "InstallSucceeded", "message": message}]
    if history:
        status["history"] = [{"chartName": "nodejs", "chartVersion": "1.2.0+abc", "version": 1}]
    return {
        "metadata": {"namespace": namespace, "name": namespace},
        "spec": {"releaseName": "ui"},
        "status": status,
    }


def test_ready_of_reads_the_ready_condition_or_says_what_is_missing() -> None:
    assert ready_of(None) == ("-", "not found")
    assert ready_of({"status": {}}) == ("Unknown", "no status yet (does the controller run?)")
    assert ready_of(helm_release("ui-x", "False", "chart not found")) == ("False", "InstallSucceeded: chart not found")


def test_one_line_per_release_sorted_with_chart_and_workloads() -> None:
    lines = release_lines(
        [helm_release("ui-master", "True", "Helm install succeeded"), helm_release("api-master", None, history=False)],
        {("ui-master", "ui"): "2/2 Pods ready"},
    )
    assert lines == [
        "  api-master/api-master  Ready=Unknown  -  no Deployment  no status yet (does the controller run?)",
        "  ui-master/ui-master  Ready=True  nodejs@1.2.0+abc  2/2 Pods ready  InstallSucceeded: Helm install succeeded",
    ]
