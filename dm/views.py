"""Messaging pages and the conversation parts of the JSON API: thin views over access, services and selectors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dm import access, selectors, services
from dm.forms import RoomCreateForm, UsernameForm
from social.realtime import protocol

HISTORY_PAGE = 50
ROOMS_PAGE = 30
# Usernames a room page highlights as @mentions (senders of shown messages are added client-side).
MENTIONABLE = 500


def _page_access(function: Callable[..., Any], *args: Any) -> Any:
    """Call an access helper from a page view: refusals become 403/404 pages."""
    try:
        return function(*args)
    except access.NotFound as missing:
        raise Http404(str(missing)) from None
    except access.AccessDenied as denied:
        raise PermissionDenied(str(denied)) from None


def api_view(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """GET-only JSON endpoint: 401/403/404/400 as JSON ``{"error": ...}``, never an HTML page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        if request.method != "GET":
            return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "GET"})
        if not request.user.is_authenticated:
            return JsonResponse({"error": "not logged in"}, status=401)
        try:
            return view(request, *args, **kwargs)
        except access.AccessDenied as denied:
            return JsonResponse({"error": str(denied)}, status=denied.status)
        except protocol.ProtocolError as error:
            return JsonResponse({"error": error.message}, status=400)

    return wrapper


def _before_param(raw: str | None) -> int | None:
    """The ``before`` cursor: a positive integer id, or None when absent."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) <= protocol.MAX_ID:
        raise protocol.ProtocolError(protocol.INVALID, "before must be a positive integer")
    return int(raw)


def _history(request: HttpRequest, conversation_id: int, hidden_senders: frozenset[int]) -> JsonResponse:
    before_id = _before_param(request.GET.get("before"))
    limit = protocol.parse_limit(request.GET.get("limit"), default=HISTORY_PAGE)
    page, has_more = selectors.messages_before(
        conversation_id=conversation_id, before_id=before_id, limit=limit, hidden_senders=hidden_senders
    )
    return JsonResponse({"results": [protocol.message_dict(m) for m in page], "has_more": has_more})


# JSON API. Reading history never moves read markers: the client sends read frames.


@api_view
def api_conversations(request: HttpRequest) -> JsonResponse:
    """The user's conversations, most recent activity first."""
    return JsonResponse({"results": selectors.conversation_list(user_id=request.user.pk)})


@api_view
def api_direct_messages(request: HttpRequest, username: str) -> JsonResponse:
    """History of the direct conversation with ``username``, oldest first."""
    conversation, _ = access.access_direct(request.user, username)
    return _history(request, conversation.pk, frozenset())


@api_view
def api_room_messages(request: HttpRequest, slug: str) -> JsonResponse:
    """History of a room, oldest first, without messages from users the reader blocked."""
    room = access.access_room(request.user, slug)
    return _history(request, room.pk, selectors.blocked_ids(user_id=request.user.pk))


# Pages.


@login_required
@require_http_methods(["GET", "POST"])
def inbox(request: HttpRequest) -> HttpResponse:
    """Conversations by recent activity, and a form to start a DM."""
    form = UsernameForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        return redirect("dm:direct", username=form.cleaned_data["username"].username)
    conversations = selectors.conversation_list(user_id=request.user.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "dm/inbox.html", {"form": form, "conversations": conversations}, status=status)


@login_required
def direct(request: HttpRequest, username: str) -> HttpResponse:
    """The DM window with one user."""
    peer = _page_access(access.access_peer, request.user, username)
    context = {
        "peer": peer,
        "i_blocked": selectors.has_blocked(blocker_id=request.user.pk, blocked_id=peer.pk),
        "blocked": selectors.blocked_between(user_a_id=request.user.pk, user_b_id=peer.pk),
    }
    return render(request, "dm/direct.html", context)


