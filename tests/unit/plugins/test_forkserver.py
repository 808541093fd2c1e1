"""biomage.iac.forkserver: which commands go to the fork server (the command lines ansible-core builds),
and what a run in a child of the server gets (streams, status, environment, working folder, umask,
its own commands), as a new interpreter would give it; one server per key, gone with its owner."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from ansible.plugins.shell.sh import ShellModule
from ansible_collections.biomage.iac.plugins.connection.forkserver import module_run
from ansible_collections.biomage.iac.plugins.plugin_utils import forkserver

PYTHON = "/opt/venv/bin/python3.12"
WRAPPER = f"#!{PYTHON}\n# -*- coding: utf-8 -*-\n\nimport datetime\n\n_ANSIBALLZ_WRAPPER = True\n".encode()


def pipelined_command(environment: dict[str, str] | None = None, shebang: str = f"#!{PYTHON}") -> str:
    """The command ansible-core's action base runs for a pipelined module (the sh shell plugin's
    module command, then ``<executable> -c <quoted>``)."""
    shell = ShellModule()
    command = shell.build_module_command(shell.env_prefix(**(environment or {})), shebang, "")
    return "/bin/sh -c " + shlex.quote(command)


def test_a_pipelined_module_run_is_recognised_with_its_environment() -> None:
    assert module_run(pipelined_command(), WRAPPER, "/bin/sh") == (PYTHON, {})
    environment = {"K8S_AUTH_KUBECONFIG": "/tmp/my kube/config", "QUOTED": 'it\'s "here"', "EMPTY": ""}
    assert module_run(pipelined_command(environment), WRAPPER, "/bin/sh") == (PYTHON, environment)


@pytest.mark.parametrize(
    ("cmd", "in_data"),
    [
        pytest.param(pipelined_command(), None, id="no-stdin"),
        pytest.param(pipelined_command(), b"#!/bin/sh\necho a shell script\n", id="not-an-ansiballz-wrapper"),
        pytest.param(pipelined_command(shebang="#!/usr/bin/python3"), WRAPPER, id="another-interpreter"),
        pytest.param("/bin/sh -c 'echo ~root && sleep 0'", WRAPPER, id="a-shell-command"),
        pytest.param("/bin/bash -c " + shlex.quote(PYTHON), WRAPPER, id="another-executable"),
        pytest.param("/bin/sh -c " + shlex.quote(f"cd /tmp && {PYTHON}"), WRAPPER, id="chdir-prefix"),
    ],
)
def test_anything_else_runs_as_the_local_connection_runs_it(cmd: str, in_data: bytes | None) -> None:
    assert module_run(cmd, in_data, "/bin/sh") is None


def test_a_run_with_become_is_not_recognised() -> None:
    # the command ansible-core's sudo become plugin builds around the module command
    inner = f"sudo -H -S -n  -u deploy /bin/sh -c 'echo BECOME-SUCCESS-qwertyuiopasdfgh ; {PYTHON}'"
    assert module_run("/bin/sh -c " + shlex.quote(inner), WRAPPER, "/bin/sh") is None


# ---------------------------------------------------------------------------------------------------------
# the server


@pytest.fixture
def owner():
    """A process standing for ansible-playbook: the server ends when it ends."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def server(owner, tmp_path):
    env = {**os.environ, "FORKSERVER_TEST": "server"}
    path = forkserver.socket_path(owner.pid, sys.executable, env)
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), Path(forkserver.__file__).read_text())
    return path, env


def run(server, script: str, cwd: str, **env: str) -> tuple[int, str, str]:
    path, server_env = server
    rc, out, err = forkserver.run(path, textwrap.dedent(script).encode(), cwd, {**server_env, **env})
    return rc, out.decode(), err.decode()


