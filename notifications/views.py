"""The notifications page and the JSON API: thin views over services and selectors."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from notifications import digests, selectors, services
from notifications.forms import PreferencesForm
from social.http import api_view, error_response, json_object, muted_flag
from social.models import Post
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
    notifications = selectors.notifications_page(
        user_id=request.user.pk, number=request.GET.get("page"), per_page=PAGE_SIZE
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


@api_view("POST")
def api_post_mute(request: HttpRequest, post_id: int) -> HttpResponse:
    """``POST /api/posts/<id>/mute/`` with ``{"muted": true|false}``."""
    muted = muted_flag(request)
    post = Post.objects.filter(pk=post_id).first()
    if post is None:
        return error_response("no such post", 404)
    return JsonResponse({"muted": services.post_mute_set(user_id=request.user.pk, post=post, muted=muted)})


@login_required
@require_POST
def page_post_mute(request: HttpRequest, post_id: int) -> HttpResponse:
    """The post page's Mute/Unmute button (``muted=1|0``)."""
    post = get_object_or_404(Post, pk=post_id)
    muted = services.post_mute_set(user_id=request.user.pk, post=post, muted=request.POST.get("muted") == "1")
    flash.success(request, "Muted: no more comment or reply notifications from this post." if muted else "Unmuted.")
    return redirect(post)


@api_view("GET", "POST")
def api_preferences(request: HttpRequest) -> HttpResponse:
    """``GET`` the user's email preferences; ``POST`` any subset of the same shape to change them."""
    if request.method == "POST":
        try:
            fields = services.clean_preferences(json_object(request))
        except ValueError as error:
            return error_response(str(error))
        return JsonResponse(services.preferences_update(user_id=request.user.pk, fields=fields))
    return JsonResponse(selectors.preferences_of(user_id=request.user.pk))


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """``/settings/notifications/``: the preferences as a form."""
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            fields = services.clean_preferences(form.preferences())
            services.preferences_update(user_id=request.user.pk, fields=fields)
            flash.success(request, "Your notification settings are saved.")
            return redirect("notification_settings")
        return render(request, "notifications/settings.html", {"form": form}, status=400)
    form = PreferencesForm.from_preferences(selectors.preferences_of(user_id=request.user.pk))
    return render(request, "notifications/settings.html", {"form": form})


# No login and no CSRF token: the signed token is the authority, and RFC 8058
# one-click POSTs come from the mail provider without cookies. GET only asks,
# so link scanners that follow it unsubscribe nobody.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The signed one-click unsubscribe link of an email digest (RFC 8058)."""
    try:
        user_id, kinds = digests.read_unsubscribe_token(token)
        if request.method == "POST":
            user, kinds = digests.email_unsubscribe(token=token)
            username = user.username
        else:
            username = selectors.username_of(user_id=user_id)
    except signing.BadSignature:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    context = {"username": username, "labels": digests.kind_labels(kinds), "done": request.method == "POST"}
    return render(request, "notifications/unsubscribe.html", context)
