"""Messaging pages and the conversation parts of the JSON API: thin views over access, services and selectors."""

from __future__ import annotations

from collections.abc import Callable
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
from dm.models import Conversation
from social import throttle
from social.http import api_view, muted_flag
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


def _history(request: HttpRequest, conversation_id: int, hidden_senders: frozenset[int]) -> JsonResponse:
    before_id = protocol.parse_cursor(request.GET.get("before"), "before")
    limit = protocol.parse_limit(request.GET.get("limit"), default=HISTORY_PAGE)
    page, has_more = selectors.messages_before(
        conversation_id=conversation_id, before_id=before_id, limit=limit, hidden_senders=hidden_senders
    )
    return JsonResponse({"results": [protocol.message_dict(m) for m in page], "has_more": has_more})


# JSON API. Reading history never moves read markers: the client sends read frames.


@api_view("GET")
def api_conversations(request: HttpRequest) -> JsonResponse:
    """The user's conversations, most recent activity first."""
    return JsonResponse({"results": selectors.conversation_list(user_id=request.user.pk)})


@api_view("POST")
def api_conversation_mute(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """``POST {"muted": true|false}``: mute or unmute a conversation you are a member of."""
    muted = muted_flag(request)
    conversation = access.access_membership(request.user, conversation_id)
    muted = services.conversation_mute_set(user=request.user, conversation=conversation, muted=muted)
    return JsonResponse({"muted": muted})


@api_view("GET")
def api_direct_messages(request: HttpRequest, username: str) -> JsonResponse:
    """History of the direct conversation with ``username``, oldest first."""
    conversation, _ = access.access_direct(request.user, username)
    return _history(request, conversation.pk, frozenset())


@api_view("GET")
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
        "muted": selectors.direct_is_muted(user_id=request.user.pk, peer_id=peer.pk),
        "i_blocked": selectors.has_blocked(blocker_id=request.user.pk, blocked_id=peer.pk),
        "blocked": selectors.blocked_between(user_a_id=request.user.pk, user_b_id=peer.pk),
    }
    return render(request, "dm/direct.html", context)


def _mute_from_form(request: HttpRequest, conversation: Conversation) -> None:
    muted = request.POST.get("muted") == "1"
    services.conversation_mute_set(user=request.user, conversation=conversation, muted=muted)
    flash.success(request, "Muted: this conversation no longer counts in your Messages badge, mentions and email."
                  if muted else "Unmuted.")


@login_required
@require_POST
def direct_mute(request: HttpRequest, username: str) -> HttpResponse:
    """The DM page's Mute/Unmute button (``muted=1|0``)."""
    conversation, peer = _page_access(access.access_direct, request.user, username)
    _mute_from_form(request, conversation)
    return redirect("dm:direct", username=peer.username)


@login_required
@require_POST
def room_mute(request: HttpRequest, slug: str) -> HttpResponse:
    """The room page's Mute/Unmute button (``muted=1|0``), for members."""
    room = _page_access(access.access_room, request.user, slug)
    _page_access(access.access_membership, request.user, room.pk)
    _mute_from_form(request, room)
    return redirect("dm:room", slug=room.slug)


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
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        if not throttle.write_allowed(request, "room_create"):
            form.add_error(None, throttle.REFUSAL)
            status = 429
        else:
            try:
                room = services.room_create(creator=request.user, **form.cleaned_data)
            except IntegrityError:
                form.add_error("slug", "A room with this address already exists.")
            else:
                return redirect("dm:room", slug=room.slug)
    # No NUL: PostgreSQL refuses it in text (a 500 otherwise); no room name holds one.
    query = request.GET.get("q", "").replace("\x00", "").strip()[:80]
    page = request.GET.get("page", "1")
    page = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 6 and int(page) > 0 else 1
    rooms_page, pages = selectors.rooms_visible(user_id=request.user.pk, query=query, page=page, per_page=ROOMS_PAGE)
    context = {"form": form, "rooms": rooms_page, "query": query, "page": min(page, pages), "pages": pages}
    return render(request, "dm/rooms.html", context, status=status)


