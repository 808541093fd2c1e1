# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML read from repositories and inventories, with limits.

Every file biomage.iac reads from a repository or an inventory (templates, `.ci.yaml`, `.flux.ci`,
releases, the cluster config) is parsed through :func:`load` or :func:`load_all`, with limits on
its size, on how many aliases it uses, on how deep it nests, and on how many nodes it has once its
aliases are expanded. A file over a limit (an "alias bomb" that expands a few hundred bytes into
billions of nodes, a 10 MB `.ci.yaml`) fails at once with :class:`InputLimitError` naming the file
and the limit, before its data reaches anything that would copy or walk it.
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    import yaml
    from yaml.events import AliasEvent

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

try:
    from yaml._yaml import CParser as _LibyamlParser
except ImportError:  # PyYAML built without libyaml: its own parser does the work
    _LibyamlParser = None

# Defaults: far above what a real template (CloudFormation's own limit is 1 MB through S3), release
# or CI file needs, far below what exhausts memory.
MAX_BYTES = 1024 * 1024
MAX_ALIASES = 200
MAX_DEPTH = 100
MAX_NODES = 200_000


class InputLimitError(BiomageError):
    """A file is larger, deeper or more aliased than biomage.iac reads."""


class YamlError(BiomageError):
    """A file is not valid YAML."""


def _limits(max_bytes, max_aliases, max_depth, max_nodes):
    return {"max_bytes": max_bytes, "max_aliases": max_aliases, "max_depth": max_depth, "max_nodes": max_nodes}


class _LibyamlEvents:
    """Parser events from libyaml when PyYAML has it, for a loader class built on ``yaml.SafeLoader``.

    Only the scanner and parser change (PyYAML's own take about six times as long: one second for
    Flux's 340 KB install manifest): the composer, constructors and resolver stay PyYAML's Python
    classes, so the limits below and every loader's constructors apply as before. Error messages come
    from PyYAML's parser (see :func:`parse`). A class with ``libyaml = False`` uses PyYAML's parser.
    """

    libyaml = True

    def __init__(self, stream):
        super().__init__(stream)
        self._libyaml_events = _LibyamlParser(stream) if self.libyaml and _LibyamlParser is not None else None

    def check_event(self, *choices):
        if self._libyaml_events is None:
            return super().check_event(*choices)
        return self._libyaml_events.check_event(*choices)

    def peek_event(self):
        if self._libyaml_events is None:
            return super().peek_event()
        return self._libyaml_events.peek_event()

    def get_event(self):
        if self._libyaml_events is None:
            return super().get_event()
        return self._libyaml_events.get_event()

    def dispose(self):
        self._libyaml_events = None
        super().dispose()


def parse(loader_class, text, source, read, configure=None):
    """``read(loader)`` on a loader of ``loader_class`` for ``text`` (``configure(loader)`` first).

    After a YAML error with libyaml's events, the text is read again with PyYAML's parser: its
    message (with the line and its snippet) is the one raised, and a text only libyaml refuses is
    still read as PyYAML reads it.
    """
    try:
        return _read_with(loader_class, text, source, read, configure)
    except yaml.YAMLError:
        if not (getattr(loader_class, "libyaml", False) and _LibyamlParser is not None):
            raise
    python_parsed = type(loader_class.__name__, (loader_class,), {"libyaml": False})
    return _read_with(python_parsed, text, source, read, configure)


def _read_with(loader_class, text, source, read, configure):
    loader = loader_class(text)
    loader.source = source
    if configure is not None:
        configure(loader)
    try:
        return read(loader)
    finally:
        loader.dispose()


def limited_loader(base=None):
    """A loader class derived from ``base`` (default ``yaml.SafeLoader``) that enforces the limits."""
    base = base or yaml.SafeLoader

    class LimitedLoader(_LibyamlEvents, base):
        source = "<input>"
        limits = _limits(MAX_BYTES, MAX_ALIASES, MAX_DEPTH, MAX_NODES)

        def __init__(self, stream):
            super().__init__(stream)
            self._aliases = 0
            self._depth = 0

        def _refuse(self, what, limit_name):
            mark = self.peek_event().start_mark if self.check_event() else None
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise InputLimitError(
                f"{self.source}{where}: {what} exceeds the limit of {self.limits[limit_name]} {limit_name[4:]}. "
                "Fix: simplify the file (no alias chains, less nesting), or split it."
            )

        def compose_node(self, parent, index):
            if self.check_event(AliasEvent):
                self._aliases += 1
                if self._aliases > self.limits["max_aliases"]:
                    self._refuse("the number of aliases", "max_aliases")
            self._depth += 1
            if self._depth > self.limits["max_depth"]:
                self._refuse("the nesting", "max_depth")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_document(self, node):
            self._check_expanded_size(node)
            return super().construct_document(node)

        def _check_expanded_size(self, root):
            """Nodes once aliases are expanded, counted without expanding (shared subtrees memoised)."""
            sizes = {}
            stack = [(root, False)]
            while stack:
                node, children_done = stack.pop()
                if id(node) in sizes:
                    continue
                children = _children(node)
                if children_done:
                    sizes[id(node)] = 1 + sum(sizes.get(id(child), 0) for child in children)
                    if sizes[id(node)] > self.limits["max_nodes"]:
                        raise InputLimitError(
                            f"{self.source}: the document expands to more than {self.limits['max_nodes']} nodes "
                            f"(through {self._aliases} aliases). Fix: remove the alias chains; YAML anchors "
                            "that reference other anchors multiply the data."
                        )
                    continue
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in sizes)

    return LimitedLoader


def _children(node):
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_size(text, source, max_bytes=MAX_BYTES):
    """Refuse ``text`` over ``max_bytes`` before any parser reads it."""
    size = len(text.encode("utf-8")) if isinstance(text, str) else len(text)
    if size > max_bytes:
        raise InputLimitError(
            f"{source}: {size} bytes exceeds the limit of {max_bytes} bytes. Fix: make the file smaller or split it."
        )


def _read_documents(loader):
    documents = []
    while loader.check_data():
        documents.append(loader.get_data())
    return documents


def load(text, source="<input>", base=None, **limits):
    """The single document of ``text`` (None when empty), parsed within the limits of :func:`load_all`."""
    documents = load_all(text, source, base, **limits)
    if len(documents) > 1:
        raise YamlError(f"{source}: expected one YAML document, found {len(documents)}. Fix: remove the extra `---`.")
    return documents[0] if documents else None


def load_all(
    text,
    source="<input>",
    base=None,
    max_bytes=MAX_BYTES,
    max_aliases=MAX_ALIASES,
    max_depth=MAX_DEPTH,
    max_nodes=MAX_NODES,
):
    """Every document of ``text`` (a list), parsed within the limits (they apply to each document)."""
    if not HAS_YAML:
        raise YamlError(f"{source}: PyYAML is required ({YAML_IMPORT_ERROR})")
    check_size(text, source, max_bytes)
    loader_class = base if getattr(base, "limits", None) is not None else limited_loader(base)
    limits = _limits(max_bytes, max_aliases, max_depth, max_nodes)
    try:
        return parse(loader_class, text, source, _read_documents, lambda loader: setattr(loader, "limits", limits))
    except yaml.YAMLError as exc:
        raise YamlError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
