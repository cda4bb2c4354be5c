"""Comments and their audit trail.

`status` is changed only by `comments.moderation`; everything else reads it.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone


class CommentQuerySet(models.QuerySet["Comment"]):
    def published(self) -> CommentQuerySet:
        return self.filter(status=Comment.Status.PUBLISHED)

    def for_article(self, article_id: int) -> CommentQuerySet:
        return self.filter(article_id=article_id)


class HoldReason(models.TextChoices):
    """Why a comment waits for a human."""

    TOO_MANY_LINKS = "too_many_links", "Contains too many links"
    MODERATION_WORD = "moderation_word", "Contains a moderation word"
    PREMODERATION = "premoderation", "Every comment is premoderated"
    NEW_AUTHOR = "new_author", "First comment from this author"
    AKISMET_ACCOUNT = "akismet_account", "Spam check reported an account problem"
    CHECK_UNAVAILABLE = "check_unavailable", "Spam check unavailable"
    CHECK_INCOMPLETE = "check_incomplete", "Spam check did not finish"
    SHADOW_MODE = "shadow_mode", "Shadow mode: every comment is reviewed"
    CHECK_DISABLED = "check_disabled", "Spam check turned off: every comment is reviewed"
    MODERATOR = "moderator", "Held by a moderator"


class Comment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending (awaiting the automated check)"
        HELD = "held", "Held (awaiting a human)"
        PUBLISHED = "published", "Published"
        SPAM = "spam", "Spam"
        REJECTED = "rejected", "Rejected"
        REMOVED = "removed", "Removed"

    # Indexed by comment_article_author, which leads with it.
    article = models.ForeignKey(
        "articles.Article", on_delete=models.CASCADE, related_name="comments", db_index=False
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # The top-level comment of a reply's thread (null for a top-level comment),
    # so one query fetches every reply of the comments on a page.
    thread = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    depth = models.PositiveSmallIntegerField(default=0)

    author_name = models.CharField(max_length=100)
    author_email = models.EmailField(max_length=254)
    author_url = models.URLField(max_length=200, blank=True, default="")
    body = models.TextField()
    body_html = models.TextField()

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    held_reason = models.CharField(
        max_length=40, blank=True, default="", choices=HoldReason.choices
    )
    # Reason code of the last decision taken on this comment (by a rule, Akismet or a human).
    decision_reason = models.CharField(max_length=40, blank=True, default="")

    # The automated check. `checked_at` is set only by a passing check and
    # `approved_by` only by a moderator; a published comment needs one of them.
    checked_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approved_comments",
    )
    check_attempts = models.PositiveIntegerField(default=0)
    # When the check should run (again); the sweeper and the recheck job read it.
    next_check_at = models.DateTimeField(null=True, blank=True)
    # `recheck_reason` to send on the next check ("" for the first one).
    recheck_reason = models.CharField(max_length=20, blank=True, default="")
    akismet_verdict = models.CharField(max_length=16, blank=True, default="")
    akismet_guid = models.CharField(max_length=64, blank=True, default="")
    akismet_pro_tip = models.CharField(max_length=40, blank=True, default="")
    akismet_error = models.CharField(max_length=500, blank=True, default="")
    akismet_checked_at = models.DateTimeField(null=True, blank=True)
    # The comment-check arguments as last sent, reused for submit-spam / submit-ham.
    akismet_payload = models.JSONField(default=dict, blank=True)
    # The form's honeypot field was filled in: a bot, called spam without asking Akismet.
    honeypot_tripped = models.BooleanField(default=False)
    # Blatant spam (Akismet's "discard" tip): hidden from the queue, purged later.
    discarded = models.BooleanField(default=False)

    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True, default="")
    referrer = models.CharField(max_length=500, blank=True, default="")

    # Idempotent submission: the client's `Idempotency-Key` and a hash of the request
    # that came with it (see moderation.submit). Kept on the comment itself, not in a
    # table of its own: the key is written by the very INSERT that creates the
    # comment, so the unique constraint below decides a race between two retries
    # (the loser's INSERT fails, nothing half-written), a key lives exactly as long
    # as its comment, and a replay is one indexed read of the row it answers with.
    # "" is "no key" (keys are 1–255 characters); only keyed rows are indexed.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    idempotency_fingerprint = models.CharField(max_length=64, blank=True, default="")

    # Where an imported comment came from ("wxr", "disqus", "json"; "" when it was
    # submitted here) and its id there: importing the same file twice finds it again.
    import_source = models.CharField(max_length=20, blank=True, default="")
    import_id = models.CharField(max_length=255, blank=True, default="")

    # Privacy. Set when the retention job truncated the IP address and cleared the
    # user agent and referrer (comments/retention.py); set when the author's personal
    # data was erased (comments/personal_data.py).
    personal_data_trimmed_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    objects = CommentQuerySet.as_manager()

    # Not stored: set by moderation.submit, true when the comment answers a repeated
    # request (same Idempotency-Key) instead of being created by it.
    replayed: bool = False

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("can_moderate", "Can moderate comments")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "held", "published", "spam", "rejected", "removed"]
                ),
                name="comment_status_valid",
            ),
            # Never publish an unchecked comment: a published one carries either a
            # passing spam check or a moderator's approval.
            # Imported comments were decided on the site they come from.
            models.CheckConstraint(
                condition=~Q(status="published")
                | Q(checked_at__isnull=False)
                | Q(approved_by__isnull=False)
                | ~Q(import_source=""),
                name="comment_published_was_checked",
            ),
            # One comment per imported record, however often a file is imported.
            models.UniqueConstraint(
                fields=["import_source", "import_id"],
                condition=~Q(import_source=""),
                name="comment_import_unique",
            ),
            # One comment per Idempotency-Key and article, whatever the timing of retries.
            models.UniqueConstraint(
                fields=["article", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="comment_idempotency_key_unique",
            ),
        ]
        indexes = [
            # Public read path: visible top-level comments of one article in order.
            models.Index(
                fields=["article", "created_at", "id"],
                condition=Q(parent__isnull=True, status__in=["published", "removed"]),
                name="comment_toplevel_visible",
            ),
            # Replies of the top-level comments on one page.
            models.Index(
                fields=["thread", "created_at", "id"],
                condition=Q(parent__isnull=False, status__in=["published", "removed"]),
                name="comment_replies_visible",
            ),
            # Published counts per article.
            models.Index(
                fields=["article"],
                condition=Q(status="published"),
                name="comment_published_by_article",
            ),
            # The article's key, and the duplicate check (an article and an author). On
            # the article alone, PostgreSQL planned the prepared check again on every
            # submit, a plan for the actual article looking cheaper than its generic one.
            models.Index(fields=["article", "author_email"], name="comment_article_author"),
            models.Index(fields=["status", "created_at"], name="comment_status_created"),
            models.Index(fields=["author_email", "status"], name="comment_author_email"),
            # The retention job: comments whose IP address is still whole.
            models.Index(
                fields=["created_at"],
                condition=Q(personal_data_trimmed_at__isnull=True),
                name="comment_untrimmed",
            ),
            # The sweeper and the recheck job: comments whose check is due.
            models.Index(
                fields=["next_check_at"],
                condition=Q(status__in=["pending", "held"], next_check_at__isnull=False),
                name="comment_check_due",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} by {self.author_name} ({self.status})"


class CommentEvent(models.Model):
    """One status change of a comment: the audit trail."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=Comment.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Comment.Status.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The user's name at the time, or a system actor such as "spam-check" or "author".
    actor_name = models.CharField(max_length=150)
    reason = models.CharField(max_length=200, blank=True, default="")
    # What the decision was based on: verdict, guid, headers, attempt, rule.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["comment", "created_at"], name="event_comment_created")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} by {self.actor_name}"


