from django.urls import path

from comments import latest, moderation_api, personal_data_views, views

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
    path("comments/latest/", latest.LatestCommentsView.as_view(), name="comments-latest"),
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
    path(
        "moderation/personal-data/export/",
        personal_data_views.ModerationPersonalDataExportView.as_view(),
        name="moderation-personal-data-export",
    ),
    path(
        "moderation/personal-data/erase/",
        personal_data_views.ModerationPersonalDataEraseView.as_view(),
        name="moderation-personal-data-erase",
    ),
    path(
        "personal-data/requests/",
        personal_data_views.PersonalDataRequestView.as_view(),
        name="personal-data-requests",
    ),
]