def server_processes(path: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", path], capture_output=True, text=True, check=False).stdout.split()
    return [int(pid) for pid in found]


def assert_stops_cleanly(path: str, pid: int) -> None:
    """SIGTERM to the server ``pid``: within 10 s no process serves ``path`` and the socket's path is gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (server_processes(path) or os.path.exists(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_processes(path) == []
    assert not os.path.exists(path)


def test_a_run_gets_the_callers_streams_status_environment_folder_and_umask(server, tmp_path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    old = os.umask(0o027)
    try:
        rc, out, err = run(
            server,
            """
            import os, sys
            print(os.environ["FORKSERVER_TEST"], os.environ["BIOMAGE_PROGRESS_FILE"], os.getcwd())
            mask = os.umask(0); print(oct(mask), sys.argv)
            print(os.environ["BIOMAGE_FORKSERVER_CALLER"], os.getppid() != int(os.environ["BIOMAGE_FORKSERVER_CALLER"]))
            print("to stderr", file=sys.stderr)
            sys.exit(3)
            """,
            str(folder),
            BIOMAGE_PROGRESS_FILE="/tmp/progress-of-this-task",
        )
    finally:
        os.umask(old)
    assert rc == 3
    # the caller (this process) is named: the run's parent is the server
    assert out.splitlines() == [f"server /tmp/progress-of-this-task {folder}", "0o27 ['']", f"{os.getpid()} True"]
    assert err == "to stderr\n"


def test_the_heavy_libraries_are_already_imported(server) -> None:
    # what the play's first run needs is imported before the server serves (the rest follows, below)
    rc, out, _err = run(
        server,
        "import sys; print(sorted(n for n in ('boto3', 'botocore.session', 'ansible.module_utils.basic')"
        " if n in sys.modules))",
        "/",
    )
    assert (rc, out) == (0, "['ansible.module_utils.basic', 'boto3', 'botocore.session']\n")


def test_the_later_libraries_are_imported_while_no_run_waits(owner, tmp_path, monkeypatch) -> None:
    # a name that cannot be imported is passed over: the server goes on serving and importing the next ones
    monkeypatch.setattr(forkserver, "LATER", ("no_such_module_of_biomage", *forkserver.LATER))
    env = {**os.environ, "FORKSERVER_TEST": "later"}
    path = forkserver.socket_path(owner.pid, sys.executable, env)
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), Path(forkserver.__file__).read_text())
    probe = "import sys; print(sorted(n for n in ('parliament', 'kubernetes') if n in sys.modules))"
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        rc, out, err = forkserver.run(path, probe.encode(), "/", env)
        assert (rc, err) == (0, b"")
        seen.append(out.decode())
        if out == b"['kubernetes', 'parliament']\n":
            break
        time.sleep(0.2)
    assert seen[-1] == "['kubernetes', 'parliament']\n", seen
    # a child's analysis works with what the server imported (its IAM database loaded once, before the fork)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjectz", "Resource": "*"}]}
    analysed = f"parliament.analyze_policy_string({json.dumps(policy)!r})"
    script = f"import parliament; print([f.issue for f in {analysed}.findings])"
    rc, out, err = forkserver.run(path, script.encode(), "/", env)
    assert (rc, err) == (0, b"")
    assert out == b"['UNKNOWN_ACTION']\n"


def test_megabytes_on_both_streams_arrive_whole(server) -> None:
    rc, out, err = run(
        server,
        """
        import sys
        for i in range(30000):
            sys.stdout.write(f"out {i:08d} " + "x" * 90 + "\\n")
            sys.stderr.write(f"err {i:08d} " + "y" * 90 + "\\n")
        """,
        "/",
    )
    assert rc == 0
    assert len(out) == len(err) == 30000 * 104
    assert out.splitlines()[-1].startswith("out 00029999") and err.splitlines()[12345].startswith("err 00012345")


def test_a_module_waits_for_its_own_commands(server) -> None:
    # the server lets the kernel reap its children: a child that kept that would get ECHILD from wait()
    rc, out, err = run(server, "import subprocess; print(subprocess.run(['sh', '-c', 'exit 7']).returncode)", "/")
    assert (rc, out, err) == (0, "7\n", "")


@pytest.mark.parametrize(
    ("script", "status", "stderr_has"),
    [
        pytest.param("raise ValueError('no such stack')", 1, "ValueError: no such stack", id="uncaught-exception"),
        pytest.param(
            "import sys; sys.exit('refused: the lock is held')", 1, "refused: the lock is held", id="exit-message"
        ),
        pytest.param(
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 1, "ended without an exit status", id="killed"
        ),
    ],
)
def test_a_failed_run_reports_as_the_interpreter_would(server, script: str, status: int, stderr_has: str) -> None:
    rc, _out, err = run(server, script, "/")
    assert rc == status
    assert stderr_has in err


def test_atexit_handlers_and_threads_finish_before_the_run_ends(server) -> None:
    rc, out, _err = run(
        server,
        """
        import atexit, threading, time
        atexit.register(print, "temporary folder removed")
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
        print("module done")
        """,
        "/",
    )
    assert rc == 0
    assert out.splitlines() == ["module done", "thread done", "temporary folder removed"]


def test_what_the_interpreters_exit_would_finish_is_finished_before_the_run_ends(server, tmp_path) -> None:
    # the child leaves with os._exit (no teardown of the server's libraries): what a module left to the
    # interpreter's exit is still done, and only then does the run end
    rc, out, err = run(
        server,
        f"""
        import sys, tempfile, time
        from concurrent.futures import ThreadPoolExecutor
        report = open({str(tmp_path / "report.txt")!r}, "w")  # never closed: the interpreter's exit flushes it
        report.write("line written, never flushed\\n" * 3)
        raw = open({str(tmp_path / "report.bin")!r}, "wb")
        raw.write(b"bytes")
        scratch = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})  # removed by its finalizer at exit
        pool = ThreadPoolExecutor(2)  # never shut down: its workers end with the interpreter's exit hooks
        pool.submit(time.sleep, 0.2).add_done_callback(lambda _f: print("pool task done"))
        print(scratch.name)
        sys.stderr.write("no newline at the end")
        """,
        "/",
    )
    assert rc == 0
    scratch, done = out.splitlines()
    assert done == "pool task done"
    assert err == "no newline at the end"
    assert not os.path.exists(scratch)
    assert (tmp_path / "report.txt").read_text() == "line written, never flushed\n" * 3
    assert (tmp_path / "report.bin").read_bytes() == b"bytes"


def test_one_server_per_key_and_it_ends_with_its_owner(owner, server, tmp_path) -> None:
    path, env = server
    assert len(server_processes(path)) == 1
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), Path(forkserver.__file__).read_text())
    assert len(server_processes(path)) == 1
    # what only a task changes does not need another server; what libraries read when imported does
    assert forkserver.socket_path(owner.pid, sys.executable, {**env, "BIOMAGE_PROGRESS_FILE": "/tmp/x"}) == path
    assert forkserver.socket_path(owner.pid, sys.executable, {**env, "KUBECONFIG": "/tmp/other"}) != path
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while (server_processes(path) or os.path.exists(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_processes(path) == []
    assert not os.path.exists(path)
    with pytest.raises(forkserver.ForkServerUnavailable, match="did not take the run"):
        forkserver.run(path, b"print('never')", "/", env)


@pytest.fixture
def short_tmp():
    """A folder under /tmp: a Unix socket's path is short, pytest's tmp_path is long."""
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    yield folder
    shutil.rmtree(folder)


def test_a_socket_folder_others_can_enter_is_refused(short_tmp, monkeypatch) -> None:
    short = short_tmp
    monkeypatch.setenv("TMPDIR", str(short))
    monkeypatch.setattr("tempfile.tempdir", None)
    folder = short / f"biomage-iac-forkserver-{os.getuid()}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(forkserver.ForkServerUnavailable, match="not a folder of this user's alone"):
        forkserver.socket_path(os.getpid(), sys.executable, {})
    folder.chmod(0o700)
    assert forkserver.socket_path(os.getpid(), sys.executable, {}).startswith(f"{folder}/{os.getpid()}-")


def test_a_stopped_server_leaves_no_socket_and_a_killed_one_is_replaced(owner, server, tmp_path) -> None:
    path, env = server
    (pid,) = server_processes(path)
    assert_stops_cleanly(path, pid)
    source = Path(forkserver.__file__).read_text()
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), source)
    (pid,) = server_processes(path)
    os.kill(pid, signal.SIGKILL)  # no cleanup: its socket's path stays
    deadline = time.monotonic() + 10
    while server_processes(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(path)
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), source)
    assert run(server, "print('served again')", "/") == (0, "served again\n", "")


def test_a_stop_while_a_step_swallows_every_exception_still_ends_the_server(owner, tmp_path, monkeypatch) -> None:
    # a library whose import catches BaseException (a bare except): SIGTERM comes while it runs
    (tmp_path / "swallows_all.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib, time
            pathlib.Path({str(tmp_path / "importing")!r}).touch()
            try:
                time.sleep(20)
            except BaseException:
                pass
            """
        )
    )
    monkeypatch.setattr(forkserver, "PRELOAD", ("swallows_all",))
    monkeypatch.setattr(forkserver, "LATER", ())
    env = {**os.environ, "FORKSERVER_TEST": "swallowed", "PYTHONPATH": str(tmp_path)}
    path = forkserver.socket_path(owner.pid, sys.executable, env)
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), Path(forkserver.__file__).read_text())
    deadline = time.monotonic() + 10
    while not (tmp_path / "importing").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    (pid,) = server_processes(path)
    assert_stops_cleanly(path, pid)


