"""The notifications page and the JSON API: thin views over services and selectors."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from notifications import selectors, services
from social.http import api_view
from social.realtime import protocol

API_DEFAULT_LIMIT = 20
PAGE_SIZE = 20


@api_view("GET")
def api_list(request: HttpRequest) -> HttpResponse:
    """``GET /api/notifications/?before=<id>&limit=<1..100>``, newest first."""
    before = protocol.parse_cursor(request.GET.get("before"), "before")
    limit = protocol.parse_limit(request.GET.get("limit"), default=API_DEFAULT_LIMIT)
    rows, has_more = selectors.notifications_before(user_id=request.user.pk, before_id=before, limit=limit)
    return JsonResponse(
        {
            "results": [protocol.notification_dict(row) for row in rows],
            "unread": selectors.unread_count(user_id=request.user.pk),
            "has_more": has_more,
        }
    )


def _read_request(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise protocol.ProtocolError(protocol.BAD_JSON, "body must be JSON") from None
    if not isinstance(data, dict) or ("ids" in data) == ("all" in data):
        raise protocol.ProtocolError(protocol.INVALID, 'send {"ids": [..]} or {"all": true}')
    if "all" in data and data["all"] is not True:
        raise protocol.ProtocolError(protocol.INVALID, "all must be true")
    return data


@api_view("POST")
def api_read(request: HttpRequest) -> HttpResponse:
    """``POST /api/notifications/read/`` with ``{"ids": [..]}`` or ``{"all": true}``."""
    data = _read_request(request)
    if "all" in data:
        result = services.notifications_mark_all_read(user_id=request.user.pk)
    else:
        ids = protocol.parse_id_list(data["ids"])
        result = services.notifications_mark_read(user_id=request.user.pk, ids=ids)
    return JsonResponse({"unread": result.unread})


@login_required
@require_http_methods(["GET"])
def page(request: HttpRequest) -> HttpResponse:
    """Every notification of the user, newest first, with forms to mark them read."""
    notifications = Paginator(selectors.notifications_of(user_id=request.user.pk), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    unread = selectors.unread_count(user_id=request.user.pk)
    return render(request, "notifications/list.html", {"notifications": notifications, "unread": unread})


@login_required
@require_POST
def page_mark_read(request: HttpRequest) -> HttpResponse:
    """The page's forms: ``id`` marks one read, ``all`` marks all; then back to ``next``."""
    if request.POST.get("all"):
        services.notifications_mark_all_read(user_id=request.user.pk)
    else:
        raw = request.POST.get("id", "")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) <= protocol.MAX_ID:
            return HttpResponseBadRequest("id must be a positive integer")
        services.notifications_mark_read(user_id=request.user.pk, ids=[int(raw)])
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "notifications_page"
    return redirect(target)
