"""With the database unreachable the API answers 503 with Retry-After, as JSON."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from comments import moderation
from comments.models import Comment

pytestmark = pytest.mark.django_db


def test_a_submit_while_the_database_is_down_is_a_quick_503(api, article, monkeypatch):
    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(moderation, "submit", down)
    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "Ada", "author_email": "ada@example.com", "body": "Hello"},
        format="json",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["detail"].startswith("The service is briefly unavailable")
    assert Comment.objects.count() == 0


def test_a_read_while_the_database_is_down_is_a_503(api, monkeypatch):
    from articles.models import Article

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Article.objects, "order_by", down)
    response = api.get("/api/v1/articles/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