def test_a_server_that_cannot_start_says_why_at_once(owner, tmp_path) -> None:
    env = {**os.environ, "FORKSERVER_TEST": "broken"}
    path = forkserver.socket_path(owner.pid, sys.executable, env)
    started = time.monotonic()
    with pytest.raises(forkserver.ForkServerUnavailable, match=r"exited with status 1: .*no server here"):
        forkserver.start_server(
            path, sys.executable, env, owner.pid, str(tmp_path), "raise SystemExit('no server here')"
        )
    assert time.monotonic() - started < 10  # not the 30 s allowed to a server that starts


ZIPPED_MODULE = """
import importlib.util, sys, tempfile, traceback, zipfile
archive = tempfile.mkdtemp() + "/payload.zip"
with zipfile.ZipFile(archive, "w") as zipped:
    zipped.writestr("pkg/__init__.py", "")
    zipped.writestr("pkg/mod.py", "def fail():\\n    raise RuntimeError('from the archive')\\n")
sys.path.insert(0, archive)
import pkg.mod
print(type(pkg.mod.__loader__).__name__, pkg.mod.__file__ == archive + "/pkg/mod.py")
try:
    pkg.mod.fail()
except RuntimeError:
    print(archive + "/pkg/mod.py" in traceback.format_exc())
"""


