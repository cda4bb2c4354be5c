"""Create the demo article `make run` shows, unless there is one already."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from articles.models import Article

DEMO_SLUG = "zte-china-telecom-global-cooperation"
DEMO_TITLE = "ZTE signs strategic cooperation agreement with China Telecom Global"


class Command(BaseCommand):
    help = "Create the demo article if no article exists yet."

    def handle(self, *args: object, **options: object) -> None:
        if Article.objects.exists():
            self.stdout.write("Articles exist; no demo article created.")
            return
        Article.objects.create(
            slug=DEMO_SLUG,
            title=DEMO_TITLE,
            url=f"http://localhost:8000/demo/{DEMO_SLUG}/",
            published_at=timezone.now(),
            comments_open=True,
        )
        self.stdout.write(f"Created demo article '{DEMO_SLUG}'.")
