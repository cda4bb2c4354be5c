"""The console's stats page: the daily chart, the figures, and the shadow-mode agreement
table after moderators decide in the console."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from comments import moderation, spam_check
from comments.models import Comment, HoldReason
from tests.factories import (
    UserFactory,
    held_comment,
    moderator_user,
    published_comment,
    submit_comment,
)

pytestmark = pytest.mark.django_db
S = Comment.Status
CHANGELIST = "/admin/comments/comment/"
STATS = "/admin/comments/comment/stats/"
RULES = "/admin/comments/moderationrules/"
SPAM_AUTHOR = "akismet-guaranteed-spam"


@pytest.fixture
def moderator(client):
    client.force_login(moderator_user(username="mod-mia"))
    return client


def run_action(client, action: str, comments: list[Comment]) -> None:
    data = {"action": action, "_selected_action": [c.pk for c in comments], "index": 0}
    response = client.post(f"{CHANGELIST}?status=all", data)
    assert response.status_code == 302


def set_shadow_mode_in_the_console(client) -> None:
    url = client.get(RULES)["Location"]
    form = {
        **dict.fromkeys(["moderation_words", "disallowed_words", "disallowed_emails"], ""),
        **dict.fromkeys(["disallowed_ips", "max_links", "premoderation"], ""),
        "shadow_mode": "on",
        "_save": "Save",
    }
    assert client.post(url, form).status_code == 302


def test_the_stats_page_renders_with_data(moderator, standin):
    published_comment()
    published_comment()
    held_comment()
    spam = submit_comment()
    moderation.mark_spam(spam, actor=moderation.SPAM_CHECK)
    unavailable = submit_comment()
    spam_check.hold_unavailable(unavailable.pk, "connection refused")
    old = held_comment()
    Comment.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=5))

    response = moderator.get(STATS)

    assert response.status_code == 200
    context = response.context
    assert context["spam_ratio"] == "16.7 %"  # 1 spam of 6 checked
    assert context["oldest_held"] == "5 h"
    assert dict(context["error_rows"])["Spam check unavailable"] == 1
    assert context["errors"]["waiting_for_recheck"] == 1
    assert context["errors"]["last_error"] == "connection refused"
    bars = context["chart"]["bars"]
    assert len(bars) == 30
    assert bars[-1]["day"] == timezone.now().date().isoformat()
    assert sum(bar["total"] for bar in bars) == 6
    per_status = Counter()
    for bar in bars:
        for segment in bar["segments"]:
            day, counted = segment["title"].split(": ")
            assert day == bar["day"]
            number, status = counted.split(" ")
            per_status[status] += int(number)
    assert per_status == {"published": 2, "held": 3, "spam": 1}
    content = response.content.decode()
    assert "<svg" in content
    assert content.count("<rect") == sum(len(bar["segments"]) for bar in bars)
    assert "16.7 %" in content
    assert "connection refused" in content
    assert not re.search(r"<script[^>]+src=\"https?://", content)


def test_the_chart_scales_the_busiest_day_to_full_height(moderator):
    for _ in range(4):
        published_comment()

    chart = moderator.get(STATS).context["chart"]

    (segment,) = chart["bars"][-1]["segments"]
    assert segment["height"] == chart["height"]
    assert segment["y"] == 0
    assert all(not bar["segments"] for bar in chart["bars"][:-1])


def test_the_stats_page_renders_without_any_comment(moderator):
    response = moderator.get(STATS)

    assert response.status_code == 200
    assert response.context["spam_ratio"] == "—"
    assert response.context["agreement_percent"] == "—"


def test_shadow_mode_set_in_the_console_holds_everything_and_the_agreement_adds_up(
    moderator, standin
):
    set_shadow_mode_in_the_console(moderator)
    ham_kept, ham_binned = submit_comment(), submit_comment()
    spam_binned = submit_comment(author_name=SPAM_AUTHOR)
    spam_kept = submit_comment(author_name=SPAM_AUTHOR)
    comments = [ham_kept, ham_binned, spam_binned, spam_kept]

    for comment in comments:
        assert spam_check.check(comment.pk) == "shadow_mode"
        comment.refresh_from_db()
        assert (comment.status, comment.held_reason) == (S.HELD, HoldReason.SHADOW_MODE)
    assert [c.akismet_verdict for c in comments] == ["ham", "ham", "spam", "spam"]
    queue = moderator.get(CHANGELIST).context["cl"].result_list
    assert {c.pk for c in queue} == {c.pk for c in comments}

    run_action(moderator, "publish", [ham_kept, spam_kept])
    run_action(moderator, "mark_spam", [ham_binned])
    run_action(moderator, "reject", [spam_binned])
    response = moderator.get(STATS)

    agreement = response.context["agreement"]
    assert agreement == {
        "agree_ham": 1,
        "agree_spam": 1,
        "false_positives": 1,
        "false_negatives": 1,
        "decided": 4,
        "agreement": 0.5,
    }
    parts = ["agree_ham", "agree_spam", "false_positives", "false_negatives"]
    assert sum(agreement[part] for part in parts) == agreement["decided"]
    content = response.content.decode()
    for text in [
        "1 agree ham",
        "1 agree spam",
        "1 false positives",
        "1 false negatives",
        "agreement 50.0 %",
    ]:
        assert text in content


def test_the_stats_page_is_for_moderators_only(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="comments", codename="view_comment")
    )
    client.force_login(staff)

    assert client.get(STATS).status_code == 403
    assert STATS not in client.get(CHANGELIST).content.decode()


def test_the_stats_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get(STATS)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_changelist_links_to_the_stats_page(moderator):
    assert f'href="{STATS}"' in moderator.get(CHANGELIST).content.decode()
