"""Bounded YAML: files over a limit fail at once, naming the file and the limit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml

from tests.lib.ansible_run import REPO_ROOT


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_ordinary_files_parse_with_their_aliases() -> None:
    text = "base: &base {cpu: 1}\nweb: *base\nworker: *base\n"
    assert safe_yaml.load(text, "x.yaml") == {"base": {"cpu": 1}, "web": {"cpu": 1}, "worker": {"cpu": 1}}
    assert safe_yaml.load_all("a: 1\n---\nb: 2\n", "two.yaml") == [{"a": 1}, {"b": 2}]


def test_an_alias_bomb_is_refused_with_the_file_named() -> None:
    with pytest.raises(safe_yaml.InputLimitError) as refused:
        safe_yaml.load(alias_bomb(), "api/.ci.yaml")
    assert str(refused.value).startswith("api/.ci.yaml: the document expands to more than 200000 nodes")
    assert "Fix:" in str(refused.value)


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a 1\nlist: [" + ", ".join(["*a"] * 300) + "]\n"
    with pytest.raises(safe_yaml.InputLimitError, match=r"x.yaml.*the number of aliases exceeds the limit of 200"):
        safe_yaml.load(text, "x.yaml")


def test_deep_nesting_is_refused() -> None:
    text = "[" * 150 + "]" * 150
    with pytest.raises(safe_yaml.InputLimitError, match=r"deep.yaml.*the nesting exceeds the limit of 100"):
        safe_yaml.load(text, "deep.yaml")


def test_a_large_file_is_refused_before_parsing() -> None:
    text = "key: " + "x" * (10 * 1024 * 1024) + "\n"
    with pytest.raises(safe_yaml.InputLimitError) as refused:
        safe_yaml.load(text, "ui/.ci.yaml")
    assert str(refused.value) == (
        f"ui/.ci.yaml: {len(text)} bytes exceeds the limit of 1048576 bytes. Fix: make the file smaller or split it."
    )


def test_invalid_yaml_names_the_file() -> None:
    with pytest.raises(safe_yaml.YamlError, match=r"^bad.yaml: not valid YAML"):
        safe_yaml.load("a: [1, 2\n", "bad.yaml")


def test_a_custom_loader_keeps_its_constructors() -> None:
    class Tagged(yaml.SafeLoader):
        pass

    Tagged.add_constructor("!Ref", lambda loader, node: {"Ref": loader.construct_scalar(node)})
    assert safe_yaml.load("v: !Ref Bucket\n", "t.yaml", base=Tagged) == {"v": {"Ref": "Bucket"}}
    with pytest.raises(safe_yaml.InputLimitError):
        safe_yaml.load(alias_bomb(), "t.yaml", base=Tagged)


def test_the_bomb_fails_fast_in_bounded_memory() -> None:
    # in a child process limited to 512 MiB of address space: plain yaml.safe_load of the same text
    # followed by a walk of its data would need far more
    code = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, 512 * 1024 * 1024))
        sys.path.insert(0, {str(REPO_ROOT / "collections")!r})
        from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
        try:
            safe_yaml.load({alias_bomb(10)!r}, "api/.ci.yaml")
        except safe_yaml.InputLimitError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: api/.ci.yaml: the document expands to more than")


def python_parser(base=None):
    """The same limited loader, reading with PyYAML's own scanner and parser instead of libyaml's."""
    limited = safe_yaml.limited_loader(base)
    return type("PythonParsed", (limited,), {"libyaml": False})


MANIFEST = textwrap.dedent(
    """\
    # a manifest in the shapes upstream install files use: anchors, block scalars, flow maps, timestamps
    apiVersion: v1
    kind: ConfigMap
    metadata: &meta
      name: settings
      labels: {app.kubernetes.io/name: demo, "quoted key": 'single'}
      annotations:
        created: 2026-12-04T10:00:00Z
    data:
      script: |
        #!/bin/sh
        echo "hello"
      folded: >-
        one
        two
      empty: ""
      octal: 0755
      bools: [yes, no, on, off, true]
    copy: *meta
    ---
    ---
    apiVersion: v1
    kind: Secret
    stringData: {token: "not: a mapping"}
    """
)


def test_libyaml_events_read_what_pyyamls_parser_reads() -> None:
    limited = safe_yaml.limited_loader()
    loader = limited(MANIFEST)
    try:
        assert loader._libyaml_events is not None, "PyYAML here has libyaml: the fast parser must be the one used"
    finally:
        loader.dispose()
    fast = safe_yaml.load_all(MANIFEST, "m.yaml")
    assert fast == safe_yaml.load_all(MANIFEST, "m.yaml", base=python_parser())
    assert fast == list(yaml.safe_load_all(MANIFEST))
    assert fast[0]["data"]["bools"] == [True, False, True, False, True]
    assert fast[0]["copy"]["labels"]["quoted key"] == "single"
    assert fast[1] is None
    assert fast[2]["stringData"] == {"token": "not: a mapping"}


@pytest.mark.parametrize("parser", ["libyaml", "python"])
def test_the_limits_hold_with_either_parser(parser: str) -> None:
    base = None if parser == "libyaml" else python_parser()
    with pytest.raises(safe_yaml.InputLimitError, match=r"the document expands to more than 200000 nodes"):
        safe_yaml.load(alias_bomb(), "a.yaml", base=base)
    with pytest.raises(safe_yaml.InputLimitError, match=r"b.yaml \(line 2\): the number of aliases exceeds"):
        safe_yaml.load("a: &a 1\nlist: [" + ", ".join(["*a"] * 300) + "]\n", "b.yaml", base=base)
    with pytest.raises(safe_yaml.InputLimitError, match=r"c.yaml.*the nesting exceeds the limit of 100"):
        safe_yaml.load("[" * 150 + "]" * 150, "c.yaml", base=base)


def test_a_syntax_error_is_reported_as_pyyamls_parser_words_it() -> None:
    text = "a: 1\nb: [1, 2\nc: 3\n"
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.load(text, Loader=python_parser())  # noqa: S506 - a SafeLoader with limits
    with pytest.raises(safe_yaml.YamlError) as refused:
        safe_yaml.load(text, "bad.yaml")
    assert str(refused.value) == f"bad.yaml: not valid YAML: {' '.join(str(expected.value).split())}"
    assert "^" in str(refused.value), "PyYAML's message shows the line with a caret"
