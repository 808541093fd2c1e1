# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: forkserver
short_description: The local connection, with Python module runs forked from a started interpreter
description:
  - Runs tasks on the control node, as C(ansible.builtin.local) does, and is that plugin for everything but
    one case. The collection's inventories use it for their hosts, in every environment.
  - The case is a pipelined Python module run (an AnsiballZ wrapper sent to the interpreter's stdin). With
    C(ansible.builtin.local) every such run starts a new Python, which imports boto3, botocore and the
    Kubernetes client again before it does any work; in a plan of the platform that start-up is most of a
    module run's time. This plugin hands the run to a fork server instead, a Python started once per playbook
    run (and per interpreter and environment) that has imported those libraries; the server forks a child per
    run.
  - Each run is still a process of its own, with the task's environment, the playbook folder as its working
    directory, the caller's umask, stdout and stderr, an empty stdin, and its own exit status. A module's
    arguments (secrets among them) go over a Unix socket in a folder only the user can enter, never to disk.
  - One difference a module can see is its parent process, the server instead of the task's worker; the
    environment variable C(BIOMAGE_FORKSERVER_CALLER) names the worker (the environment lock walks up from
    there to find its ansible-playbook process).
  - Another is how a run's process ends. It does what the interpreter's exit does that a caller can see (the
    threads the module left are joined, its C(atexit) handlers and finalizers run, the files it left open for
    writing are flushed), then leaves as the children of Python's C(multiprocessing) do, without destroying its
    objects one by one. Most of them are the server's libraries, and destroying them took a tenth of a second
    per run.
  - The payload's archive (the module and its module_utils, never its arguments) is compiled once per
    content; the code is kept in the sockets' folder (C(code/)) for the next runs, which load it instead of
    compiling the same sources again.
  - The server ends when the ansible-playbook (or ansible) process that started it ends.
  - Anything else (commands, file transfers, a task with become, a run without pipelining, any run on a
    control node that is not Linux, where forking a process that has loaded system frameworks is unsafe) runs as
    C(ansible.builtin.local) runs it. So does a module run whose server cannot be reached before the run
    starts; a server that ends during a run fails that run, which is never run twice.
  - Mitogen was measured and not taken (docs/plan.md); it replaces the strategy and the way every module
    runs, where this plugin changes only how a Python module's process starts.
author:
  - Biomage platform team (@biomage-org)
version_added: 0.2.0
options:
  become_success_timeout:
    type: int
    default: 10
    description:
      - Seconds to wait for privilege escalation to succeed (as for C(ansible.builtin.local)).
    vars:
      - name: ansible_local_become_success_timeout
  become_strip_preamble:
    type: bool
    default: true
    description:
      - Remove the privilege escalation's own output before the command's (as for C(ansible.builtin.local)).
    vars:
      - name: ansible_local_become_strip_preamble
extends_documentation_fragment:
  - connection_pipelining
notes:
  - Set C(ansible_connection=ansible.builtin.local) for a host to run its modules without the fork server.
  - The sockets live in C($TMPDIR/biomage-iac-forkserver-<uid>) (mode 0700); a run whose socket path would
    be too long for a Unix socket runs as with C(ansible.builtin.local).
"""

import os
import shlex
import sys

import ansible.constants as C
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.connection import ConnectionBase
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display
from ansible_collections.biomage.iac.plugins.plugin_utils import forkserver

display = Display()

_WRAPPER_MARK = b"\n_ANSIBALLZ_WRAPPER = True\n"


def module_run(cmd, in_data, executable):
    """``(interpreter, environment)`` when ``cmd`` and ``in_data`` are a pipelined AnsiballZ run
    (``<executable> -c '[NAME=value ...] <interpreter>'``, the wrapper on stdin, its shebang naming
    that interpreter); otherwise ``None``, for the local connection to run."""
    if not in_data or not in_data.startswith(b"#!") or _WRAPPER_MARK not in in_data[:4096]:
        return None
    shebang = to_text(in_data[2 : in_data.index(b"\n")]).strip()
    try:
        outer = shlex.split(to_text(cmd))
        inner = shlex.split(outer[2]) if len(outer) == 3 and outer[:2] == [executable, "-c"] else []
    except ValueError:
        return None
    if not inner or inner[-1] != shebang:
        return None
    env = {}
    for assignment in inner[:-1]:
        name, equals, value = assignment.partition("=")
        if not equals or not name.isidentifier():
            return None
        env[name] = value
    return shebang, env


class Connection(LocalConnection):
    """The local connection; pipelined Python module runs go to a fork server."""

    def exec_command(self, cmd, in_data=None, sudoable=True):
        executable = C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else None
        found = None if self.become or not sys.platform.startswith("linux") else module_run(cmd, in_data, executable)
        if found is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        interpreter, assignments = found
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        env = {**os.environ, **assignments}
        cwd = self.cwd or os.getcwd()
        owner = os.getppid()  # the ansible-playbook process this worker was forked from
        try:
            path = forkserver.socket_path(owner, interpreter, env)
            display.vvv(f"EXEC {cmd} (in a child of the fork server {path})", host=self._play_context.remote_addr)
            try:
                return forkserver.run(path, in_data, cwd, env)
            except forkserver.ForkServerUnavailable:  # the run's first module: no server yet (nothing ran)
                forkserver.start_server(path, interpreter, env, owner, cwd)
                return forkserver.run(path, in_data, cwd, env)
        except forkserver.ForkServerUnavailable as exc:
            display.vvv(f"fork server unavailable ({exc}): running the module as the local connection does")
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
