from django.urls import path

from comments import views

urlpatterns = [
    path(
        "articles/<slug:slug>/comments/",
        views.ArticleCommentsView.as_view(),
        name="article-comments",
    ),
    path("comments/<int:pk>/", views.CommentDetailView.as_view(), name="comment-detail"),
]
