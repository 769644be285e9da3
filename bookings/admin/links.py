from django.urls import reverse
from django.utils.html import format_html


def admin_change_link(model, pk, text: str | None = None) -> str:
    """A link to a row's admin page built from its id alone: a list needs no join for it."""
    if pk is None:
        return "-"
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, pk if text is None else text)
