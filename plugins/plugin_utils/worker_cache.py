# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Work a task's worker would redo, done once per playbook run.

ansible-core runs each task in a worker, a process forked from the playbook's process for that task
alone: the worker inherits what the playbook process has loaded, and whatever it loads or builds itself
is lost when the task ends. Two kinds of that work are most of a plan's worker time after the modules'
own, and are done once here instead:

- **Jinja compilation** (:func:`install`). ansible-core compiles a template string (Jinja's lexer,
  parser and code generator, then Python's ``compile``) every time it renders it. The inventory's and
  the roles' default templates (the task environment, the region, the roles' inputs) are rendered again
  in nearly every task. The Python code Jinja generates is kept in the run's local temporary folder, one
  file per source and compile-time settings, written by whichever process compiled it first (an atomic
  rename) and read by the others. Only the compile step is kept: each render binds the code to the
  caller's own Jinja environment (``Template.from_code``, as Jinja's own template cache does), so the
  filters, tests, globals, variables, trust checks and errors of the render are ansible-core's,
  unchanged. Code is reused only for the compile-time settings it was made with (the template's
  ``#jinja2:`` overrides, the environment's delimiters and whitespace settings, whether backslashes are
  escaped), and never across runs: the folder ends with the run.

  It replaces two methods of ansible-core's ``AnsibleEnvironment`` (``from_string`` for string sources
  and ``compile_expression``), internals of the ansible-core the collection pins: :func:`install` does
  nothing under another ansible-core, or when ansible-core's template debugging is on.

- **Connection plugins** (:func:`load_connections`). The strategy never loads the connection plugin in
  the playbook process, so every task's worker imported it and parsed its documentation for its options.
  Loading the play's connection plugins in the playbook process before its first task lets the workers
  inherit them.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import tempfile

from ansible.utils.display import Display

display = Display()
EXPECTED_CORE = ("2.21.",)
FOLDER = "jinja_code"
_installed = {}


def _settings(env, field_names, escape):
    """What the generated code depends on, besides the source: the environment's class and compile-time
    settings (the template override fields: delimiters, whitespace handling), the optimizer, the
    extensions, and whether the lexer escapes backslashes."""
    return repr(
        (
            type(env).__module__,
            type(env).__qualname__,
            tuple(getattr(env, name) for name in field_names),
            env.optimized,
            env.autoescape,
            sorted(env.extensions),
            escape,
            sys.version_info[:2],
        )
    )


class CodeStore:
    """Code objects by key: this process's own dict first, then the run's folder (shared by the run's
    processes, each entry written once by an atomic rename)."""

    def __init__(self, folder):
        self.folder = folder
        self.memory = {}
        self.compiled = 0  # compiled here (counted for tests and measurement)
        self.loaded = 0  # read from the folder

    @staticmethod
    def key(kind, source, settings):
        digest = hashlib.sha256()
        digest.update(kind.encode())
        digest.update(b"\0")
        digest.update(settings.encode())
        digest.update(b"\0")
        digest.update(source.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, key):
        code = self.memory.get(key)
        if code is not None:
            return code
        try:
            with open(os.path.join(self.folder, key), "rb") as handle:
                # written by this run's own processes, in its private temporary folder (mode 0700)
                code = marshal.loads(handle.read())  # noqa: S302
        except (OSError, EOFError, ValueError, TypeError):
            return None
        self.loaded += 1
        self.memory[key] = code
        display.debug(f"worker_cache: loaded {key}")
        return code

    def put(self, key, code):
        self.compiled += 1
        self.memory[key] = code
        display.debug(f"worker_cache: compiled {key}")
        try:
            fd, staging = tempfile.mkstemp(dir=self.folder, prefix=".staging-")
        except OSError:
            return  # the folder is gone (the run is ending): this process keeps its own copy
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(marshal.dumps(code))
            os.replace(staging, os.path.join(self.folder, key))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(staging)


