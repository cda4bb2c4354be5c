"""Public comment endpoints: list, submit, and the author's own comment."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from articles.models import Article
from comments import abuse, moderation, page_sql, prepared, read_cache, submission, threads, tokens
from comments.list_query import validate_list_query
from comments.models import Comment
from comments.request_context import client_ip
from comments.serializers import (
    IDEMPOTENCY_KEY_HEADER,
    CommentDetailSerializer,
    CommentEditSerializer,
    CommentListQuerySerializer,
    CommentPageSerializer,
    CommentSubmitSerializer,
    FormTokenSerializer,
    OwnCommentSerializer,
    PublicCommentSerializer,
    SubmittedCommentSerializer,
    submitted_comment_data,
)

TOKEN_HEADER = "X-Comment-Token"  # noqa: S105 (a header name)
TOKEN_PARAMETER = OpenApiParameter(
    TOKEN_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="The edit_token returned when the comment was submitted.",
)


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_KEY_HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    OpenApiParameter.HEADER,
    description="A new random value (e.g. a UUID) per comment, sent again unchanged "
    "when the same submission is retried: a retry is answered with the comment the "
    "first request created (same id, its current status) and creates nothing. "
    "Scoped to the article; reused for a different comment it is refused with 422.",
)
IDEMPOTENT_REPLAYED_HEADER = OpenApiParameter(
    submission.REPLAYED_HEADER,
    str,
    OpenApiParameter.HEADER,
    enum=["true"],
    response=[202],
    description="Present when the answer repeats an earlier request with the same Idempotency-Key.",
)


class CommentCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("created_at", "id")

    def decode_cursor(self, request: Request) -> Cursor | None:
        """Refuse a forged cursor whose position is not an aware datetime (else a 500)."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                when = parse_datetime(cursor.position)
            except ValueError:
                when = None
            if when is None or timezone.is_naive(when):
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_ordering(self, request, queryset, view):
        if request.query_params.get("order") == "newest":
            return ("-created_at", "-id")
        return ("created_at", "id")


class ArticleCommentsView(APIView):
    # Anonymous by design: no session lookup, so responses do not vary by cookie
    # and a CDN can share them.
    authentication_classes: list = []
    pagination_class = CommentCursorPagination
    throttle_classes = [
        abuse.SubmitThrottle,
        abuse.ReadThrottle,
    ]

    @extend_schema(
        parameters=[CommentListQuerySerializer],
        responses=CommentPageSerializer,
        summary="Published comments of an article, threaded, cursor-paginated",
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        # CommentListQuerySerializer's exact rules without DRF's per-request field copies.
        params = read_cache.PageParams.from_validated(validate_list_query(request.query_params))
        variant = params.variant(request.scheme, request.get_host())
        entry, _ = read_cache.page(slug, variant, lambda: self._page_body(request, slug, params))
        return read_cache.response(request.META, entry)

    def _page_body(self, request: Request, slug: str, params: read_cache.PageParams) -> bytes:
        """The page as bytes: the article, then on PostgreSQL one statement for the
        page and its replies as JSON (else two queries and Python's JSON)."""
        paginator = self.pagination_class()
        # Links carry only the parameters that shape the page, so every spelling
        # of the same request shares one cached body.
        base_url = request.build_absolute_uri(request.path) + params.query_suffix()
        using = page_sql.read_alias()
        if page_sql.available(using):  # PostgreSQL writes the comments' JSON itself
            article = prepared.get_by(
                Article, "slug", slug, only=("published_comment_count",), using=using
            )
            if article is None:
                raise Http404("No Article matches the given query.")
            source = page_sql.TopLevelPage(article.pk, using)
            page = paginator.paginate_queryset(source, request, self)
            paginator.base_url = base_url
            return page_sql.page_bytes(
                article.published_comment_count,
                paginator.get_next_link(),
                paginator.get_previous_link(),
                source.results_json(page),
            )
        article = get_object_or_404(
            Article.objects.only("id", "published_comment_count"), slug=slug
        )
        rows = paginator.paginate_queryset(
            threads.visible_top_level_rows(article.pk), request, self
        )
        paginator.base_url = base_url
        return read_cache.json_bytes(
            {
                "count": article.published_comment_count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": threads.public_page_data(rows),
            }
        )

    @extend_schema(
        request=CommentSubmitSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER, IDEMPOTENT_REPLAYED_HEADER],
        responses={
            202: SubmittedCommentSerializer,
            400: OpenApiResponse(
                {"$ref": "#/components/schemas/ValidationErrors"},
                description="Invalid input: errors by field, `Idempotency-Key` for a "
                "malformed key, or a detail message.",
            ),
            422: OpenApiResponse(
                {"$ref": "#/components/schemas/ValidationErrors"},
                description="The Idempotency-Key was already used on this article for a "
                'different comment: {"Idempotency-Key": ["message"]}.',
            ),
        },
        summary="Submit a comment; it is checked before it is published",
    )
    def post(self, request: Request, slug: str) -> Response:
        comment = submission.accept(
            slug,
            request.data,
            headers=request.headers,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            referrer=request.META.get("HTTP_REFERER", ""),
        )
        return Response(
            submitted_comment_data(comment),
            status=status.HTTP_202_ACCEPTED,
            headers=submission.answer_headers(comment),
        )