@login_required
def room(request: HttpRequest, slug: str) -> HttpResponse:
    """A room window; a public room you are not in is read-only with a Join button (its socket joins);
    an invitee sees the invitation."""
    conversation, invitation = _page_access(access.access_room_page, request.user, slug)
    if invitation is not None:
        return render(request, "dm/room_invitation.html", {"room": conversation, "invitation": invitation})
    is_member = selectors.is_member(conversation_id=conversation.pk, user_id=request.user.pk)
    can_manage = conversation.private and conversation.created_by_id == request.user.pk
    members = selectors.room_members(conversation_id=conversation.pk) if conversation.private else []
    mentionable = members or selectors.room_members(conversation_id=conversation.pk, limit=MENTIONABLE)
    context = {
        "room": conversation,
        "is_member": is_member,
        "muted": is_member and selectors.is_muted(conversation_id=conversation.pk, user_id=request.user.pk),
        "read_only": not is_member,
        "member_names": [member.username for member in mentionable],
        "can_manage": can_manage,
        "members": members,
        "invitees": selectors.room_invitees(conversation_id=conversation.pk) if can_manage else [],
        "invite_form": UsernameForm(user=request.user),
    }
    return render(request, "dm/room.html", context)


@login_required
@require_POST
def room_join(request: HttpRequest, slug: str) -> HttpResponse:
    """Join a public room, or accept an invitation to a private one."""
    _page_access(access.access_room_join, request.user, slug)
    return redirect("dm:room", slug=slug)


@login_required
@require_POST
def room_decline(request: HttpRequest, slug: str) -> HttpResponse:
    """Decline an invitation to a private room."""
    conversation = _page_access(access.access_room_invitation, request.user, slug)
    services.room_invitation_decline(user=request.user, room=conversation)
    flash.success(request, f"You declined the invitation to {conversation.name}.")
    return redirect("dm:rooms")


@login_required
@require_POST
def room_leave(request: HttpRequest, slug: str) -> HttpResponse:
    """Leave a room."""
    conversation = _page_access(access.access_room, request.user, slug)
    services.room_leave(user=request.user, conversation=conversation)
    flash.success(request, f"You left {conversation.name}.")
    return redirect("dm:rooms")


_INVITE_REPLIES = {
    services.InviteOutcome.INVITED: "{} is invited and becomes a member on accepting.",
    services.InviteOutcome.ALREADY_INVITED: "{} is already invited; nothing changed.",
    services.InviteOutcome.ALREADY_MEMBER: "{} is already a member; nothing changed.",
}


@login_required
@require_POST
def room_invite(request: HttpRequest, slug: str) -> HttpResponse:
    """Invite a user to your private room (they become a member when they accept)."""
    conversation = _page_access(access.access_room_manage, request.user, slug)
    form = UsernameForm(request.POST, user=request.user)
    if not throttle.write_allowed(request, "invite"):
        flash.error(request, throttle.REFUSAL)
    elif form.is_valid():
        invitee = form.cleaned_data["username"]
        outcome = services.room_invite(inviter=request.user, room=conversation, invitee=invitee)
        reply = flash.success if outcome == services.InviteOutcome.INVITED else flash.info
        reply(request, _INVITE_REPLIES[outcome].format(invitee.username))
    else:
        flash.error(request, " ".join(form.errors.get("username", ["Could not invite."])))
    return redirect("dm:room", slug=slug)


@login_required
@require_POST
def room_remove(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    """Remove a member or a pending invitee from your private room; a member's open windows close at once."""
    conversation = _page_access(access.access_room_manage, request.user, slug)
    member = selectors.room_member_or_invitee(conversation_id=conversation.pk, username=username)
    if member is None:
        raise Http404("no such member")
    try:
        services.room_remove(conversation=conversation, user=member)
    except ValueError as refused:
        flash.error(request, str(refused))
    else:
        flash.success(request, f"{member.username} was removed.")
    return redirect("dm:room", slug=slug)
