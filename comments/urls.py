from django.urls import path

from comments import moderation_api, views

urlpatterns = [
    path(
        "articles/<slug:slug>/comments/",
        views.ArticleCommentsView.as_view(),
        name="article-comments",
    ),
    path(
        "articles/<slug:slug>/form-token/",
        views.FormTokenView.as_view(),
        name="article-form-token",
    ),
    path("comments/<int:pk>/", views.CommentDetailView.as_view(), name="comment-detail"),
    path(
        "moderation/comments/",
        moderation_api.ModerationListView.as_view(),
        name="moderation-comments",
    ),
    path(
        "moderation/comments/bulk/",
        moderation_api.ModerationBulkView.as_view(),
        name="moderation-bulk",
    ),
    path(
        "moderation/comments/<int:pk>/",
        moderation_api.ModerationDetailView.as_view(),
        name="moderation-comment",
    ),
    *(
        path(
            f"moderation/comments/<int:pk>/{action}/",
            moderation_api.ModerationDecisionView.as_view(action_name=action),
            name=f"moderation-{action}",
        )
        for action in moderation_api.ACTIONS
    ),
    path(
        "moderation/stats/", moderation_api.ModerationStatsView.as_view(), name="moderation-stats"
    ),
]
