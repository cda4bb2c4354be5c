"""factory_boy factories. Comments are created through moderation.submit so
their history is real; `published_comment` then publishes through the same module."""

from __future__ import annotations

import random

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from articles.models import Article
from comments import moderation
from comments.models import Comment, HoldReason


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    slug = factory.Sequence(lambda n: f"article-{n}")
    title = factory.Faker("sentence", nb_words=6)
    url = factory.LazyAttribute(lambda a: f"https://news.example.com/{a.slug}/")
    published_at = factory.LazyFunction(timezone.now)
    comments_open = True


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests-1234")


def submit_comment(article: Article | None = None, **overrides: object) -> Comment:
    """A pending comment, created the way the API creates one."""
    fields: dict[str, object] = {
        "article": article or ArticleFactory(),
        "author_name": "Ada Reader",
        "author_email": "ada@example.com",
        "body": "A thoughtful remark about the article.",
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (tests)",
        "referrer": "https://news.example.com/",
    }
    fields.update(overrides)
    return moderation.submit(**fields)


def published_comment(article: Article | None = None, **overrides: object) -> Comment:
    """A comment that passed the spam check (a published comment must have)."""
    comment = submit_comment(article, **overrides)
    moderation.publish(comment, actor=moderation.SPAM_CHECK, reason="akismet_ham")
    return comment


def moderators_group() -> Group:
    """The group migration 0004 creates; rebuilt the same way when a transactional
    test's flush removed it (flushing keeps permissions, not migration data)."""
    from importlib import import_module

    from django.contrib.auth.models import Permission

    group, created = Group.objects.get_or_create(name="moderators")
    if created:
        migration = import_module("comments.migrations.0004_moderators_group")
        for app_label, codename in migration.MODERATOR_PERMISSIONS:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    return group


def moderator_user(**overrides: object):
    """A staff user in the `moderators` group."""
    user = UserFactory(is_staff=True, **overrides)
    user.groups.add(moderators_group())
    return user


def held_comment(
    article: Article | None = None, *, hold_reason: str = HoldReason.MODERATOR, **overrides: object
) -> Comment:
    """A comment waiting for a human, held through the moderation module."""
    comment = submit_comment(article, **overrides)
    moderation.hold(comment, actor=moderation.SYSTEM, hold_reason=hold_reason)
    return comment


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An active endpoint for every event; point `url` at a test receiver."""

    class Meta:
        model = "comments.WebhookEndpoint"

    name = factory.Sequence(lambda n: f"endpoint {n}")
    url = "http://127.0.0.1:9/hooks"
    secret = factory.Sequence(lambda n: f"test-webhook-secret-{n}")
    events = factory.LazyFunction(list)
    include_private = False
    active = True


def canary_author(label: str = "canary") -> dict[str, str]:
    """Unique personal values (name, e-mail, IP address, user agent, website) that a
    scan of the whole database can look for, and that match nothing else."""
    import secrets

    tag = secrets.token_hex(6)
    octets = secrets.token_bytes(2)
    return {
        "author_name": f"{label.title()} Person {tag}",
        "author_email": f"{label}.{tag}@example.org",
        "author_url": f"https://{label}-{tag}.example.net/",
        "ip_address": f"198.18.{100 + octets[0] % 100}.{100 + octets[1] % 100}",
        "user_agent": f"CanaryBrowser/{tag} ({label})",
        "tag": tag,
    }


def submit_through_api(client, article: Article, author: dict[str, str], **fields: object) -> int:
    """Submit a comment the way a reader's browser does (POST with the request's IP
    address, user agent, referrer and an Idempotency-Key); returns its id."""
    import uuid

    data = {
        "author_name": author["author_name"],
        "author_email": author["author_email"],
        "author_url": author.get("author_url", ""),
        "body": "A remark.",
        **fields,
    }
    response = client.post(
        f"/api/v1/articles/{article.slug}/comments/",
        data,
        format="json",
        REMOTE_ADDR=author["ip_address"],
        HTTP_USER_AGENT=author["user_agent"],
        HTTP_REFERER=f"{article.url}?from={author['author_name'].split()[-1]}",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def confirmed_address(email: str = "ada@example.com"):
    """A NotificationAddress whose owner has confirmed it (double opt-in done)."""
    from comments.models import NotificationAddress

    address, _ = NotificationAddress.objects.get_or_create(email=email.lower())
    NotificationAddress.objects.filter(pk=address.pk).update(
        confirmed_at=timezone.now(), opted_out_at=None
    )
    address.refresh_from_db()
    return address


def subscribed_comment(article: Article | None = None, **overrides: object) -> Comment:
    """A published comment whose author ticked "Notify me of replies" and confirmed."""
    comment = published_comment(article, notify_replies=True, **overrides)
    confirmed_address(comment.author_email)
    return comment


class ArticleAliasFactory(factory.django.DjangoModelFactory):
    """Another address of an article, stored canonicalised as the API and admin store it."""

    class Meta:
        model = "articles.ArticleAlias"

    article = factory.SubFactory(ArticleFactory)
    url = factory.Sequence(lambda n: f"https://amp.example.com/story-{n}")

    @classmethod
    def _create(cls, model_class: type, *args: object, **kwargs: object) -> object:
        from articles.canonical_urls import canonicalize

        kwargs["url"] = canonicalize(str(kwargs["url"]))
        return super()._create(model_class, *args, **kwargs)


def fresh_ip() -> str:
    """Counters live in the shared cache; a new address per test keeps tests apart."""
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"
