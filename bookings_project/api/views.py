"""The base of every API view and viewset: rate limit and its headers, the success envelope."""

import io
import time

from django.conf import settings
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import RateLimited
from .renderers import JSON_CONTENT_TYPE, json_bytes

# The methods an API view may answer. OPTIONS and TRACE are left out, so they are 405 and
# never listed in ``Allow`` (DRF's OPTIONS would answer a metadata document of its own).
API_METHODS = ["get", "post", "put", "patch", "delete", "head"]


class AcyclicViewMixin:
    """Cuts the links between a view, its request and its response once the view has answered,
    so that they are freed by reference counting as soon as the response is, and leave no work
    for the cyclic garbage collector (whose pauses were the open loop's tail: see
    ``bookings_project.api.wsgi``). DRF makes three cycles per request: a viewset binds each
    method's handler to itself (``view.get = view.list``), the request's parser context names
    the request and the view, and the view keeps the response whose renderer context names the
    view (and rendering adds the response to that context). None of these links is used once
    the view has answered and the response is rendered. First in the bases, so that it wraps
    both the lean path and the full one.
    """

    def dispatch(self, request, *args, **kwargs):
        try:
            response = super().dispatch(request, *args, **kwargs)
        finally:
            state = self.__dict__
            for method in getattr(self, "action_map", None) or ():
                state.pop(method, None)
            state.pop("response", None)
            context = getattr(state.get("request"), "parser_context", None)
            if context:
                context.pop("request", None)
                context.pop("view", None)
        if isinstance(response, Response) and not response.is_rendered:
            response.add_post_render_callback(_renderer_context_unlinked)
        return response


def _renderer_context_unlinked(response) -> None:
    # DRF's rendering puts the response in its own renderer context (a fourth cycle).
    response.renderer_context.pop("response", None)


class RateLimitedMixin:
    """Refuses a key's request over its rate limit and puts the window's state on the
    response. Mixed into every API view and viewset."""

    http_method_names = API_METHODS

    def perform_authentication(self, request):
        # Counted as the key is looked up (``bookings.auth``, one trip to the cache for both),
        # before scopes, so every response to a key (a 403 included) carries its headers.
        super().perform_authentication(request)
        self.check_rate_limit(request)

    def check_rate_limit(self, request) -> None:
        state = getattr(request, "rate_limit", None)
        if state is not None and state.exceeded:
            raise RateLimited.over(state, time.time())

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Payload):
            response = response.response()
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            for header, value in state.headers().items():
                response[header] = value
        return response


# What a plain GET may say it accepts for the lean path to answer it: nothing (no header), or
# one of these. Anything else goes through DRF's negotiation: ``application/json; indent=4``,
# a type we cannot give, and an empty header (no type acceptable: 406).
_LEAN_ACCEPTS = frozenset({None, "*/*", "application/json", "application/json, */*"})