class ModerationRules(models.Model):
    """The site's moderation rules: one row, editable without a restart.

    Empty or null fields fall back to the environment's defaults.
    """

    moderation_words = models.TextField(
        blank=True, default="", help_text="One per line: a comment containing one is held."
    )
    disallowed_words = models.TextField(
        blank=True, default="", help_text="One per line: a comment containing one is spam."
    )
    disallowed_emails = models.TextField(
        blank=True,
        default="",
        help_text="One per line: an address, or a domain written as @example.com.",
    )
    disallowed_ips = models.TextField(
        blank=True, default="", help_text="One per line: an IP address or a network (CIDR)."
    )
    max_links = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hold a comment with at least this many links."
    )
    premoderation = models.CharField(
        max_length=16,
        blank=True,
        default="",
        choices=[("none", "none"), ("new_authors", "new authors"), ("all", "all")],
    )
    trusted_authors_skip_hold = models.BooleanField(
        default=False,
        help_text="An author with a published comment skips the hold rules (never the spam check).",
    )
    shadow_mode = models.BooleanField(
        default=False,
        help_text="Call Akismet and record its verdict, but send every comment to the human "
        "queue; the stats page then shows how moderators agree with Akismet.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "moderation rules"
        verbose_name_plural = "moderation rules"

    def __str__(self) -> str:
        return "Moderation rules"


logger = logging.getLogger(__name__)


class SideEffectManager(models.Manager["SideEffect"]):
    def claim(
        self, comment_id: int, kind: str, key: str, *, stale_after: dt.timedelta | None
    ) -> SideEffect:
        """Claim the side effect `kind` of one decision `key` on a comment.

        Returns the row; `owned` tells whether this caller won it and must now
        perform the side effect, then call `finish()` (or `release()` when it
        failed). A caller that does not own it does nothing: the side effect is
        done (`done_at` set) or another delivery has it in hand.
        """
        for _ in range(3):
            now = timezone.now()
            try:
                # A savepoint: the loser's failed INSERT leaves an outer transaction usable.
                # On PostgreSQL the INSERT waits for a concurrent claimant's commit.
                with transaction.atomic():
                    effect = self.create(comment_id=comment_id, kind=kind, key=key, claimed_at=now)
                effect.owned = True
                return effect
            except IntegrityError:
                pass
            effect = self.filter(comment_id=comment_id, kind=kind, key=key).first()
            if effect is None:  # released between our INSERT and this read: try again
                continue
            if effect.done_at is None and stale_after is not None:
                # The claimant is known dead once its claim is older than stale_after.
                taken = self.filter(
                    pk=effect.pk,
                    done_at__isnull=True,
                    claimed_at=effect.claimed_at,
                    claimed_at__lte=now - stale_after,
                ).update(claimed_at=now)
                if taken:
                    logger.warning(
                        "taking over the stale %s claim on comment %s (claimed %s, never done)",
                        kind,
                        comment_id,
                        effect.claimed_at.isoformat(),
                    )
                    effect.claimed_at = now
                    effect.owned = True
            return effect
        raise RuntimeError(f"could not claim {kind} {key} on comment {comment_id}")


class SideEffect(models.Model):
    """A side effect of a task (an e-mail, an Akismet call), done once per decision.

    Celery may run a task twice: acks_late redelivers the message of a worker that
    died after the side effect, a visibility timeout hands it out again, a retry
    repeats it. So a task first *claims* its side effect by INSERTing this row:
    the unique (comment, kind, key) lets exactly one delivery win, and the others
    skip. The winner performs the side effect and then marks the row done; when
    the side effect fails it deletes its claim (`release`), so its own retry can
    claim again. `key` names the decision that caused the side effect (the id of
    its CommentEvent, or of the one task the decision enqueued, which every
    redelivery and retry of that task keeps), so a moderator who overrules Akismet
    twice gets two submit-spam calls, while a redelivered task of one decision
    gets none.

    A claim whose worker died between claiming and marking done ("claimed, never
    done") is handled per kind, by the caller's `stale_after`:

    * None, at-most-once: the claim is never taken over. The side effect may well
      have happened (the worker may have died right after it), and repeating it
      cannot be undone. Used for the moderator e-mail: a duplicate lands in every
      moderator's inbox, a missing one costs little (the comment waits in the
      moderation queue all the same).
    * a duration, at-least-once: a claim older than that (longer than any task may
      run) belongs to a dead worker, and the next delivery takes it over and
      repeats the side effect. Used for Akismet feedback: a lost correction is
      lost training, a repeated one is harmless.
    """

    class Kind(models.TextChoices):
        NOTIFY_HELD = "notify_held", "E-mail to moderators about a held comment"
        NOTIFY_REPLY = "notify_reply", "E-mail to an author about a reply"
        SUBMIT_HAM = "submit_ham", "Akismet submit-ham"
        SUBMIT_SPAM = "submit_spam", "Akismet submit-spam"

    # No index of its own: the unique constraint's index starts with it.
    comment = models.ForeignKey(
        Comment, on_delete=models.CASCADE, related_name="side_effects", db_index=False
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The decision it belongs to: "event:<CommentEvent id>" or the Celery task id.
    key = models.CharField(max_length=255)
    claimed_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)

    objects = SideEffectManager()

    # Not stored: set by `claim`, true when this caller won the claim.
    owned: bool = False

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comment", "kind", "key"], name="side_effect_once_per_decision"
            )
        ]

    def __str__(self) -> str:
        state = "done" if self.done_at else "claimed"
        return f"{self.kind} {self.key} of comment #{self.comment_id} ({state})"

    def finish(self) -> None:
        """The side effect happened: no delivery performs it again."""
        finished = SideEffect.objects.filter(
            pk=self.pk, claimed_at=self.claimed_at, done_at__isnull=True
        ).update(done_at=timezone.now())
        if not finished:
            logger.warning(
                "%s claim on comment %s was taken over before it was done; it may have "
                "happened twice",
                self.kind,
                self.comment_id,
            )

    def release(self) -> None:
        """The side effect failed: drop the claim so a retry can claim it again."""
        SideEffect.objects.filter(
            pk=self.pk, claimed_at=self.claimed_at, done_at__isnull=True
        ).delete()


