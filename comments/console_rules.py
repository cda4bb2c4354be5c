"""The moderation rules page: one row to edit, with its lists checked line by line."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from comments.models import ModerationRules

ONE_PER_LINE_FIELDS = (
    "moderation_words",
    "disallowed_words",
    "disallowed_emails",
    "disallowed_ips",
)


def _numbered_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _checked_lines(text: str, check: Callable[[str], bool] | None = None, problem: str = "") -> str:
    """The non-blank lines, stripped; a ValidationError names every line that fails."""
    lines = _numbered_lines(text)
    errors = [
        ValidationError(f"Line {n}: “{line}” {problem}", code="invalid")
        for n, line in lines
        if check is not None and not check(line)
    ]
    if errors:
        raise ValidationError(errors)
    return "\n".join(line for _, line in lines)


def _is_email_or_domain(line: str) -> bool:
    try:
        # "@example.com" is checked as the domain part of an address.
        validate_email(f"someone{line}" if line.startswith("@") else line)
    except ValidationError:
        return False
    return True


def _is_ip_or_network(line: str) -> bool:
    try:
        ipaddress.ip_network(line, strict=False)
    except ValueError:
        return False
    return True


class ModerationRulesForm(forms.ModelForm):
    class Meta:
        model = ModerationRules
        fields = (
            "moderation_words",
            "max_links",
            "premoderation",
            "trusted_authors_skip_hold",
            "disallowed_words",
            "disallowed_emails",
            "disallowed_ips",
            "shadow_mode",
        )
        widgets = {
            name: forms.Textarea(attrs={"rows": 6, "cols": 60}) for name in ONE_PER_LINE_FIELDS
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["disallowed_emails"].label = "Disallowed emails or domains"
        self.fields["disallowed_ips"].label = "Disallowed IPs or networks"
        self.fields["max_links"].help_text = (
            "Hold a comment with at least this many links; 0 turns the rule off. "
            f"Empty: the environment's default ({settings.COMMENTS_MAX_LINKS})."
        )
        self.fields["premoderation"].choices = [
            ("", f"Environment default ({settings.COMMENTS_PREMODERATION})"),
            ("none", "None: a comment Akismet calls ham is published"),
            ("new_authors", "New authors: held until the author has a published comment"),
            ("all", "All: every comment waits for a human"),
        ]
        if settings.COMMENTS_SHADOW_MODE:
            field = self.fields["shadow_mode"]
            field.help_text += " COMMENTS_SHADOW_MODE is set, so shadow mode stays on."

    def clean_moderation_words(self) -> str:
        return _checked_lines(self.cleaned_data["moderation_words"])

    def clean_disallowed_words(self) -> str:
        return _checked_lines(self.cleaned_data["disallowed_words"])

    def clean_disallowed_emails(self) -> str:
        return _checked_lines(
            self.cleaned_data["disallowed_emails"],
            _is_email_or_domain,
            "is neither an email address nor a domain written as @example.com.",
        )

    def clean_disallowed_ips(self) -> str:
        return _checked_lines(
            self.cleaned_data["disallowed_ips"],
            _is_ip_or_network,
            "is not an IP address or a network such as 198.51.100.0/24.",
        )


class ModerationRulesAdmin(admin.ModelAdmin):
    """One settings page: the list redirects to the single row, which the checks read."""

    form = ModerationRulesForm
    readonly_fields = ("updated_at",)
    fieldsets = (
        (
            None,
            {
                "fields": ("updated_at",),
                "description": "Changes apply to the next comment that is checked.",
            },
        ),
        (
            "Hold for a human",
            {
                "fields": (
                    "moderation_words",
                    "max_links",
                    "premoderation",
                    "trusted_authors_skip_hold",
                )
            },
        ),
        (
            "Spam outright, without asking Akismet",
            {"fields": ("disallowed_words", "disallowed_emails", "disallowed_ips")},
        ),
        ("Shadow mode", {"fields": ("shadow_mode",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ModerationRules | None = None
    ) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        # EffectiveRules reads the first row; that is the one to edit.
        rules = ModerationRules.objects.order_by("pk").first() or ModerationRules.objects.create()
        return self._edit_page(rules)

    def response_post_save_change(self, request: HttpRequest, obj: ModerationRules) -> HttpResponse:
        return self._edit_page(obj)

    @staticmethod
    def _edit_page(rules: ModerationRules) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:comments_moderationrules_change", args=[rules.pk])
        )
