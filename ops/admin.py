from django.contrib import admin

from ops.models import DeadLetter


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["created_at", "task_name", "task_id", "reason", "deliveries"]
    list_filter = ["reason", "task_name"]
    readonly_fields = ["task_id", "task_name", "args", "kwargs", "reason", "deliveries", "error", "created_at"]
