"""factory_boy factories. Comments are created through moderation.submit so
their history is real; `published_comment` then publishes through the same module."""

from __future__ import annotations

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
