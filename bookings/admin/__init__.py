"""Staff browse and manage teams, keys, members, event types and bookings here.

One module per area: ``setup`` (teams, keys, members, event types), ``booking`` (bookings,
their history and actions); ``EstimatedCountPaginator`` keeps big lists from counting rows.
"""

from .booking import BookingAdmin
from .paginator import EstimatedCountPaginator
from .setup import ApiKeyAdmin, EventTypeAdmin, TeamAdmin, TeamMemberAdmin

__all__ = [
    "ApiKeyAdmin",
    "BookingAdmin",
    "EstimatedCountPaginator",
    "EventTypeAdmin",
    "TeamAdmin",
    "TeamMemberAdmin",
]
