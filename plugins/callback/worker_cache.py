# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: worker_cache
type: aggregate
short_description: Work each task's worker would redo, done once per playbook run
version_added: 0.3.0
description:
  - ansible-core runs each task in a worker, a process forked from the playbook's process for that task alone;
    what a worker loads or builds is lost when the task ends. This callback does two kinds of that work once.
  - Jinja compilation. ansible-core compiles a template (Jinja's parser and code generator, then Python's
    compiler) each time it renders it, and the inventory's and the roles' default templates are rendered again
    in nearly every task. The Python code Jinja generates for a template or expression is kept in the run's
    local temporary folder, written by the first process that compiles it and read by the run's others. Only
    the compile step is shared; every render is ansible-core's own (variables, filters, trust checks, errors),
    with the code bound to the renderer's Jinja environment. Code is reused only for the same source and
    compile-time settings (C(#jinja2:) overrides, delimiters, whitespace handling, backslash escaping), and
    only within the run.
  - Connection plugins. When a play starts, the connection plugins its hosts name (C(ansible_connection) in the
    inventory) are loaded in the playbook's process, so that the workers inherit them instead of each importing
    the plugin and parsing its options again.
  - Filter and test plugins. ansible-core loads all of its own filters and tests (and those of the configured
    plugin folders) in each process the first time a template uses one, about 20 ms in a worker; in a plan most
    workers render such a template. They are loaded in the playbook's process when the first play starts.
  - The Jinja part replaces two methods of ansible-core's internal Jinja environment class; under an ansible-core
    other than the one the collection pins, or with ansible-core's template debugging on, it does nothing.
requirements:
  - enable it in callbacks_enabled (this repository's ansible.cfg does)
"""

from ansible import constants as C
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import connection_loader, filter_loader, test_loader
from ansible_collections.biomage.iac.plugins.plugin_utils.worker_cache import (
    connection_names,
    install,
    load_connections,
    load_jinja_plugins,
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "biomage.iac.worker_cache"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # loaded in the playbook's process before its first task: every worker is forked with it installed
        install(C.DEFAULT_LOCAL_TMP)

    def v2_playbook_on_play_start(self, play):
        inventory = getattr(play.get_variable_manager(), "_inventory", None)
        if inventory is not None:
            hosts = inventory.get_hosts(play.hosts, ignore_restrictions=True)
            load_connections(connection_names(hosts, get_group_vars), connection_loader)
        load_jinja_plugins((filter_loader, test_loader))  # at the second play's start, a look at the loaded ones
