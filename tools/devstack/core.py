"""Process and state handling shared by every component of the local development stack.

The stack keeps all of its state under one folder (default: ``<repo>/.devstack``): one pid file and
one log file per process, and one ``env`` file of ``KEY=value`` lines that shells (``set -a; .``),
Ansible (``lookup('ansible.builtin.ini', KEY, type='properties', file=...)``) and the tests read.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import functools
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".devstack"
LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 30


class DevstackError(RuntimeError):
    """A failure of the local stack, worded for the operator (what failed, where to look, the fix)."""


class Aborted(DevstackError):
    """A component stopped waiting for another one, which failed to start (that failure is the one to report)."""


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FROM = 20000


def listen_ports(ephemeral: Path = EPHEMERAL_PORTS) -> range:
    """The ports the stack's servers listen on: from 20000 up to the kernel's ephemeral range.

    Not in that range: every outgoing connection takes its source port from it (as does a bind to port 0), so a
    port picked there can be taken by any client's connection (the other pytest worker's, a controller's) in the
    seconds before the server binds it; KWOK then failed with "bind: address already in use". Empty when the
    ephemeral range starts too low to leave room (then the kernel picks)."""
    try:
        low = int(ephemeral.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return range(LISTEN_PORTS_FROM, low) if low - LISTEN_PORTS_FROM >= 1000 else range(0)


RESERVED_PORTS = Path(tempfile.gettempdir()) / f"biomage-devstack-ports-{os.getuid()}"  # per user: never unreadable
RESERVATION_SECONDS = 300


@contextlib.contextmanager
def _reservations(path: Path) -> Iterator[dict[int, float]]:
    """The ports given out in the last :data:`RESERVATION_SECONDS` on this host, by any process (a locked file):
    updated with what the block adds."""
    path.touch(exist_ok=True)
    with path.open("r+", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        now = time.time()
        given: dict[int, float] = {}
        for line in handle:
            fields = line.split()
            with contextlib.suppress(ValueError, IndexError):
                if now - float(fields[1]) < RESERVATION_SECONDS:
                    given[int(fields[0])] = float(fields[1])
        yield given
        handle.seek(0)
        handle.truncate()
        handle.write("".join(f"{port} {at}\n" for port, at in given.items()))


def free_port(host: str = LOOPBACK, candidates: range | None = None, reservations: Path | None = None) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now, from :func:`listen_ports`, and that no
    process of this host was given in the last minutes (two stacks starting at once, one per pytest worker, never
    pick the same port before either binds it); else one the kernel picks."""
    candidates = listen_ports() if candidates is None else candidates
    with _reservations(reservations or RESERVED_PORTS) as given:
        for port in [*random.sample(candidates, min(len(candidates), 64)), 0]:
            if port in given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                bound = int(sock.getsockname()[1])
            given[bound] = time.time()
            return bound
    raise DevstackError(f"no TCP port on {host} could be bound. Fix: check the host's network configuration.")


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wanted_port(variable: str) -> int:
    """The port named by the environment variable ``variable`` (checked free), else a free port."""
    wanted = os.environ.get(variable)
    if not wanted:
        return free_port()
    try:
        port = int(wanted)
    except ValueError as exc:
        raise DevstackError(f"{variable}={wanted!r} is not a port number. Fix: unset it or give a number.") from exc
    if port_in_use(port):
        raise DevstackError(
            f"port {port} ({variable}) is already in use by another process. "
            f"Fix: stop that process, choose another port, or unset {variable} to pick a free one."
        )
    return port


class StopSignal:
    """Set once SIGTERM or SIGINT arrives (installs the handlers): a daemon of the stack checks it between
    polls and ends cleanly, stopping what it runs."""

    def __init__(self) -> None:
        self.received = False
        signal.signal(signal.SIGTERM, self._receive)
        signal.signal(signal.SIGINT, self._receive)

    def _receive(self, signum: int, frame: object) -> None:
        self.received = True

    def __bool__(self) -> bool:
        return self.received


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:]) or f"(log {path} is empty)"


# A process started this long after its pid file was written cannot be the one the file records:
# its pid was reused (pid_max is 32768 on many machines, and a test session wraps it in about an
# hour). The margin absorbs a step of the wall clock (NTP) between the spawn and the check.
PID_REUSE_SLACK = 60.0


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from field 3 (the state) on, or None if it cannot be read.

    Field 2, the command name in parentheses, may itself hold spaces and parentheses: the fields after
    it start after the last ')'.
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


@functools.cache
def _boot_time() -> float | None:
    """The machine's boot time (``btime`` of ``/proc/stat``, seconds since the epoch); fixed per boot."""
    with contextlib.suppress(OSError, StopIteration, IndexError, ValueError):
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
        return float(next(line.split()[1] for line in lines if line.startswith("btime ")))
    return None


def process_started_at(pid: int) -> float | None:
    """When the process ``pid`` started (seconds since the epoch), or None if that cannot be read."""
    fields, boot = _proc_stat(pid), _boot_time()
    # field 22 of /proc/<pid>/stat: starttime, in clock ticks since boot
    if fields is None or boot is None or len(fields) < 20 or not fields[19].isdigit():
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    # field 3 is the state; 'Z' is a zombie that only waits to be reaped
    return not (fields and fields[0] == "Z")


