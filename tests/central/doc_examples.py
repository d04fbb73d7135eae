"""The examples of ``docs/api-examples.md`` as data: each ``curl`` command, its expected answer,
and the request it makes, so that a test can send every one to a real central.

An example in the document is a fenced ``sh`` block holding one ``curl`` command, then a line
``Answer: **201 Created**``, then optionally the answer (trimmed) in a ``json`` block, or a
``text`` block for text and Server-Sent Events, and optionally directives in HTML comments:

- ``<!-- keep BOOKING=id CODE=code -->``: later examples use ``$BOOKING`` and ``$CODE``, taken
  from the answer (a dotted path; list items by index, ``items.0.id``);
- ``<!-- skip unless served -->``: the route is still being built; the example runs once the
  central serves it, and is skipped until then.

Only what the examples use of ``curl`` and of the shell is understood here: ``-X``, ``-H``,
``-d``/``--data-binary`` (``@-`` reads a ``<<EOF`` here-document), the output flags ``-s``,
``-S``, ``-N``; ``$NAME`` and ``${NAME}`` expand outside single quotes. Anything else is refused,
so that an example the test cannot read is a failure, not a skipped check.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

_FENCE = re.compile(r"^```(\w*)\s*$")
_STATUS = re.compile(r"^Answer: \*\*([0-9]{3}) ([^*]+)\*\*$")
_DIRECTIVE = re.compile(r"^<!--\s*(.*?)\s*-->$")
_KEEP = re.compile(r"^([A-Z][A-Z0-9_]*)=([A-Za-z0-9_.]+)$")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_HEREDOC = re.compile(r"\s<<([A-Za-z_]+)\s*$")
# A value is spliced into the command before it is split into words, as the shell would inside
# double quotes: one with a space or a quote would split differently, so none may have them.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:+/%=-]*$")
_QUIET_FLAGS = {"-s", "-S", "-N", "-sS", "-sN", "-sSN", "--silent", "--show-error", "--no-buffer"}
_DATA_OPTIONS = {"-d", "--data", "--data-binary", "--data-raw"}


class ExampleError(ValueError):
    """The document holds an example this module cannot read."""


@dataclass(frozen=True, slots=True)
class Example:
    heading: str
    line: int  # of the ``sh`` fence, for messages
    command: str
    status: int
    answer: str | None = None
    answer_kind: str | None = None  # "json" or "text"
    keep: Mapping[str, str] = field(default_factory=dict)
    skip_unless_served: bool = False

    def where(self) -> str:
        return f"line {self.line} ({self.heading})"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


@dataclass
class _Draft:
    heading: str
    line: int
    command: str
    status: int | None = None
    answer: str | None = None
    answer_kind: str | None = None
    keep: dict[str, str] = field(default_factory=dict)
    skip_unless_served: bool = False

    def done(self) -> Example:
        if self.status is None:
            raise ExampleError(f"line {self.line}: no 'Answer: **CODE Phrase**' line")
        return Example(
            self.heading,
            self.line,
            self.command,
            self.status,
            self.answer,
            self.answer_kind,
            dict(self.keep),
            self.skip_unless_served,
        )


def examples(markdown: str) -> list[Example]:
    """Every example, in document order."""
    found: list[Example] = []
    draft: _Draft | None = None
    heading = ""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        index += 1
        if (fence := _FENCE.match(line)) is not None:
            end = lines.index("```", index)  # a fence is closed by a bare ``` line
            language, text = fence[1], "\n".join(lines[index:end])
            index = end + 1
            if language == "sh" and "curl" in text:
                if draft is not None:
                    found.append(draft.done())
                draft = _Draft(heading, number, text)
            elif draft is not None and language in ("json", "text") and draft.status is not None:
                if draft.answer is not None:
                    raise ExampleError(f"line {number}: a second answer for one example")
                draft.answer, draft.answer_kind = text, language
            continue
        if line.startswith("#"):
            if draft is not None:
                found.append(draft.done())
                draft = None
            heading = line.lstrip("#").strip()
        elif draft is not None and (status := _STATUS.match(line)) is not None:
            code, phrase = int(status[1]), status[2]
            if HTTPStatus(code).phrase != phrase:
                raise ExampleError(f"line {number}: {code} is {HTTPStatus(code).phrase!r}")
            draft.status = code
        elif draft is not None and (directive := _DIRECTIVE.match(line)) is not None:
            _direct(draft, directive[1], number)
    if draft is not None:
        found.append(draft.done())
    return found


def _direct(draft: _Draft, text: str, number: int) -> None:
    if text == "skip unless served":
        draft.skip_unless_served = True
        return
    verb, _, rest = text.partition(" ")
    if verb != "keep" or not rest:
        raise ExampleError(f"line {number}: unknown directive {text!r}")
    for item in rest.split():
        kept = _KEEP.match(item)
        if kept is None:
            raise ExampleError(f"line {number}: keep NAME=path, not {item!r}")
        draft.keep[kept[1]] = kept[2]


def variables_used(command: str) -> set[str]:
    return {m[1] or m[2] for m in _VARIABLE.finditer(command)}


def expand(text: str, variables: Mapping[str, str], *, here_document: bool = False) -> str:
    """``$NAME`` and ``${NAME}`` replaced as the shell does: not inside single quotes (a
    here-document has no quoting). An unknown name is an error, not an empty string."""
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if char == "$" and quote != "'" and (found := _VARIABLE.match(text, index)):
            name = found[1] or found[2]
            if name not in variables:
                raise ExampleError(f"${name} is not set")
            value = variables[name]
            if _SAFE_VALUE.match(value) is None:
                raise ExampleError(f"${name} holds characters the shell would split on")
            out.append(value)
            index = found.end()
            continue
        if not here_document:
            if char == "\\" and quote != "'":
                out.append(text[index : index + 2])
                index += 2
                continue
            if char in "'\"" and quote in (None, char):
                quote = None if quote == char else char
        out.append(char)
        index += 1
    return "".join(out)


def curl_request(command: str, variables: Mapping[str, str]) -> Request:
    """The request one ``curl`` command makes, its variables expanded."""
    lines = command.splitlines()
    words: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        words.append(line.removesuffix("\\"))
        if not line.endswith("\\"):
            break
    text = " ".join(words)
    stdin: str | None = None
    if (heredoc := _HEREDOC.search(text)) is not None:
        text = text[: heredoc.start()]
        end = lines.index(heredoc[1], index)
        stdin = expand("\n".join(lines[index:end]) + "\n", variables, here_document=True)
        index = end + 1
    if any(line.strip() for line in lines[index:]):
        raise ExampleError("an example is one curl command")
    argv = shlex.split(expand(text, variables), comments=True)
    if not argv or argv[0] != "curl":
        raise ExampleError(f"not a curl command: {text[:40]!r}")
    return _request(argv[1:], stdin)


def _request(argv: list[str], stdin: str | None) -> Request:
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    body: bytes | None = None
    words = iter(argv)
    for word in words:
        if word in _QUIET_FLAGS:
            continue  # output flags: what curl prints, not what it sends
        if word in ("-X", "--request"):
            method = next(words)
        elif word in ("-H", "--header"):
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word in _DATA_OPTIONS:
            data = next(words)
            if data == "@-":
                if stdin is None:
                    raise ExampleError("@- without a here-document")
                data = stdin
            body = data.encode()
        elif word.startswith(("http://", "https://")):
            url = word
        else:
            raise ExampleError(f"curl option {word!r} is not understood here")
    if url is None:
        raise ExampleError("no URL")
    # As curl: POST when there is a body, GET otherwise, unless -X says.
    return Request(method or ("POST" if body is not None else "GET"), url, headers, body)


def at_path(answer: Any, path: str) -> Any:
    """``items.0.id`` of an answer."""
    value = answer
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def missing_keys(documented: Any, actual: Any, where: str = "") -> list[str]:
    """Keys of the documented answer that the actual one lacks, recursively. A documented list of
    objects needs an actual one with items, each holding the first documented item's keys; values
    (and so lists of plain values) are not compared: ids and times differ on every run."""
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'the answer'} (not an object)"]
        gaps: list[str] = []
        for key, value in documented.items():
            inner = f"{where}.{key}" if where else key
            gaps += missing_keys(value, actual[key], inner) if key in actual else [inner]
        return gaps
    if isinstance(documented, list) and documented and isinstance(documented[0], dict | list):
        if not isinstance(actual, list) or not actual:
            return [f"{where or 'the answer'}[] (no items)"]
        return [gap for item in actual for gap in missing_keys(documented[0], item, f"{where}[]")]
    return []


def first_event(text: str) -> tuple[str, str]:
    """``event`` and ``data`` of the first event in Server-Sent Events text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            continue  # a heartbeat comment
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    return fields.get("event", "message"), fields.get("data", "")