class FormTokenView(APIView):
    """The widget fetches this when it renders the form; submitting needs it."""

    throttle_classes = [abuse.ReadThrottle]

    @extend_schema(responses=FormTokenSerializer, summary="A form token for submitting")
    def get(self, request: Request, slug: str) -> Response:
        article = get_object_or_404(Article.objects.only("slug"), slug=slug)
        response = Response(
            {
                "form_token": abuse.make_form_token(article.slug),
                "min_submit_seconds": settings.COMMENTS_MIN_SUBMIT_SECONDS,
                "expires_in": settings.COMMENTS_FORM_TOKEN_MAX_AGE,
            }
        )
        response["Cache-Control"] = "no-store"
        return response


class CommentDetailView(APIView):
    throttle_classes = [abuse.ReadThrottle]

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses=CommentDetailSerializer,
        summary="A published comment, or the author's own comment with its status",
    )
    def get(self, request: Request, pk: int) -> Response:
        comment = self._visible_comment(request, pk)
        if self._token_holder(request, comment):
            return Response(OwnCommentSerializer(comment).data)
        return Response(PublicCommentSerializer(comment).data)

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        request=CommentEditSerializer,
        responses={202: OwnCommentSerializer},
        summary="Edit one's own comment inside the edit window; it is checked again",
    )
    def patch(self, request: Request, pk: int) -> Response:
        comment = self._writable_comment(request, pk)
        serializer = CommentEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        moderation.edit(comment, body=serializer.validated_data["body"])
        return Response(OwnCommentSerializer(comment).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={204: None},
        summary="Delete one's own comment inside the edit window",
    )
    def delete(self, request: Request, pk: int) -> Response:
        comment = self._writable_comment(request, pk)
        if comment.status != Comment.Status.REMOVED:
            moderation.remove(comment, actor=moderation.AUTHOR, reason="deleted by author")
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _visible_comment(self, request: Request, pk: int) -> Comment:
        """The comment if it is published or the caller holds its token; else 404."""
        comment = Comment.objects.filter(pk=pk).first()
        if comment is None:
            raise NotFound()
        if comment.status != Comment.Status.PUBLISHED and not self._token_holder(request, comment):
            raise NotFound()
        return comment

    def _token_holder(self, request: Request, comment: Comment) -> bool:
        """Whether the request carries a token issued for this comment (expired or not)."""
        token = request.headers.get(TOKEN_HEADER, "")
        if not token:
            return False
        try:
            tokens.check_edit_token(token, comment.pk)
        except tokens.TokenInvalid:
            return False
        except tokens.TokenExpired:
            return True
        return True

    def _writable_comment(self, request: Request, pk: int) -> Comment:
        comment = self._visible_comment(request, pk)
        token = request.headers.get(TOKEN_HEADER, "")
        if not token:
            raise PermissionDenied(f"The {TOKEN_HEADER} header is required.")
        try:
            tokens.check_edit_token(token, comment.pk)
        except (tokens.TokenInvalid, tokens.TokenExpired) as exc:
            raise PermissionDenied(str(exc)) from None
        return comment
