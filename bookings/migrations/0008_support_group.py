"""The "Support" group: staff who find, fix and act on bookings in the admin.

It holds view and change of bookings (the attendee's details), the four lifecycle
permissions, and view of what a booking page shows or links to. Re-running is harmless;
going back removes the group.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Support"
PERMISSIONS = [
    ("bookings", "booking", "view_booking"),
    ("bookings", "booking", "change_booking"),
    ("bookings", "booking", "confirm_booking"),
    ("bookings", "booking", "cancel_booking"),
    ("bookings", "booking", "reschedule_booking"),
    ("bookings", "booking", "complete_booking"),
    ("bookings", "bookinghistory", "view_bookinghistory"),
    ("bookings", "team", "view_team"),
    ("bookings", "teammember", "view_teammember"),
    ("bookings", "eventtype", "view_eventtype"),
    ("notifications", "emailoutbox", "view_emailoutbox"),
]


def _ensure_permissions(apps):
    # Permissions are made by a post_migrate signal, after every migration has run: on a
    # fresh database they do not exist yet. Make them now, from the historical models.
    for label in ("bookings", "notifications"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def support_group_create(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, model, codename in PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(
                content_type__app_label=app_label,
                content_type__model=model,
                codename=codename,
            )
        )


def support_group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("bookings", "0007_admin_permissions_key_last_used"),
        ("notifications", "0002_outbox_superseded_sequence"),
    ]

    operations = [migrations.RunPython(support_group_create, support_group_delete)]
