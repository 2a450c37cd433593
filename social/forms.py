from typing import Any

from django import forms

from social import bounds
from social.models import Comment, Post


class PostForm(forms.Form):
    title = forms.CharField(max_length=bounds.POST_TITLE_CHARS, strip=True)
    body = forms.CharField(max_length=bounds.POST_BODY_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 4}))


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", max_length=bounds.COMMENT_BODY_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 3})
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args: Any, post: Post | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.post = post

    def clean_parent(self) -> Comment | None:
        """The comment being replied to, which must be on the same post."""
        parent_id = self.cleaned_data.get("parent")
        if parent_id is None:
            return None
        parent = Comment.objects.filter(pk=parent_id, post=self.post).first()
        if parent is None:
            raise forms.ValidationError("The comment you are replying to does not exist on this post.")
        return parent
