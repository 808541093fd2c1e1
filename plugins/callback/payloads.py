# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: payloads
type: aggregate
short_description: Builds a play's module payloads ahead of its tasks, in a background process
version_added: 0.3.0
description:
  - ansible-core builds a module's AnsiballZ payload (the module and the module_utils it imports, found
    by parsing each file, then zipped) in the worker of the first task that runs the module, on the
    task's critical path, and keeps it for the run's later tasks. A plan runs about ten distinct
    modules, 0.1 to 0.4 s of building each.
  - When a play starts, this callback forks one background process that finds the modules the play
    names (the play's tasks and its roles' task files, following includes of a literal file or role,
    in the order the play runs them) and builds their payloads with ansible-core's own builder, into
    a folder of its own, moving each finished one into the run's payload cache. In that process each
    file the payloads hold is parsed once (ansible-core parses it again for every module that imports
    it), which halves the process's work without changing a payload.
  - It is a head start only. A task that needs a module before it is ready builds it as it always
    did (the background process holds no lock a task waits on); a module it misses or cannot build
    is built by its task, which reports any error. The process ends with the playbook run.
  - Results, output and plans are unchanged by it; C(-e) or inventory settings that change a payload
    (another module compression, the AnsiballZ debugger or coverage) give payloads of another name,
    which their tasks build.
requirements:
  - enable it in callbacks_enabled (this repository's ansible.cfg does)
  - a control node with C(os.fork) (Linux, macOS); elsewhere it does nothing
"""

import atexit

from ansible import constants as C
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.callback import CallbackBase
from ansible.template import Templar
from ansible_collections.biomage.iac.plugins.plugin_utils.payloads import (
    build,
    find_module,
    play_modules,
    reuse_parsed_sources,
    start,
    stop,
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "biomage.iac.payloads"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pids = []
        atexit.register(stop, self._pids)

    def v2_playbook_on_play_start(self, play):
        collections = list(play.collections or [])

        def work():  # in the background process: what it changes stays there
            reuse_parsed_sources(module_common)
            build(
                play_modules(play),
                C.DEFAULT_LOCAL_TMP,
                C.DEFAULT_MODULE_COMPRESSION,
                find_module(collections),
                module_common.modify_module,
                Templar(loader=DataLoader()),
            )

        pid = start(work)
        if pid:
            self._pids.append(pid)

    def v2_playbook_on_stats(self, stats):
        stop(self._pids)
        del self._pids[:]
