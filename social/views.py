"""Feed, posts and comments: thin views over social.services."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from notifications.selectors import post_muted
from social import services, throttle
from social.forms import CommentForm, PostForm
from social.models import Post


@login_required
@require_http_methods(["GET", "POST"])
def feed(request: HttpRequest) -> HttpResponse:
    """The newest posts and a form for a new one."""
    form = PostForm(request.POST or None)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        if throttle.write_allowed(request, "post"):
            post = services.post_create(author=request.user, **form.cleaned_data)
            return redirect(post)
        form.add_error(None, throttle.REFUSAL)
        status = 429
    posts = Paginator(Post.objects.select_related("author"), 20).get_page(request.GET.get("page"))
    return render(request, "social/feed.html", {"form": form, "posts": posts}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def post_detail(request: HttpRequest, post_id: int) -> HttpResponse:
    """One post with its comments and a comment (or reply) form."""
    post = get_object_or_404(Post.objects.select_related("author"), pk=post_id)
    form = CommentForm(request.POST or None, post=post)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        if throttle.write_allowed(request, "comment"):
            comment = services.comment_create(
                author=request.user, post=post, body=form.cleaned_data["body"], parent=form.cleaned_data["parent"]
            )
            return redirect(comment)
        form.add_error(None, throttle.REFUSAL)
        status = 429
    comments = post.comments.select_related("author", "parent__author")
    context = {
        "post": post,
        "comments": comments,
        "form": form,
        "post_muted": post_muted(post_id=post.pk, user_id=request.user.pk),
    }
    return render(request, "social/post_detail.html", context, status=status)
