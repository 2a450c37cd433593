"""The one decorator every JSON API view goes through."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from social.realtime import protocol


class Refused(Exception):
    """A request the API refuses with ``status`` and ``{"error": message}`` (access helpers raise these)."""

    status = 403


def error_response(message: str, status: int = 400, *, allow: tuple[str, ...] = ()) -> JsonResponse:
    """``{"error": message}`` with an HTTP status (and ``Allow`` for a 405)."""
    response = JsonResponse({"error": message}, status=status)
    if allow:
        response["Allow"] = ", ".join(allow)
    return response


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object body (ProtocolError, a 400, otherwise)."""
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise protocol.ProtocolError(protocol.BAD_JSON, "body must be JSON") from None
    if not isinstance(data, dict):
        raise protocol.ProtocolError(protocol.INVALID, "body must be a JSON object")
    return data


def muted_flag(request: HttpRequest) -> bool:
    """``{"muted": true|false}`` from a mute endpoint's body."""
    muted = json_object(request).get("muted")
    if not isinstance(muted, bool):
        raise protocol.ProtocolError(protocol.INVALID, 'send {"muted": true} or {"muted": false}')
    return muted


def api_view(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """JSON answers only, never a redirect or an HTML page: 405 for other methods (with
    ``Allow``), 401 for anonymous, 400 for bad parameters, the refusal's status otherwise."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return error_response(f"method {request.method} not allowed", 405, allow=methods)
            if not request.user.is_authenticated:
                return error_response("not logged in", 401)
            try:
                return view(request, *args, **kwargs)
            except protocol.ProtocolError as error:
                return error_response(error.message)
            except Refused as refused:
                return error_response(str(refused), refused.status)

        return wrapper

    return decorate