def http_ok(url: str, timeout: float = 1.0, context: object | None = None, status_below: int = 500) -> bool:
    """True when ``url`` answers with a status below ``status_below`` (500: the server answers at all)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:  # noqa: S310 - loopback only
            return int(resp.status) < status_below
    except urllib.error.HTTPError as exc:
        return exc.code < status_below
    except (OSError, ValueError):
        return False


@dataclass
class Context:
    """Where a stack keeps its state, and the settings components share."""

    state_dir: Path = DEFAULT_STATE_DIR
    region: str = "eu-west-1"
    startup_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    # what `up` must tell the operator (e.g. an emulator restarted empty), printed by the command line
    notices: list[str] = field(default_factory=list)
    # milestones of a concurrent `up` (see `reached` and `wait_for`): what is expected, what was reached
    expected: set[str] = field(default_factory=set)
    _reached: dict[str, threading.Event] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _aborted: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

    # -- milestones of a concurrent start ------------------------------------------------------
    def _event(self, milestone: str) -> threading.Event:
        with self._lock:
            return self._reached.setdefault(milestone, threading.Event())

    def reached(self, milestone: str, env: dict[str, str] | None = None) -> None:
        """Record that ``milestone`` is reached, adding ``env`` to the shared env first."""
        with self._lock:
            self.env = {**self.env, **(env or {})}
        self._event(milestone).set()

    def abort(self) -> None:
        """A component failed: every `wait_for` gives up."""
        self._aborted.set()

    def wait_for(self, milestone: str, timeout: float | None = None) -> None:
        """Block until another component reached ``milestone``; at once when none of this stack provides it."""
        if milestone not in self.expected:
            return
        event = self._event(milestone)
        deadline = time.monotonic() + (timeout or 4 * self.startup_timeout)
        while not event.wait(0.05):
            if self._aborted.is_set():
                raise Aborted(f"stopped waiting for {milestone}: another component failed to start")
            if time.monotonic() >= deadline:
                raise DevstackError(f"{milestone} was not ready within {timeout or 4 * self.startup_timeout:.0f}s")

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    def path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    def pid_file(self, name: str) -> Path:
        return self.path(f"{name}.pid")

    def log_file(self, name: str) -> Path:
        return self.path(f"{name}.log")

    # -- processes -----------------------------------------------------------------------------
    def read_pid(self, name: str) -> int | None:
        """The pid recorded for ``name`` if that process still runs; a stale pid file is removed.

        A live process that started after the pid file was written has a reused pid: it is not ours,
        and is neither reported nor ever signalled.
        """
        pid_file = self.pid_file(name)
        try:
            pid = int(pid_file.read_text(encoding="ascii").split()[0])
            written = pid_file.stat().st_mtime
        except (FileNotFoundError, ValueError, IndexError):
            pid_file.unlink(missing_ok=True)
            return None
        started = process_started_at(pid)
        reused = started is not None and started > written + PID_REUSE_SLACK
        if pid_alive(pid) and not reused:
            return pid
        pid_file.unlink(missing_ok=True)
        return None

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start ``argv`` detached from this process, logging to ``<name>.log``; return its pid.

        A process still recorded under ``name`` (its other state, a port file say, was lost) is
        stopped first: it would otherwise be orphaned, holding its port, with nothing to stop it.
        """
        self.terminate(name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file(name).open("ab")
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                cwd=self.state_dir,
            )
        except FileNotFoundError as exc:
            raise DevstackError(f"cannot start {name}: {argv[0]} was not found. Fix: run `make setup` first.") from exc
        finally:
            log.close()
        self.pid_file(name).write_text(f"{proc.pid}\n", encoding="ascii")
        return proc.pid

    def terminate(self, name: str, grace: float = 10.0) -> bool:
        """Stop the process recorded for ``name`` (TERM, then KILL); True if one was running."""
        pid = self.read_pid(name)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file(name).unlink(missing_ok=True)
        return True

    def wait_until(self, predicate: Callable[[], bool], what: str, name: str, timeout: float | None = None) -> None:
        """Poll ``predicate`` until true; on timeout or death of ``name``, fail with its log's tail."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        delay = 0.05
        while True:
            if predicate():
                return
            if self.read_pid(name) is None:
                log = self.log_file(name)
                raise DevstackError(f"{name} exited before {what}. Last lines of {log}:\n{log_tail(log)}")
            if time.monotonic() >= deadline:
                raise DevstackError(
                    f"{name} was not ready ({what}) within {timeout or self.startup_timeout:.0f}s. "
                    f"Last lines of {self.log_file(name)}:\n{log_tail(self.log_file(name))}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # -- env file ------------------------------------------------------------------------------
    def read_env(self) -> dict[str, str]:
        return read_env_file(self.env_file)

    def write_env(self, values: dict[str, str]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in sorted(values.items())]
        tmp = self.env_file.with_suffix(".tmp")
        tmp.write_text(
            "# written by `make dev-up` (tools/devstack); do not edit\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )
        tmp.replace(self.env_file)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``KEY=value`` env file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


class Component(abc.ABC):
    """One server of the stack. Subclasses set ``name`` and implement ``start``."""

    name = "component"
    # milestones (other components' names, or milestones they reach part-way) this one starts after
    after: tuple[str, ...] = ()
    # milestones this one reaches part-way through its start (see Context.reached), besides its name
    provides: tuple[str, ...] = ()

    @abc.abstractmethod
    def start(self, ctx: Context) -> dict[str, str]:
        """Start (or adopt a healthy running instance) and return the env entries it provides."""

    def stop(self, ctx: Context) -> bool:
        """Stop; True if something was running."""
        return ctx.terminate(self.name)

    def is_running(self, ctx: Context) -> bool:
        return ctx.read_pid(self.name) is not None


@contextlib.contextmanager
def temporary_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
