"""Drift test: openapi.yaml, the hand-kept contract, against the schema the app serves.

The served schema is FastAPI's (``app.openapi()``, the same document as ``/openapi.json``).
The comparison is structural, not textual: routes, parameters (name, location,
requiredness, type), status codes, media types, request bodies and the properties of the
shared component schemas. Titles, descriptions, examples and the spelling of "or null"
(``anyOf [T, null]`` versus ``type: [T, "null"]``) are normalised away.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from app.http.application import create_app
from app.http.schemas import LIMIT_MAX, NAME_MAX, NAME_PATTERN, TOPIC_PATTERN
from app.settings import Settings
from tests.support import run_server

CONTRACT = Path(__file__).resolve().parent.parent / "openapi.yaml"
COMPONENTS = ("ItemIn", "ItemOut", "Health", "ProblemDetails", "TopicOut")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})

Doc = dict[str, Any]
Operation = tuple[str, str]  # ("GET", "/items")
K = TypeVar("K")
V = TypeVar("V")


@pytest.fixture(scope="module")
def served() -> Doc:
    """The schema FastAPI generates for the app (what /openapi.json serves)."""
    return create_app(Settings(publish_token="x")).openapi()


@pytest.fixture(scope="module")
def documented() -> Doc:
    """openapi.yaml, as PyYAML loads it."""
    loaded = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{CONTRACT.name} is not a YAML mapping"
    return loaded


# Reading either document ---------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` value anywhere under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _pointer(doc: Doc, ref: str) -> Any:
    """The node a local reference (``#/components/...``) points at; KeyError if none."""
    if not ref.startswith("#/"):
        raise KeyError(f"{ref}: only local references are supported")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _resolve(doc: Doc, node: Any) -> Any:
    """``node`` with local ``$ref``s followed; keys beside a ``$ref`` are kept (3.1 rules)."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref not in seen, f"reference cycle through {ref}"
        seen.add(ref)
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        try:
            target = _pointer(doc, ref)
        except (KeyError, TypeError):
            raise AssertionError(f"$ref {ref!r} points nowhere") from None
        node = {**target, **siblings}
    return node


def _operations(doc: Doc) -> dict[Operation, Doc]:
    return {
        (method.upper(), path): operation
        for path, item in doc.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _kinds(doc: Doc, schema: Any) -> frozenset[str]:
    """The JSON types a schema admits besides null; arrays carry their items' types."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, dict):
        return frozenset({"any"})
    kinds: set[str] = set()
    for keyword in ("anyOf", "oneOf"):
        for branch in schema.get(keyword, []):
            kinds |= _kinds(doc, branch)
    declared = schema.get("type")
    for kind in [declared] if isinstance(declared, str) else declared or []:
        if kind == "array":
            kinds.add(f"array[{_type_name(doc, schema.get('items', {}))}]")
        elif kind != "null":
            kinds.add(kind)
    if not kinds and declared is None and not any(k in schema for k in ("anyOf", "oneOf")):
        kinds.add("any")
    return frozenset(kinds)


def _type_name(doc: Doc, schema: Any) -> str:
    """A schema's type for comparison: ``integer``, ``array[string]``, ``any``..."""
    return "|".join(sorted(_kinds(doc, schema))) or "null"


def _parameters(doc: Doc, operation: Doc) -> dict[tuple[str, str], tuple[bool, str]]:
    """(location, name) -> (required, type) for each parameter of an operation."""
    result: dict[tuple[str, str], tuple[bool, str]] = {}
    for raw in operation.get("parameters", []):
        parameter = _resolve(doc, raw)
        location, name = parameter["in"], parameter["name"]
        if location == "header":  # header names are case-insensitive
            name = name.lower()
        result[(location, name)] = (
            bool(parameter.get("required", False)),
            _type_name(doc, parameter.get("schema", {})),
        )
    return result


def _is_framework_validation_422(status: str, response: Doc) -> bool:
    """FastAPI's automatic "422 Validation Error" (HTTPValidationError, application/json).

    FastAPI adds it to every route with parameters, but the app answers invalid parameters
    with 400 problem+json (app/http/problems.py), so the contract does not list it.
    """
    content = response.get("content", {})
    if status != "422" or set(content) != {"application/json"}:
        return False
    ref: str = content["application/json"].get("schema", {}).get("$ref", "")
    return ref.endswith("/HTTPValidationError")


def _is_framework_problem_json_copy(status: str, media_type: str, content: Doc) -> bool:
    """The ``application/json`` twin FastAPI adds next to an error's problem+json entry.

    ``responses={code: {"model": ProblemDetails, "content": {"application/problem+json":
    {}}}}`` makes FastAPI put the model's schema under application/json, a media type the
    app never sends errors in (app/http/problems.py always sends application/problem+json).
    """
    schema = content.get(media_type, {}).get("schema", {})
    return (
        int(status) >= 400
        and media_type == "application/json"
        and "application/problem+json" in content
        and schema.get("$ref", "").endswith("/ProblemDetails")
    )


def _responses(doc: Doc, operation: Doc) -> dict[str, frozenset[str]]:
    """Status code -> the media types of its body, without the framework artifacts above."""
    result: dict[str, frozenset[str]] = {}
    for code, raw in operation.get("responses", {}).items():
        status, response = str(code), _resolve(doc, raw)
        if _is_framework_validation_422(status, response):
            continue
        content = response.get("content", {})
        result[status] = frozenset(
            media
            for media in content
            if not _is_framework_problem_json_copy(status, media, content)
        )
    return result


def _request_body(doc: Doc, operation: Doc) -> tuple[bool, frozenset[str]] | None:
    """(required, media types) of an operation's request body, None when it takes none."""
    if "requestBody" not in operation:
        return None
    body = _resolve(doc, operation["requestBody"])
    return bool(body.get("required", False)), frozenset(body.get("content", {}))


def _component(doc: Doc, name: str) -> Doc:
    schema = doc.get("components", {}).get("schemas", {}).get(name)
    assert isinstance(schema, dict), f"component schema {name} is missing"
    resolved: Doc = _resolve(doc, schema)
    return resolved


def _show(value: Any) -> str:
    if isinstance(value, frozenset | set):
        return "{" + ", ".join(sorted(map(str, value))) + "}"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return f"{value[0]} {value[1]}"
    return str(value)


def _show_body(body: tuple[bool, frozenset[str]] | None) -> str:
    if body is None:
        return "no request body"
    required, media_types = body
    return f"required={required} media types {_show(media_types)}"


def _differences(what: str, served: Mapping[K, V], documented: Mapping[K, V]) -> list[str]:
    """One line per key that only one side has, or that the sides describe differently.

    Values of None mean only the keys are compared.
    """

    def _as(value: V) -> str:
        return "" if value is None else f" ({_show(value)})"

    lines = [
        f"{what} {_show(key)}{_as(served[key])}: the app serves it; openapi.yaml lacks it"
        for key in served
        if key not in documented
    ]
    lines += [
        f"{what} {_show(key)}{_as(documented[key])}: openapi.yaml has it; the app does not serve it"
        for key in documented
        if key not in served
    ]
    lines += [
        f"{what} {_show(key)}: the app serves {_show(served[key])}, "
        f"openapi.yaml says {_show(documented[key])}"
        for key in served
        if key in documented and served[key] != documented[key]
    ]
    return lines


def _common_operations(served: Doc, documented: Doc) -> Iterator[tuple[str, Doc, Doc]]:
    """(label, served operation, documented operation) for operations both sides have."""
    ours, theirs = _operations(served), _operations(documented)
    for key in sorted(ours.keys() & theirs.keys()):
        yield _show(key), ours[key], theirs[key]


def _report(problems: list[str]) -> str:
    return "openapi.yaml has drifted from the served API:\n  " + "\n  ".join(problems)


# The contract on its own ---------------------------------------------------------------


def test_contract_is_openapi_3_1_with_resolvable_refs(documented: Doc) -> None:
    assert str(documented.get("openapi", "")).startswith("3.1."), (
        f"openapi.yaml declares openapi {documented.get('openapi')!r}, expected 3.1.x"
    )
    broken = []
    for ref in sorted(set(_refs(documented))):
        try:
            _pointer(documented, ref)
        except (KeyError, TypeError):
            broken.append(ref)
    assert not broken, f"openapi.yaml has $refs that point nowhere: {broken}"


# The contract against the served schema ------------------------------------------------


def test_operations_match(served: Doc, documented: Doc) -> None:
    problems = _differences(
        "operation",
        {key: None for key in _operations(served)},
        {key: None for key in _operations(documented)},
    )
    assert not problems, _report(problems)


def test_parameters_match(served: Doc, documented: Doc) -> None:
    problems: list[str] = []
    for label, ours, theirs in _common_operations(served, documented):
        problems += _differences(
            f"{label}: parameter",
            {k: f"required={r} type={t}" for k, (r, t) in _parameters(served, ours).items()},
            {k: f"required={r} type={t}" for k, (r, t) in _parameters(documented, theirs).items()},
        )
    assert not problems, _report(problems)


def test_response_status_codes_match(served: Doc, documented: Doc) -> None:
    problems: list[str] = []
    for label, ours, theirs in _common_operations(served, documented):
        problems += _differences(
            f"{label}: response",
            {code: None for code in _responses(served, ours)},
            {code: None for code in _responses(documented, theirs)},
        )
    assert not problems, _report(problems)


def test_response_media_types_match(served: Doc, documented: Doc) -> None:
    problems: list[str] = []
    for label, ours, theirs in _common_operations(served, documented):
        served_codes, documented_codes = _responses(served, ours), _responses(documented, theirs)
        for code in sorted(served_codes.keys() & documented_codes.keys()):
            if served_codes[code] != documented_codes[code]:
                problems.append(
                    f"{label}: response {code}: the app serves media types "
                    f"{_show(served_codes[code])}, openapi.yaml says "
                    f"{_show(documented_codes[code])}"
                )
    assert not problems, _report(problems)


def test_request_bodies_match(served: Doc, documented: Doc) -> None:
    problems: list[str] = []
    for label, ours, theirs in _common_operations(served, documented):
        served_body = _request_body(served, ours)
        documented_body = _request_body(documented, theirs)
        if served_body != documented_body:
            problems.append(
                f"{label}: request body: the app serves {_show_body(served_body)}, "
                f"openapi.yaml says {_show_body(documented_body)}"
            )
    assert not problems, _report(problems)


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_properties_match(served: Doc, documented: Doc, name: str) -> None:
    problems = _differences(
        f"{name}: property",
        {prop: None for prop in _component(served, name).get("properties", {})},
        {prop: None for prop in _component(documented, name).get("properties", {})},
    )
    assert not problems, _report(problems)


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_required_properties_match(served: Doc, documented: Doc, name: str) -> None:
    ours = set(_component(served, name).get("required", []))
    theirs = set(_component(documented, name).get("required", []))
    assert ours == theirs, _report(
        [
            f"{name}: required properties: the app requires {_show(ours)}, "
            f"openapi.yaml requires {_show(theirs)}"
        ]
    )


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_property_types_match(served: Doc, documented: Doc, name: str) -> None:
    ours, theirs = _component(served, name), _component(documented, name)
    problems = _differences(
        f"{name}: type of property",
        {
            prop: _type_name(served, schema)
            for prop, schema in ours.get("properties", {}).items()
            if prop in theirs.get("properties", {})
        },
        {
            prop: _type_name(documented, schema)
            for prop, schema in theirs.get("properties", {}).items()
            if prop in ours.get("properties", {})
        },
    )
    assert not problems, _report(problems)


def test_secured_operations_are_those_that_answer_401(served: Doc, documented: Doc) -> None:
    """The bearer scheme guards exactly the operations whose handler can refuse a token."""
    global_security: list[dict[str, list[str]]] = documented.get("security", [])
    requirements: dict[Operation, list[dict[str, list[str]]]] = {
        key: operation.get("security", global_security)
        for key, operation in _operations(documented).items()
    }
    secured = {key for key, required in requirements.items() if required}
    answering_401 = {
        key for key, operation in _operations(served).items() if "401" in operation["responses"]
    }
    assert secured == answering_401, (
        f"openapi.yaml secures {_show({_show(k) for k in secured})}; the app answers 401 on "
        f"{_show({_show(k) for k in answering_401})}"
    )
    schemes = documented.get("components", {}).get("securitySchemes", {})
    for key in secured:
        for requirement in requirements[key]:
            for scheme in requirement:
                assert schemes.get(scheme, {}).get("scheme") == "bearer", (
                    f"{_show(key)}: security scheme {scheme!r} is not an HTTP bearer scheme"
                )


def test_documented_limits_are_the_ones_the_app_enforces(documented: Doc) -> None:
    """Constraints the comparison above cannot see (it compares shapes): each number and
    pattern the contract states is the app's own."""
    schemas = documented["components"]["schemas"]
    defaults = Settings(publish_token="x")
    name, item = schemas["Name"], schemas["ItemIn"]["properties"]
    assert (name["pattern"], name["maxLength"]) == (NAME_PATTERN, NAME_MAX)
    assert (item["key"]["pattern"], item["key"]["maxLength"]) == (NAME_PATTERN, NAME_MAX)
    topic_name = schemas["TopicName"]
    assert (topic_name["pattern"], topic_name["maxLength"]) == (TOPIC_PATTERN, NAME_MAX)
    assert (item["ttl"]["minimum"], item["ttl"]["maximum"]) == (
        defaults.ttl_min,
        defaults.ttl_max,
    )
    assert schemas["Limit"]["maximum"] == LIMIT_MAX
    body = documented["paths"]["/items"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][1]["maxItems"] == defaults.max_batch
    topics = documented["components"]["parameters"]["Topic"]["schema"]["items"]
    assert topics["pattern"] == NAME_PATTERN


# Known gaps in the served schema: the contract is right and these pin the app's bugs. ---
# When app/ is fixed these XPASS and fail (strict): drop the marker and the normaliser.


def test_served_schema_lists_no_framework_422(served: Doc) -> None:
    listed = [
        _show(key)
        for key, operation in _operations(served).items()
        if any(
            _is_framework_validation_422(str(code), _resolve(served, response))
            for code, response in operation["responses"].items()
        )
    ]
    assert not listed, f"the served schema lists 422 HTTPValidationError on {listed}"


def test_served_error_responses_are_only_problem_json(served: Doc) -> None:
    # /healthz answers 503 with its usual Health body: a probe reads the status, and a
    # person the same fields as when healthy.
    listed = [
        f"{_show(key)} {code}"
        for key, operation in _operations(served).items()
        for code, response in operation["responses"].items()
        if int(code) >= 400
        and key[1] != "/healthz"
        and "application/json" in _resolve(served, response).get("content", {})
    ]
    assert not listed, f"the served schema lists application/json error bodies on {listed}"


# What is compared is what is served ----------------------------------------------------


def test_served_openapi_json_is_the_apps_schema() -> None:
    with run_server() as server:
        response = httpx.get(server.url + "/openapi.json", timeout=10)
        expected = server.app.openapi()
    assert response.status_code == 200, f"/openapi.json answered {response.status_code}"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected, "/openapi.json differs from app.openapi()"
