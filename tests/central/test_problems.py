"""Field errors keep where and what, never what was sent."""

from __future__ import annotations

from central.api.problems import MAX_FIELD_ERRORS, field_errors


def test_input_and_ctx_are_dropped_and_made_up_keys_masked() -> None:
    raw = [
        {
            "type": "extra_forbidden",
            "loc": ("body", "persons", 3, "Zhang San 110101199003071234"),
            "msg": "Extra inputs are not permitted",
            "input": "secret",
            "ctx": {"error": "secret"},
        },
        {"type": "missing", "loc": ("body", "case_id"), "msg": "Field required"},
    ]
    errors = field_errors(raw)
    assert [(e.location, e.message) for e in errors] == [
        ("body.persons.3.*", "Extra inputs are not permitted"),
        ("body.case_id", "Field required"),
    ]
    assert "secret" not in str([e.model_dump() for e in errors])


def test_only_the_first_errors_are_kept() -> None:
    raw = [{"loc": ("body", "persons", i), "msg": "bad"} for i in range(1000)]
    assert len(field_errors(raw)) == MAX_FIELD_ERRORS