@login_required
@require_POST
def direct_block(request: HttpRequest, username: str) -> HttpResponse:
    """Block (``action=block``) or unblock (``action=unblock``) a user."""
    peer = _page_access(access.access_peer, request.user, username)
    if request.POST.get("action") == "unblock":
        services.block_delete(blocker=request.user, blocked=peer)
        flash.success(request, f"You unblocked {peer.username}.")
    else:
        services.block_create(blocker=request.user, blocked=peer)
        flash.success(request, f"You blocked {peer.username}. Neither of you can message the other.")
    return redirect("dm:direct", username=peer.username)


@login_required
@require_http_methods(["GET", "POST"])
def rooms(request: HttpRequest) -> HttpResponse:
    """Public rooms and your private rooms, and a form to create one."""
    form = RoomCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            room = services.room_create(creator=request.user, **form.cleaned_data)
        except IntegrityError:
            form.add_error("slug", "A room with this address already exists.")
        else:
            return redirect("dm:room", slug=room.slug)
    status = 400 if request.method == "POST" else 200
    query = request.GET.get("q", "").strip()[:80]
    page = request.GET.get("page", "1")
    page = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 6 and int(page) > 0 else 1
    rooms_page, pages = selectors.rooms_visible(user_id=request.user.pk, query=query, page=page, per_page=ROOMS_PAGE)
    context = {"form": form, "rooms": rooms_page, "query": query, "page": min(page, pages), "pages": pages}
    return render(request, "dm/rooms.html", context, status=status)


@login_required
def room(request: HttpRequest, slug: str) -> HttpResponse:
    """A room window; a public room you are not in is read-only with a Join button (its socket joins)."""
    conversation = _page_access(access.access_room, request.user, slug)
    is_member = selectors.is_member(conversation_id=conversation.pk, user_id=request.user.pk)
    members = selectors.room_members(conversation_id=conversation.pk) if conversation.private else []
    mentionable = members or selectors.room_members(conversation_id=conversation.pk, limit=MENTIONABLE)
    context = {
        "room": conversation,
        "is_member": is_member,
        "read_only": not is_member,
        "member_names": [member.username for member in mentionable],
        "can_manage": conversation.private and conversation.created_by_id == request.user.pk,
        "members": members,
        "invite_form": UsernameForm(user=request.user),
    }
    return render(request, "dm/room.html", context)


@login_required
@require_POST
def room_join(request: HttpRequest, slug: str) -> HttpResponse:
    """Join a public room."""
    _page_access(access.access_room_join, request.user, slug)
    return redirect("dm:room", slug=slug)


@login_required
@require_POST
def room_leave(request: HttpRequest, slug: str) -> HttpResponse:
    """Leave a room."""
    conversation = _page_access(access.access_room, request.user, slug)
    services.room_leave(user=request.user, conversation=conversation)
    flash.success(request, f"You left {conversation.name}.")
    return redirect("dm:rooms")


@login_required
@require_POST
def room_invite(request: HttpRequest, slug: str) -> HttpResponse:
    """Add a member to your private room."""
    conversation = _page_access(access.access_room_manage, request.user, slug)
    form = UsernameForm(request.POST, user=request.user)
    if form.is_valid():
        services.room_invite(conversation=conversation, user=form.cleaned_data["username"])
        flash.success(request, f"{form.cleaned_data['username'].username} is now a member.")
    else:
        flash.error(request, " ".join(form.errors.get("username", ["Could not invite."])))
    return redirect("dm:room", slug=slug)


@login_required
@require_POST
def room_remove(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    """Remove a member from your private room; their open windows close at once."""
    conversation = _page_access(access.access_room_manage, request.user, slug)
    member = selectors.room_member(conversation_id=conversation.pk, username=username)
    if member is None:
        raise Http404("no such member")
    try:
        services.room_remove(conversation=conversation, user=member)
    except ValueError as refused:
        flash.error(request, str(refused))
    else:
        flash.success(request, f"{member.username} was removed.")
    return redirect("dm:room", slug=slug)
