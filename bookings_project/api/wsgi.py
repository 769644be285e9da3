"""The WSGI handler the servers run (``bookings_project.wsgi``)."""

from django.core.handlers.wsgi import WSGIHandler


class AcyclicWSGIHandler(WSGIHandler):
    """Django's WSGI handler, which also empties each request once its response is closed.

    Django's session-era middleware link a request to itself: ``request.user`` is a lazy object
    whose loader holds the request, ``request.auser`` a partial of it, and the message storage
    keeps the request it stores for. So every request, and all it refers to, outlived its
    response as a reference cycle that only the cyclic garbage collector frees, in one pause
    of tens of milliseconds every few hundred requests: the tail of the open-loop latency
    (bench/README.md, "The collector's pauses"). Emptied, the request is freed the moment the
    server lets go of the response. The view's own links are cut by ``AcyclicViewMixin``.
    """

    def get_response(self, request):
        response = super().get_response(request)
        # Run after Django's own closer (request.close(), which closes uploaded files): the
        # request's last use. The closer is the dict's method, so it holds no link back to the
        # request; close() drops the list of closers.
        response._resource_closers.append(request.__dict__.clear)
        return response