class NotificationAddress(models.Model):
    """An e-mail address that may receive reply notifications (double opt-in).

    Nothing is mailed to an address until `confirmed_at` is set by its owner
    following the signed link of the confirmation e-mail; `opted_out_at` (the
    "unsubscribe from everything" link) stops every notification to it.
    """

    email = models.EmailField(max_length=254, unique=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed_at else "unconfirmed"
        return f"{self.email} ({state})"


class ReplySubscription(models.Model):
    """The author of `comment` asked to hear about published replies to it."""

    comment = models.OneToOneField(
        Comment, on_delete=models.CASCADE, related_name="reply_subscription"
    )
    address = models.ForeignKey(
        NotificationAddress, on_delete=models.CASCADE, related_name="subscriptions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The per-thread unsubscribe link sets it.
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"replies to #{self.comment_id} for {self.address.email}"


class WebhookEndpoint(models.Model):
    """A URL told about comment events, each request signed with `secret`."""

    class Event(models.TextChoices):
        SUBMITTED = "comment.submitted", "comment.submitted"
        PUBLISHED = "comment.published", "comment.published"
        HELD = "comment.held", "comment.held"
        SPAM = "comment.spam", "comment.spam"
        REJECTED = "comment.rejected", "comment.rejected"
        REMOVED = "comment.removed", "comment.removed"

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200, help_text="Shared secret for the HMAC-SHA256 signature."
    )
    # A list of Event values; empty means every event.
    events = models.JSONField(default=list, blank=True)
    include_private = models.BooleanField(
        default=False,
        help_text="Send the author's e-mail, IP address and user agent (a private endpoint).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one endpoint: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField()
    event = models.CharField(max_length=40, choices=WebhookEndpoint.Event.choices)
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_delivery_once_per_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying"]),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint} ({self.status})"
