"""A Secret's values never appear in an error message, not even when the Secret is invalid.

Errors reach terminals, logs and the control API's answers. Each case writes a Secret whose value is
wrong in some way (or sits beside something wrong) and checks every message that reading, defaulting and
validating it produce — for the value as written and for its base64 form.
"""

from __future__ import annotations

import base64
import json

import pytest

from wisp.api.defaults import apply_defaults
from wisp.api.errors import FieldError, ManifestError
from wisp.api.loader import load_text
from wisp.api.validation import validate

SECRET = "hunter2-S3cr3t-Value"
B64 = base64.b64encode(SECRET.encode()).decode()
HEAD = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"

CASES = {
    "data not base64": f"data:\n  token: '{SECRET}!'\n",
    "data key invalid": f"data:\n  'bad key': {B64}\n",
    "data value a list": f"data:\n  token: ['{SECRET}']\n",
    "data value a mapping": f"data:\n  token: {{inner: '{SECRET}'}}\n",
    "data a string": f"data: '{SECRET}'\n",
    "data value deep": "data:\n  token: " + "[" * 70 + f"'{SECRET}'" + "]" * 70 + "\n",
    "stringData value a list": f"stringData:\n  token: ['{SECRET}']\n",
    "stringData value a number": "stringData:\n  token: 8675309\n",
    "stringData key invalid": f"stringData:\n  'bad key!': '{SECRET}'\n",
    "stringData not text": f'stringData:\n  token: "{SECRET}\\ud800"\n',
    "stringData and data both bad": f"data:\n  a: '{SECRET}!'\nstringData:\n  b: ['{SECRET}']\n",
    "unknown field": f"password: '{SECRET}'\n",
    "bad name beside a good value": f"data:\n  token: {B64}\n---\n"
    + HEAD.replace("creds", "Bad_Name")
    + f"stringData:\n  token: '{SECRET}'\n",
    "type a list": f"type: ['{SECRET}']\ndata:\n  token: '{SECRET}?'\n",
    "unterminated quote": f"stringData:\n  token: \"{SECRET}\n",
    "bad escape": f'stringData:\n  token: "{SECRET}\\q"\n',
    "tab indentation": f"stringData:\n\ttoken: {SECRET}\n",
}


def _messages(text: str) -> list[str]:
    """Every message reading and validating `text` gives, in every form a user or client sees."""
    try:
        docs = load_text(text)
    except ManifestError as exc:
        return [str(exc), json.dumps(exc.to_dict())]
    found: list[FieldError] = []
    for doc in docs:
        found.extend(validate(apply_defaults(doc.resource)))
    error = ManifestError(found, "item 0 (Secret/creds)")
    return [str(e) for e in found] + [str(error), json.dumps(error.to_dict())]


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_secret_value_in_any_message(case: str) -> None:
    messages = _messages(HEAD + CASES[case])
    assert any(m.strip() for m in messages), "each case is invalid: it must give an error"
    for message in messages:
        assert SECRET not in message, message
        assert B64 not in message, message
        assert "8675309" not in message, message


def test_the_message_still_names_the_field() -> None:
    (error,) = validate(apply_defaults(load_text(HEAD + CASES["data not base64"])[0].resource))
    assert error.path == "data[token]"
    assert "base64" in error.message
    assert "<value omitted>" in error.message
