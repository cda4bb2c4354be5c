"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from articles import pages
from comments import feeds, metrics, notification_views, personal_data_views
from comments_project import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("articles.urls")),
    path("api/v1/", include("comments.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("demo/", pages.demo_index, name="demo-index"),
    path("demo/<slug:slug>/", pages.demo_article, name="demo-article"),
    path("privacy/", pages.privacy, name="privacy"),
    path(
        "privacy/data/<str:token>/",
        personal_data_views.personal_data_link,
        name="personal-data-link",
    ),
    path(
        "notifications/confirm/<str:token>/",
        notification_views.confirm,
        name="notify-confirm",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notification_views.unsubscribe,
        name="notify-unsubscribe",
    ),
    path(
        "notifications/unsubscribe-all/<str:token>/",
        notification_views.unsubscribe_all,
        name="notify-unsubscribe-all",
    ),
    path("feeds/latest.atom", feeds.latest_feed, name="feed-latest"),
    path("feeds/articles/<slug:slug>.atom", feeds.article_feed, name="feed-article"),
]