def install(local_tmp):
    """Keep the run's compiled templates in ``<local_tmp>/jinja_code``. Returns the :class:`CodeStore`, or
    ``None`` when nothing was installed (another ansible-core, template debugging on, no folder)."""
    if "store" in _installed:
        return _installed["store"]
    try:
        from ansible._internal._templating import _jinja_bits  # noqa: PLC0415
        from ansible.release import __version__ as core_version  # noqa: PLC0415
        from jinja2 import nodes  # noqa: PLC0415
        from jinja2.environment import TemplateExpression  # noqa: PLC0415
        from jinja2.exceptions import TemplateSyntaxError  # noqa: PLC0415
        from jinja2.parser import Parser  # noqa: PLC0415
    except ImportError:  # another ansible-core
        return None
    env_class = getattr(_jinja_bits, "AnsibleEnvironment", None)
    context = getattr(_jinja_bits, "_TemplateCompileContext", None)
    field_names = getattr(_jinja_bits, "_TEMPLATE_OVERRIDE_FIELD_NAMES", None)
    if (
        not core_version.startswith(EXPECTED_CORE)
        or env_class is None
        or context is None
        or field_names is None
        or env_class._debuggable_template_source
    ):
        return None
    folder = os.path.join(local_tmp, FOLDER)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    store = CodeStore(folder)
    original_from_string = env_class.from_string
    original_compile_expression = env_class.compile_expression

    def escaping():
        current = context.current(optional=True)
        return None if current is None else bool(current.escape_backslashes)

    def from_string(self, source, globals=None, template_class=None):
        if not isinstance(source, str) or self._debuggable_template_source:
            return original_from_string(self, source, globals, template_class)
        key = store.key("template", source, _settings(self, field_names, escaping()))
        code = store.get(key)
        if code is None:
            code = self.compile(source)  # a syntax error raises here, as it does in Jinja's from_string
            store.put(key, code)
        cls = template_class or self.template_class
        return cls.from_code(self, code, self.make_globals(globals), None)

    def compile_expression(self, source, undefined_to_none=True):
        if not isinstance(source, str) or self._debuggable_template_source:
            return original_compile_expression(self, source, undefined_to_none)
        key = store.key("expression", source, _settings(self, field_names, escaping()))
        code = store.get(key)
        if code is None:
            # Jinja's compile_expression, keeping the code it generates
            parser = Parser(self, source, state="variable")
            try:
                expr = parser.parse_expression()
                if not parser.stream.eos:
                    raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
                expr.set_environment(self)
            except TemplateSyntaxError:
                self.handle_exception(source=source)
            body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
            code = self.compile(nodes.Template(body, lineno=1))
            store.put(key, code)
        template = self.template_class.from_code(self, code, self.make_globals(None), None)
        return TemplateExpression(template, undefined_to_none)

    env_class.from_string = from_string
    env_class.compile_expression = compile_expression
    _installed["store"] = store
    return store


def connection_names(hosts, group_vars):
    """The connection plugins the inventory names for ``hosts`` (``ansible_connection`` in a host's or one
    of its groups' inventory variables), templated names left out; ``group_vars(groups)`` combines a
    host's groups' variables (ansible-core's ``get_group_vars``)."""
    names = set()
    for host in hosts:
        name = host.vars.get("ansible_connection") or group_vars(host.get_groups()).get("ansible_connection")
        if isinstance(name, str) and name and "{" not in name:
            names.add(name)
    return sorted(names)


def load_connections(names, loader):
    """Load each named connection plugin's class (its module and its option definitions) in this process,
    through ansible-core's plugin ``loader``. A name it cannot load is left to the tasks, which report it."""
    loaded = []
    for name in names:
        with contextlib.suppress(Exception):
            if loader.get(name, class_only=True) is not None:
                loaded.append(name)
    return loaded


def load_jinja_plugins(loaders):
    """Load the filter and test plugins that ansible-core finds outside collections (its own, and those of the
    configured plugin folders) in this process, through each Jinja plugin ``loader``: the first template of a
    worker that uses a filter or a test would otherwise import and list them all again. A loader that fails is
    left to the tasks, which report what is wrong."""
    for loader in loaders:
        with contextlib.suppress(Exception):
            for _plugin in loader.all():  # a generator: listing it loads each plugin
                pass
