"""The console changelist's filters, and the status tabs drawn above it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from comments.console_labels import TAB_LABELS, reason_label
from comments.models import Comment

Status = Comment.Status


class StatusFilter(admin.SimpleListFilter):
    """The held queue unless another status is asked for; discarded spam only on request."""

    title = "status"
    parameter_name = "status"
    # Also accept the parameter of Django's own field filter, as links and habits use it.
    alias = "status__exact"
    default = Status.HELD

    def __init__(
        self,
        request: HttpRequest,
        params: dict[str, Any],
        model: type[Model],
        model_admin: admin.ModelAdmin,
    ) -> None:
        if self.alias in params:
            params.setdefault(self.parameter_name, params[self.alias])
            params.pop(self.alias)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(TAB_LABELS.items())

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, self.alias]

    def value(self) -> str:
        return super().value() or self.default

    def queryset(self, request: HttpRequest, queryset: QuerySet[Comment]) -> QuerySet[Comment]:
        value = self.value()
        if value == "discarded":
            return queryset.filter(discarded=True)
        queryset = queryset.filter(discarded=False)
        if value == "all":
            return queryset
        if value not in Status.values:
            raise IncorrectLookupParameters(f"unknown status {value!r}")
        return queryset.filter(status=value)

    def choices(self, changelist: ChangeList) -> Iterable[dict[str, Any]]:
        # Django's version would add an "All" choice meaning "no parameter": here that is
        # the held queue, so "all" is a choice of its own.
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else {}
        for index, (lookup, title) in enumerate(self.lookup_choices):
            if changelist.add_facets:
                title = f"{title} ({counts.get(f'{index}__c', '-')})"
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: lookup}, remove=[self.alias]
                ),
                "display": title,
            }


def requested_status(request: HttpRequest) -> str:
    """The tab StatusFilter shows for this request, read straight from the query string."""
    return (
        request.GET.get(StatusFilter.parameter_name)
        or request.GET.get(StatusFilter.alias)
        or StatusFilter.default
    )


def status_tabs(request: HttpRequest) -> list[dict[str, Any]]:
    counts = dict.fromkeys(TAB_LABELS, 0)
    rows = Comment.objects.values("status", "discarded").annotate(n=Count("id")).order_by()
    for row in rows:
        counts["discarded" if row["discarded"] else row["status"]] += row["n"]
    counts["all"] = sum(counts.values()) - counts["discarded"]
    current = requested_status(request)
    changelist = reverse("admin:comments_comment_changelist")
    return [
        {
            "label": label,
            "count": counts[value],
            "url": f"{changelist}?{urlencode({'status': value})}",
            "selected": value == current,
        }
        for value, label in TAB_LABELS.items()
    ]


class DecisionReasonFilter(admin.SimpleListFilter):
    title = "decision reason"
    parameter_name = "decision_reason"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        codes = (
            Comment.objects.exclude(decision_reason="")
            .values_list("decision_reason", flat=True)
            .distinct()
            .order_by("decision_reason")
        )
        return [(code, reason_label(code)) for code in codes]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Comment]) -> QuerySet[Comment]:
        if self.value():
            return queryset.filter(decision_reason=self.value())
        return queryset


class VerdictFilter(admin.SimpleListFilter):
    title = "Akismet verdict"
    parameter_name = "verdict"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("ham", "ham"), ("spam", "spam"), ("discard", "discard"), ("none", "not checked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Comment]) -> QuerySet[Comment]:
        value = self.value()
        if value == "none":
            return queryset.filter(akismet_verdict="")
        if value:
            return queryset.filter(akismet_verdict=value)
        return queryset
