"""The room's errors: BiomageErrors whose problems follow the message and reach the module result."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import template
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import (
    CfnError,
    PlanFailed,
    TemplateError,
    ValidationFailed,
)
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail


class Failed(Exception):
    pass


class RecordingModule:
    def __init__(self) -> None:
        self.failure: dict[str, Any] = {}

    def fail_json(self, **result: Any) -> NoReturn:
        self.failure = result
        raise Failed


@pytest.mark.parametrize("error_class", [CfnError, ValidationFailed, PlanFailed, TemplateError])
def test_every_error_of_the_room_is_a_biomage_error(error_class: type) -> None:
    assert issubclass(error_class, CfnError) and issubclass(error_class, BiomageError)


def test_template_error_is_the_one_template_reading_raises() -> None:
    assert template.TemplateError is TemplateError
    with pytest.raises(CfnError, match=r"t\.yaml: the template is empty"):
        template.load_template("", "t.yaml")


def test_problems_follow_the_message_and_become_the_problems_result() -> None:
    exc = ValidationFailed("2 problem(s) in the templates or their inputs; nothing was changed", problems=["a", "b"])
    assert str(exc) == "2 problem(s) in the templates or their inputs; nothing was changed\n- a\n- b"
    assert exc.message == "2 problem(s) in the templates or their inputs; nothing was changed"
    assert exc.problems == ["a", "b"] and exc.details == {"problems": ["a", "b"]}
    module = RecordingModule()
    with pytest.raises(Failed):
        fail(module, exc, changed=False)
    assert module.failure == {"msg": str(exc), "problems": ["a", "b"], "changed": False}


def test_an_error_without_problems_is_its_message() -> None:
    exc = CfnError("s: ended in ROLLBACK_COMPLETE")
    assert str(exc) == "s: ended in ROLLBACK_COMPLETE"
    assert exc.problems == [] and exc.details == {}
