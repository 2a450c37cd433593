from django.apps import AppConfig


class DmConfig(AppConfig):
    name = "dm"
    verbose_name = "Messages"
    default_auto_field = "django.db.models.BigAutoField"
