"""Feed, posts and comments through the real views."""

import pytest
from django.urls import reverse

from social.models import Comment, Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_feed_needs_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_new_post_appears_in_feed(alice_client):
    response = alice_client.post("/", {"title": "Hello", "body": "First words"})
    post = Post.objects.get()
    assert response["Location"] == f"/posts/{post.pk}/"
    assert "Hello" in alice_client.get("/").content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "", "body": "x"}, "title"),
        ({"title": "t", "body": "   "}, "body"),
        ({"title": "t", "body": "x" * 5001}, "body"),
    ],
)
def test_invalid_post_shows_form_errors(alice_client, data, field):
    response = alice_client.post("/", data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Post.objects.count() == 0


def test_comment_and_reply(alice_client, alice, make_user):
    post = Post.objects.create(author=make_user("bob"), title="T", body="B")
    alice_client.post(f"/posts/{post.pk}/", {"body": "nice"})
    first = Comment.objects.get()
    response = alice_client.post(f"/posts/{post.pk}/", {"body": "me again", "parent": first.pk})
    reply = Comment.objects.get(parent=first)
    assert response["Location"] == f"/posts/{post.pk}/#comment-{reply.pk}"
    page = alice_client.get(f"/posts/{post.pk}/").content.decode()
    assert f'id="comment-{reply.pk}"' in page and "replying to alice" in page


@pytest.mark.parametrize("body", ["", "  ", "x" * 2001])
def test_invalid_comment_is_a_form_error(alice_client, make_user, body):
    post = Post.objects.create(author=make_user("bob"), title="T", body="B")
    response = alice_client.post(f"/posts/{post.pk}/", {"body": body})
    assert response.status_code == 400
    assert "body" in response.context["form"].errors
    assert not Comment.objects.exists()


def test_reply_to_a_comment_on_another_post_is_refused(alice_client, make_user):
    bob = make_user("bob")
    other = Post.objects.create(author=bob, title="Other", body="B")
    foreign = Comment.objects.create(post=other, author=bob, body="elsewhere")
    post = Post.objects.create(author=bob, title="T", body="B")
    response = alice_client.post(f"/posts/{post.pk}/", {"body": "hi", "parent": foreign.pk})
    assert response.status_code == 400
    assert not Comment.objects.filter(post=post).exists()


@pytest.mark.parametrize("parent", ["abc", "-1", "99999999999999999999999"])
def test_garbage_parent_is_a_form_error_not_a_500(alice_client, make_user, parent):
    post = Post.objects.create(author=make_user("bob"), title="T", body="B")
    response = alice_client.post(f"/posts/{post.pk}/", {"body": "hi", "parent": parent})
    assert response.status_code == 400


def test_missing_post_is_404(alice_client):
    assert alice_client.get("/posts/999/").status_code == 404


def test_user_text_is_escaped(alice_client):
    alice_client.post("/", {"title": "<script>alert(1)</script>", "body": "<img src=x onerror=alert(1)>"})
    page = alice_client.get("/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_signup_login_by_email_and_logout(client):
    response = client.post(
        reverse("account_signup"),
        {"username": "dora", "email": "dora@example.com", "password1": "a-long-pass-77", "password2": "a-long-pass-77"},
    )
    assert response.status_code == 302
    client.post(reverse("account_logout"))
    assert client.get("/").status_code == 302
    response = client.post(reverse("account_login"), {"login": "dora@example.com", "password": "a-long-pass-77"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_seed_demo_creates_users_who_can_log_in(client):
    from django.core.management import call_command

    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    assert Post.objects.filter(title="Hello from Alice").count() == 1
    assert client.login(username="bob", password="demo-pass-123")
