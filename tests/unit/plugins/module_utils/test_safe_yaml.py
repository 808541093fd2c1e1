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
