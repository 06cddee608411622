"""Who may do what: the publish token, and JWTs that grant topics when a secret is set.

Without ``jwt_secret`` reads are open and publishing needs the publish token. With it,
reads need an HS256 JWT whose ``tailcast.subscribe`` patterns cover every topic asked
for, and publishing takes the publish token or a JWT whose ``tailcast.publish`` patterns
cover every posted item's topic. A topic asked for may be a pattern itself: it is covered
when one of the token's patterns matches every topic it matches (`TopicPatterns.covers`).
In a pattern ``*`` matches any run of characters and nothing else is special
(`streaming.patterns`: linear time, whatever the pattern).
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

import jwt
from starlette.requests import Request

from app.http.problems import Problem
from app.settings import Settings
from streaming.patterns import TopicPatterns, is_pattern

Action = Literal["publish", "subscribe"]

_CHALLENGE = 'Bearer realm="tailcast"'
_INVALID = f'{_CHALLENGE}, error="invalid_token"'
_INSUFFICIENT = f'{_CHALLENGE}, error="insufficient_scope"'
_ALGORITHMS = ["HS256"]
_VERBS = {"publish": "publishing to", "subscribe": "reading"}


@dataclass(frozen=True, slots=True)
class Grant:
    """The topics a request may use for one action: all of them (``patterns`` None, the
    publish token) or those the token's patterns match."""

    action: Action
    patterns: tuple[str, ...] | None = None

    def require(self, topics: Collection[str]) -> None:
        """Refuse with 403 unless every topic is covered; no topics means every topic,
        which only the pattern ``*`` itself grants."""
        if self.patterns is None:
            return
        patterns = _compiled(self.patterns)
        if not topics:
            if not patterns.matches_everything:
                raise _forbidden(
                    f"The token does not allow {_VERBS[self.action]} every topic (that needs "
                    f"the pattern '*' in its tailcast.{self.action} claim); name the topics."
                )
            return
        for topic in sorted(topics):
            if not patterns.covers(topic):  # a topic, or a pattern read (every topic it matches)
                what = "every topic of the pattern" if is_pattern(topic) else "topic"
                raise _forbidden(
                    f"The token does not allow {_VERBS[self.action]} {what} {topic!r}."
                )


def authorize_publish(request: Request, settings: Settings, publish_token: str) -> Grant:
    """Who is publishing: the publish token (every topic) or a JWT's publish grant.

    Checked before the body is read; the caller then requires the posted topics.
    """
    token = _bearer(request)
    if token is None:
        raise _unauthorized(
            "Publishing needs 'Authorization: Bearer <token>' (the publish token"
            + (" or a JWT)." if settings.jwt_secret else ")."),
            error=False,
        )
    if hmac.compare_digest(token.encode(), publish_token.encode()):
        return _EVERY_TOPIC
    if settings.jwt_secret is None:
        raise _unauthorized("The bearer token is not the publish token.")
    claims = _decode(
        token,
        settings.jwt_secret.get_secret_value(),
        "The bearer token is neither the publish token nor a valid JWT",
    )
    return Grant("publish", _patterns(claims, "publish"))


def authorize_read(
    request: Request, settings: Settings, topics: Collection[str], access_token: str | None
) -> None:
    """Refuse a read unless a JWT covers ``topics`` (all topics when empty); reads are
    open when no ``jwt_secret`` is set. The token comes from the ``Authorization``
    header or, for clients that cannot set one (``EventSource``), ``?access_token=``."""
    if settings.jwt_secret is None:
        return
    token = _bearer(request) or access_token or None
    if token is None:
        raise _unauthorized(
            "Reading needs a JWT: 'Authorization: Bearer <jwt>' or '?access_token=<jwt>'.",
            error=False,
        )
    claims = _decode(token, settings.jwt_secret.get_secret_value(), "The token is not a valid JWT")
    Grant("subscribe", _patterns(claims, "subscribe")).require(topics)


_EVERY_TOPIC = Grant("publish")


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = _authorization(request).partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


def _authorization(request: Request) -> str:
    """The ``Authorization`` header (the first), read from the scope as `Request.headers`
    reads it (names in lower case): building starlette's `Headers` cost more than the
    check itself."""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return ""


def _decode(token: str, secret: str, refusal: str) -> dict[str, Any]:
    """The claims of a valid HS256 token; otherwise 401: ``refusal`` and what is wrong
    (never the token itself)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=_ALGORITHMS)
    except jwt.ExpiredSignatureError:
        reason = "it has expired (exp)"
    except jwt.ImmatureSignatureError as exc:
        reason = f"it is not valid yet ({_claim(exc)})"
    except jwt.InvalidSignatureError:
        reason = "its signature does not match (wrong secret, or altered)"
    except jwt.InvalidAlgorithmError:
        reason = "it is not signed with HS256"
    except jwt.DecodeError as exc:
        reason = f"it is malformed ({exc})"
    except jwt.InvalidTokenError as exc:
        reason = f"it is invalid ({exc})"
    else:
        return claims
    raise _unauthorized(f"{refusal}: {reason}.")


def _claim(exc: jwt.ImmatureSignatureError) -> str:
    return "iat" if "(iat)" in str(exc) else "nbf"


def _patterns(claims: dict[str, Any], action: Action) -> tuple[str, ...]:
    grants = claims.get("tailcast")
    patterns = grants.get(action, []) if isinstance(grants, dict) else []
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise _forbidden(f"The token's tailcast.{action} claim is not a list of strings.")
    return tuple(patterns)


@functools.lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> TopicPatterns:
    """A token's patterns, parsed (tokens repeat: cached)."""
    return TopicPatterns(patterns)


def _unauthorized(detail: str, *, error: bool = True) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": _INVALID if error else _CHALLENGE})


def _forbidden(detail: str) -> Problem:
    return Problem(403, detail, headers={"WWW-Authenticate": _INSUFFICIENT})


class RedactAccessTokens(logging.Filter):
    """Blanks ``access_token=...`` in log records (uvicorn's access log shows the query).

    A parameter counts by its decoded name, as the server reads it (``%61ccess_token`` is
    ``access_token``), in any case, between any of the separators a client might mean.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        record.msg = _redact(record.msg)
        return True


def _redact(value: object) -> object:
    if isinstance(value, str) and "=" in value:
        return _PARAMETER.sub(_blank_token, value)
    return value


def _blank_token(parameter: re.Match[str]) -> str:
    name = parameter[1]
    if unquote_plus(name).lower() == "access_token":
        return f"{name}=[redacted]"
    return parameter[0]


# A query parameter, name=value, after "?", "&" or ";".
_PARAMETER = re.compile(r"(?<=[?&;])([^=&;#\s\"]*)=[^&;#\s\"]*")
_REDACTOR = RedactAccessTokens()


def redact_access_log() -> None:
    """Install the redaction on uvicorn's access logger (once however often called)."""
    logging.getLogger("uvicorn.access").addFilter(_REDACTOR)
