"""Every public endpoint runs a fixed, small number of SQL queries, whatever the
number of comments: measured at a small and a large article."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from articles.models import Article
from comments import read_cache, tokens
from tests.factories import ArticleFactory, published_comment
from tests.test_api_comment_list import populate

pytestmark = pytest.mark.django_db

# endpoint name -> the most queries it may run, uncached
BUDGET = {
    "article list": 2,  # page + count
    "article detail": 1,
    "counts": 1,
    "comment page": 3,  # article with its count, top-level page, replies
    "comment page, newest first": 3,
    "second comment page": 3,
    "comment detail": 1,
    "own comment with token": 1,
    "form token": 1,
    "article feed": 2,  # article, its latest comments
    "latest feed": 1,  # latest comments with their articles
    "latest comments": 1,
    "submit": 5,  # article, parent check or duplicate check, comment, event, savepoint
}


def requests_for(article: Article, api) -> dict[str, tuple[str, str, dict]]:
    first = api.get(f"/api/v1/articles/{article.slug}/comments/?limit=2").json()
    comment = published_comment(article, body="The comment whose detail is read.")
    token = tokens.make_edit_token(comment.pk)
    read_cache.clear_all()
    return {
        "article list": ("get", "/api/v1/articles/", {}),
        "article detail": ("get", f"/api/v1/articles/{article.slug}/", {}),
        "counts": ("get", f"/api/v1/articles/counts/?slug={article.slug}&slug=other", {}),
        "comment page": ("get", f"/api/v1/articles/{article.slug}/comments/", {}),
        "comment page, newest first": (
            "get",
            f"/api/v1/articles/{article.slug}/comments/?order=newest",
            {},
        ),
        "second comment page": ("get", first["next"] or first["previous"] or "", {}),
        "comment detail": ("get", f"/api/v1/comments/{comment.pk}/", {}),
        "own comment with token": (
            "get",
            f"/api/v1/comments/{comment.pk}/",
            {"HTTP_X_COMMENT_TOKEN": token},
        ),
        "form token": ("get", f"/api/v1/articles/{article.slug}/form-token/", {}),
        "article feed": ("get", f"/feeds/articles/{article.slug}.atom", {}),
        "latest feed": ("get", "/feeds/latest.atom", {}),
        "latest comments": ("get", "/api/v1/comments/latest/?limit=50", {}),
        "submit": ("post", f"/api/v1/articles/{article.slug}/comments/", {}),
    }


def measure(api, article: Article) -> dict[str, int]:
    counts = {}
    for name, (method, url, headers) in requests_for(article, api).items():
        assert url, name
        data = (
            {"author_name": "Q", "author_email": "q@example.com", "body": f"Counting {name}."}
            if method == "post"
            else None
        )
        with CaptureQueriesContext(connection) as queries:
            response = getattr(api, method)(url, data, **headers)
        assert response.status_code in (200, 202), (name, response.content[:200])
        counts[name] = len(queries)
    return counts


def test_every_public_endpoint_has_a_query_budget_independent_of_size(api):
    small, large = ArticleFactory(), ArticleFactory()
    populate(small, 5)
    populate(large, 300)
    at_small = measure(api, small)
    at_large = measure(api, large)
    for name, budget in BUDGET.items():
        assert at_small[name] <= budget, (name, at_small[name])
        assert at_large[name] == at_small[name], (name, at_small[name], at_large[name])


def test_cached_reads_run_no_query(api, django_assert_num_queries):
    article = ArticleFactory()
    populate(article, 300)
    urls = [
        f"/api/v1/articles/{article.slug}/comments/",
        f"/api/v1/articles/{article.slug}/comments/?order=newest&limit=100",
        f"/api/v1/articles/counts/?slug={article.slug}",
    ]
    for url in urls:
        api.get(url)
    for url in urls:
        with django_assert_num_queries(0):
            assert api.get(url).status_code == 200
