"""Staff browse and manage teams, keys, members, event types and bookings here.

One module per area: ``setup`` (teams, keys, members, event types), ``booking`` (bookings,
their history and actions), ``idempotency`` (the stored replies, read-only);
``EstimatedCountPaginator`` keeps big lists from counting rows; ``SelectionCheckedAdmin``
(the base of every admin here, Django's users and groups included) answers a forged action
selection with a message, and lets a list sort only by its ``sortable_by`` (``listing``).
"""

from .booking import BookingAdmin
from .idempotency import IdempotencyKeyAdmin
from .links import admin_change_link
from .listing import choice_filter_parameters
from .paginator import EstimatedCountPaginator
from .selection import SelectionCheckedAdmin
from .setup import ApiKeyAdmin, EventTypeAdmin, TeamAdmin, TeamMemberAdmin

__all__ = [
    "ApiKeyAdmin",
    "BookingAdmin",
    "EstimatedCountPaginator",
    "EventTypeAdmin",
    "IdempotencyKeyAdmin",
    "SelectionCheckedAdmin",
    "TeamAdmin",
    "TeamMemberAdmin",
    "admin_change_link",
    "choice_filter_parameters",
]