class LeanReadMixin:
    """Answers the hottest requests without DRF's request machinery: no ``Request`` wrapper,
    content negotiation or ``Response`` rendering, which cost a read more than its query does.

    - ``lean_actions``: a plain GET;
    - ``lean_replays``: a POST with an ``Idempotency-Key`` whose stored response the request's
      admission brought from the cache (``bookings.access``), i.e. a client's retry. Any other
      POST to these actions continues on the full path, its key already authenticated and
      counted;
    - ``lean_writes``: any POST with a JSON body (a create: a tenth of its CPU was DRF's
      request machinery).

    The steps are DRF's own, in its order — authenticate, rate limit, permissions, the view's
    ``check_request``, the body's parser, the action — on the Django request, and the action is
    the same method the full path calls. Anything unusual (no credentials, an ``Accept`` other
    than JSON, a body other than ``application/json``, any error) is answered by the full path,
    so errors keep exactly the shape and headers DRF gives them; ``tests/api/test_lean_reads.py``
    and ``tests/api/test_lean_replays.py`` compare the two.

    An authenticator that returns None must have done nothing (DRF's contract: not attempted).
    """

    #: Actions answered this way on GET.
    lean_actions: frozenset[str] = frozenset()
    #: Actions whose cached replays are answered this way on POST.
    lean_replays: frozenset[str] = frozenset()
    #: Actions answered this way on POST, replay or not.
    lean_writes: frozenset[str] = frozenset()

    def check_request(self, request) -> None:
        """Checks of the view's own after permissions (both paths), e.g. the query string."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.check_request(request)

    def initialize_request(self, request, *args, **kwargs):
        drf_request = super().initialize_request(request, *args, **kwargs)
        done = getattr(request, "_lean_authenticated", None)
        if done is not None:  # the lean path authenticated (and counted) it already
            authenticator, authenticated = done
            if authenticated is None:
                drf_request._not_authenticated()
            else:
                drf_request._authenticator = authenticator
                drf_request.user, drf_request.auth = authenticated
        return drf_request

    def _lean_action(self, request) -> str | None:
        meta = request.META
        if meta.get("HTTP_ACCEPT") not in _LEAN_ACCEPTS:
            return None
        if request.method == "GET":
            action = self.action_map.get("get")
            return action if action in self.lean_actions else None
        if request.method == "POST":
            action = self.action_map.get("post")
            if meta.get("CONTENT_TYPE") == "application/json" and (
                action in self.lean_writes
                or (action in self.lean_replays and "HTTP_IDEMPOTENCY_KEY" in meta)
            ):
                return action
        return None

    def dispatch(self, request, *args, **kwargs):
        action = self._lean_action(request)
        if action is None:
            return super().dispatch(request, *args, **kwargs)
        self.action, self.args, self.kwargs = action, args, kwargs
        self.headers = self.default_response_headers
        authenticator = authenticated = None
        try:
            for authenticator in self.get_authenticators():
                authenticated = authenticator.authenticate(request)
                if authenticated is not None:
                    break
        except Exception as exc:
            return self._lean_failed(request, authenticator, None, exc)
        if authenticated is None:
            return super().dispatch(request, *args, **kwargs)  # nothing was done yet
        request.user, request.auth = authenticated
        posted = request.method == "POST"
        if (
            posted
            and action not in self.lean_writes
            and getattr(request, "cached_replay", None) is None
        ):
            return self._full_path(request, authenticator, authenticated)  # not a retry
        try:
            self.check_rate_limit(request)
            for permission in self.get_permissions():
                if not permission.has_permission(request, self):
                    raise exceptions.PermissionDenied(
                        getattr(permission, "message", None), getattr(permission, "code", None)
                    )
            self.check_request(request)
        except Exception as exc:
            return self._lean_failed(request, authenticator, authenticated, exc)
        if posted:
            try:
                request.data = self._lean_body(request)
            except Exception:  # the full path parses it again, and answers as it always does
                return self._full_path(request, authenticator, authenticated)
        try:
            response = getattr(self, action)(request, *args, **kwargs)
        except Exception as exc:
            return self._lean_failed(request, authenticator, authenticated, exc)
        if isinstance(response, Payload):
            answer = HttpResponse(
                json_bytes(response.data),
                status=response.status_code,
                content_type=JSON_CONTENT_TYPE,
                headers=response.headers,
            )
        else:  # bytes already made, a replay's
            answer = response
        return self.finalize_response(request, answer, *args, **kwargs)

    def _lean_body(self, request):
        """The body as DRF's ``request.data`` would parse it (this is only called for
        ``application/json`` with a body)."""
        if int(request.META.get("CONTENT_LENGTH") or 0) <= 0:
            raise exceptions.ParseError("no body")  # DRF's empty data: the full path's case
        parser = self.get_content_negotiator().select_parser(request, self.get_parsers())
        if parser is None:
            raise exceptions.UnsupportedMediaType(request.content_type)
        context = self.get_parser_context(request)
        context["request"] = request
        context["encoding"] = request.encoding or settings.DEFAULT_CHARSET
        return parser.parse(io.BytesIO(request.body), parser.media_type, context)

    def _full_path(self, request, authenticator, authenticated):
        """DRF's dispatch, with the key as the lean path authenticated it."""
        request._lean_authenticated = (authenticator, authenticated)
        return super().dispatch(request, *self.args, **self.kwargs)

    def _lean_failed(self, request, authenticator, authenticated, exc):
        """The error as the full path answers it, from what the lean path had learnt (the key
        is not authenticated, nor the request counted, a second time)."""
        request._lean_authenticated = (authenticator, authenticated)
        drf_request = self.initialize_request(request, *self.args, **self.kwargs)
        self.request = drf_request
        self.format_kwarg = self.get_format_suffix(**self.kwargs)
        neg = self.perform_content_negotiation(drf_request)
        drf_request.accepted_renderer, drf_request.accepted_media_type = neg
        response = self.handle_exception(exc)
        return self.finalize_response(drf_request, response, *self.args, **self.kwargs)


class ApiView(AcyclicViewMixin, RateLimitedMixin, APIView):
    #: HTTP method → scope the key must carry. Empty: no key needed.
    required_scopes: dict[str, str] = {}


class Payload:
    """What an action answers, not yet rendered: the lean path writes it out with orjson in
    one step, and the full path makes it DRF's ``Response`` (``RateLimitedMixin``'s
    ``finalize_response``), so a lean read builds no ``Response`` it would throw away."""

    __slots__ = ("data", "headers", "status_code")

    def __init__(self, data, status: int = 200, headers: dict | None = None):
        self.data, self.status_code, self.headers = data, status, headers

    def response(self) -> Response:
        return Response(self.data, status=self.status_code, headers=self.headers)


def ok(status: int = 200, headers: dict | None = None, **payload) -> Payload:
    return Payload({"success": True, **payload}, status=status, headers=headers)
