"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from articles import pages
from comments import metrics
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
]