def test_an_archives_module_is_compiled_once_and_its_code_names_the_current_archive(server) -> None:
    path, _env = server
    source = b"def fail():\n    raise RuntimeError('from the archive')\n"
    kept = Path(path).parent / "code" / hashlib.sha256(importlib.util.MAGIC_NUMBER + source).hexdigest()
    kept.unlink(missing_ok=True)
    first = run(server, ZIPPED_MODULE, "/")
    assert first == (0, "CompiledOnceZipImporter True\nTrue\n", "")
    assert kept.exists()  # compiled by the first run, kept for the next
    kept.write_bytes(marshal.dumps(compile(source.replace(b"from the", b"kept for the"), "old.zip/pkg/mod.py", "exec")))
    second = ZIPPED_MODULE.replace("print(archive +", "print(traceback.format_exc(), archive +")
    rc, out, _err = run(server, second, "/")
    # the second run loads the kept code (the changed message proves it) under its own archive's path
    assert rc == 0 and "kept for the archive" in out and "old.zip" not in out
    assert out.rstrip().endswith("True")


def test_without_pidfd_the_server_still_ends_with_its_owner(owner, tmp_path) -> None:
    # Linux before 5.3 has no pidfd_open: the server looks for its owner in /proc once a second
    env = {**os.environ, "FORKSERVER_TEST": "no-pidfd"}
    path = forkserver.socket_path(owner.pid, sys.executable, env)
    source = (
        Path(forkserver.__file__)
        .read_text()
        .replace("return os.pidfd_open(owner_pid)", "raise OSError('no pidfd on this kernel')")
    )
    forkserver.start_server(path, sys.executable, env, owner.pid, str(tmp_path), source)
    assert forkserver.run(path, b"print('served')", "/", env) == (0, b"served\n", b"")
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while (server_processes(path) or os.path.exists(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_processes(path) == [] and not os.path.exists(path)


def test_an_orphaned_worker_starts_no_server(tmp_path) -> None:
    # a worker whose ansible-playbook was killed has init as its parent: a server owned by it would never end
    with pytest.raises(forkserver.ForkServerUnavailable, match="has ended"):
        forkserver.socket_path(1, sys.executable, dict(os.environ))
    path = forkserver.socket_path(os.getpid(), sys.executable, {**os.environ, "FORKSERVER_TEST": "orphan"})
    source = Path(forkserver.__file__).read_text()
    server = subprocess.run([sys.executable, "-c", source, path, "1"], check=False, capture_output=True, timeout=30)
    assert server.returncode == 0 and not os.path.exists(path)


SHARED_BOTOCORE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import boto3.session
from botocore import loaders
from ansible_collections.biomage.iac.plugins.plugin_utils import forkserver

forkserver.share_botocore_data(("sts",))
parsed = []
load_file = loaders.JSONFileLoader.load_file
loaders.JSONFileLoader.load_file = lambda self, path: parsed.append(os.path.basename(path)) or load_file(self, path)
if os.fork() == 0:  # as a run of the server does
    report = {}
    for label, service in (("sts", "sts"), ("sts again", "sts"), ("cloudformation", "cloudformation"),
                           ("cloudformation again", "cloudformation")):
        del parsed[:]
        client = boto3.session.Session(region_name="eu-west-1").client(service)
        report[label] = [len(parsed), sorted(client.meta.service_model.operation_names)[:1]]
    print(json.dumps(report))
    os._exit(0)
os.wait()
"""


def test_the_servers_children_share_the_aws_data_it_parsed() -> None:
    """Each boto3 session's loader parsed botocore's JSON again (amazon.aws makes a session per client); a
    child now parses nothing for a service the server warmed, and a service it did not warm once per child."""
    proc = subprocess.run(
        [sys.executable, "-c", SHARED_BOTOCORE, str(Path(__file__).resolve().parents[3] / "collections")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(proc.stdout)
    assert report["sts"] == [0, ["AssumeRole"]]
    assert report["sts again"] == [0, ["AssumeRole"]]
    parsed, operations = report["cloudformation"]
    assert parsed >= 2 and operations == ["ActivateOrganizationsAccess"]  # the model and its endpoint rules
    assert report["cloudformation again"] == [0, ["ActivateOrganizationsAccess"]]
