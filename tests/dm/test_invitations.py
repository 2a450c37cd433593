"""Invitations to private rooms: pending until the invitee accepts (button or socket) or declines."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm import access, selectors, services
from dm.models import Block, Membership, RoomInvitation
from notifications.models import Notification


@pytest.fixture
def secret(users):
    return services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)


def invite(users, room, name="bob"):
    return services.room_invite(inviter=users["alice"], room=room, invitee=users[name])


def is_member(room, user):
    return selectors.is_member(conversation_id=room.pk, user_id=user.pk)


# Services.


@pytest.mark.django_db
def test_inviting_makes_a_pending_invitation_and_a_bell_notification(users, secret):
    assert invite(users, secret) == services.InviteOutcome.INVITED
    assert not is_member(secret, users["bob"])
    assert selectors.room_invitees(conversation_id=secret.pk) == [users["bob"]]
    notification = Notification.objects.get(recipient=users["bob"])
    assert (notification.kind, notification.url, notification.actor) == ("system", "/rooms/secret/", users["alice"])
    assert notification.text == "alice invited you to “Secret”"


@pytest.mark.django_db
def test_an_invited_room_is_not_in_the_inbox_until_accepted(users, secret):
    invite(users, secret)
    assert selectors.conversation_list(user_id=users["bob"].pk) == []
    services.room_invitation_accept(user=users["bob"], room=secret)
    assert [entry["url"] for entry in selectors.conversation_list(user_id=users["bob"].pk)] == ["/rooms/secret/"]


@pytest.mark.django_db
def test_reinviting_an_invitee_or_a_member_changes_nothing(users, secret):
    invite(users, secret)
    assert invite(users, secret) == services.InviteOutcome.ALREADY_INVITED
    services.room_invitation_accept(user=users["bob"], room=secret)
    assert invite(users, secret) == services.InviteOutcome.ALREADY_MEMBER
    assert RoomInvitation.objects.count() == 0
    assert Notification.objects.filter(recipient=users["bob"]).count() == 1


@pytest.mark.django_db
def test_accepting_makes_a_member_who_has_read_what_was_said(users, secret):
    sent = services.message_send(sender=users["alice"], conversation=secret, body="before", client_id=None)
    invite(users, secret)
    membership = services.room_invitation_accept(user=users["bob"], room=secret)
    assert membership.last_read_id == sent.message.pk
    assert not RoomInvitation.objects.exists()
    assert services.room_invitation_accept(user=users["bob"], room=secret) == membership


@pytest.mark.django_db
def test_accepting_without_an_invitation_makes_no_member(users, secret):
    assert services.room_invitation_accept(user=users["carol"], room=secret) is None
    assert not is_member(secret, users["carol"])


@pytest.mark.django_db
def test_declining_drops_the_invitation(users, secret):
    invite(users, secret)
    assert services.room_invitation_decline(user=users["bob"], room=secret)
    assert not services.room_invitation_decline(user=users["bob"], room=secret)
    assert not is_member(secret, users["bob"])
    assert services.room_invitation_accept(user=users["bob"], room=secret) is None


@pytest.mark.django_db
def test_removing_a_pending_invitee_withdraws_the_invitation(users, secret):
    invite(users, secret)
    services.room_remove(conversation=secret, user=users["bob"])
    assert services.room_invitation_accept(user=users["bob"], room=secret) is None


@pytest.mark.django_db
def test_an_invitee_who_blocked_the_inviter_is_not_notified(users, secret):
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    assert invite(users, secret) == services.InviteOutcome.INVITED
    assert not Notification.objects.filter(recipient=users["bob"]).exists()


@pytest.mark.django_db
def test_access_for_an_invitee(users, secret):
    invite(users, secret)
    with pytest.raises(access.AccessDenied):
        access.access_room(users["bob"], "secret")
    assert access.access_room_page(users["bob"], "secret")[1].inviter == users["alice"]
    assert access.access_room_invitation(users["bob"], "secret") == secret
    with pytest.raises(access.AccessDenied):
        access.access_room_page(users["carol"], "secret")
    with pytest.raises(access.AccessDenied):
        access.access_room_invitation(users["carol"], "secret")
    with pytest.raises(access.AccessDenied):
        access.access_room_join(users["carol"], "secret")


# Pages.


@pytest.fixture
def bob_client(client, users):
    client.force_login(users["bob"])
    return client


def flashes(response):
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db
def test_the_invite_form_invites_and_says_so(client, users, secret):
    client.force_login(users["alice"])
    response = client.post("/rooms/secret/members/", {"username": "bob"}, follow=True)
    assert flashes(response) == ["bob is invited and becomes a member on accepting."]
    page = response.content.decode()
    assert 'id="invitee-list"' in page and 'action="/rooms/secret/members/bob/remove/"' in page
    assert not is_member(secret, users["bob"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "reply"),
    [
        ("bob", "bob is already invited; nothing changed."),
        ("carol", "carol is already a member; nothing changed."),
        ("nobody", "There is no user with that name."),
        ("alice", "That is you."),
    ],
)
def test_the_invite_form_explains_what_it_did_not_do(client, users, secret, add_member, username, reply):
    invite(users, secret)
    add_member(secret, users["carol"])
    client.force_login(users["alice"])
    response = client.post("/rooms/secret/members/", {"username": username}, follow=True)
    assert flashes(response) == [reply]
    assert Notification.objects.count() == 2  # the two invitations made above, nothing new


@pytest.mark.django_db
def test_only_the_creator_may_invite(bob_client, users, secret, add_member):
    add_member(secret, users["bob"])
    assert bob_client.post("/rooms/secret/members/", {"username": "carol"}).status_code == 403
    assert not RoomInvitation.objects.exists()


@pytest.mark.django_db
def test_an_invitee_sees_accept_and_decline_instead_of_the_room(bob_client, users, secret):
    services.message_send(sender=users["alice"], conversation=secret, body="members only", client_id=None)
    invite(users, secret)
    response = bob_client.get("/rooms/secret/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "alice invited you to “Secret”" in page
    assert 'action="/rooms/secret/join/"' in page and 'action="/rooms/secret/decline/"' in page
    assert page.count("csrfmiddlewaretoken") >= 2
    assert "/ws/rooms/secret/" not in page and "members only" not in page
    assert bob_client.get("/api/rooms/secret/messages/").status_code == 403


@pytest.mark.django_db
def test_the_accept_button_makes_a_member(bob_client, users, secret):
    invite(users, secret)
    response = bob_client.post("/rooms/secret/join/")
    assert response["Location"] == "/rooms/secret/"
    assert is_member(secret, users["bob"])
    assert 'id="leave-room"' in bob_client.get("/rooms/secret/").content.decode()
    assert bob_client.get("/api/conversations/").json()["results"][0]["url"] == "/rooms/secret/"


@pytest.mark.django_db
def test_the_decline_button_drops_the_invitation(bob_client, users, secret):
    invite(users, secret)
    response = bob_client.post("/rooms/secret/decline/", follow=True)
    assert flashes(response) == ["You declined the invitation to Secret."]
    assert bob_client.get("/rooms/secret/").status_code == 403
    assert bob_client.post("/rooms/secret/decline/").status_code == 403
    assert bob_client.post("/rooms/secret/join/").status_code == 403
    assert not is_member(secret, users["bob"])


@pytest.mark.django_db
def test_accept_and_decline_need_post(bob_client, users, secret):
    invite(users, secret)
    assert bob_client.get("/rooms/secret/join/").status_code == 405
    assert bob_client.get("/rooms/secret/decline/").status_code == 405
    assert RoomInvitation.objects.count() == 1


@pytest.mark.django_db
def test_the_creator_withdraws_an_invitation(client, users, secret):
    invite(users, secret)
    client.force_login(users["alice"])
    client.post("/rooms/secret/members/bob/remove/")
    assert not RoomInvitation.objects.exists()
    assert 'id="invitee-list"' not in client.get("/rooms/secret/").content.decode()


# Sockets.


@pytest.mark.django_db(transaction=True)
async def test_opening_the_socket_accepts_the_invitation(connect, users, secret):
    await sync_to_async(invite)(users, secret)
    alice = await connect("alice", "/ws/rooms/secret/")
    await alice.until_ready()
    bob = await connect("bob", "/ws/rooms/secret/")
    _, ready = await bob.until_ready()
    assert ready["conversation"] == secret.pk
    assert (await alice.recv_type("join"))["user"]["username"] == "bob"
    await alice.send({"type": "message", "body": "welcome"})
    assert (await bob.recv_type("message"))["message"]["body"] == "welcome"
    assert await sync_to_async(Membership.objects.filter(conversation=secret, user=users["bob"]).exists)()
    assert not await sync_to_async(RoomInvitation.objects.exists)()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_is_refused_without_an_invitation(connect, users, secret):
    await sync_to_async(invite)(users, secret)
    await sync_to_async(services.room_invitation_decline)(user=users["bob"], room=secret)
    for name in ("bob", "carol"):
        socket = await connect(name, "/ws/rooms/secret/")
        assert await socket.closed_with() == 4403
    assert not await sync_to_async(Membership.objects.filter(user__username__in=["bob", "carol"]).exists)()


@pytest.mark.django_db
def test_the_admin_shows_a_rooms_pending_invitations(client, make_user, users, secret):
    invite(users, secret)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/dm/conversation/{secret.pk}/change/").content.decode()
    assert "invitations-0-invitee" in page
