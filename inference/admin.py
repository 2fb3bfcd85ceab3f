from django.contrib import admin

from inference.models import BatchJob, ModelFamily, ModelVariant, ModelVersion, TrainingRun, UsageHour
from tenants.admin import AllTenantsAdmin
from tenants.services import audit_record


@admin.register(ModelFamily)
class ModelFamilyAdmin(admin.ModelAdmin):
    list_display = ["name", "default_variant", "accuracy_floor", "created_at"]
    fields = ["name", "description", "task", "accuracy_floor", "default_variant"]

    def save_model(self, request, obj, form, change):
        """Model defaults and floors change routing for every tenant: audit them."""
        before = {k: str(form.initial.get(k)) for k in ("default_variant", "accuracy_floor")} if change else None
        super().save_model(request, obj, form, change)
        if not change or {"default_variant", "accuracy_floor"} & set(form.changed_data):
            audit_record(actor=request.user.get_username(), action="model.defaults", target_type="model_family",
                         target_id=obj.name, before=before,
                         after={"default_variant": str(obj.default_variant_id), "accuracy_floor": str(obj.accuracy_floor)})
        from inference.routing import routes_cache_clear

        routes_cache_clear()


@admin.register(ModelVariant)
class ModelVariantAdmin(admin.ModelAdmin):
    list_display = ["__str__", "technique", "accuracy", "energy_per_1k_uj", "latency_p50_us", "created_at"]
    list_filter = ["technique"]

    def has_change_permission(self, request, obj=None):
        return False  # measured facts: rebuilt by build_models, never edited


admin.site.register(ModelVersion)
admin.site.register(TrainingRun)


@admin.register(UsageHour)
class UsageHourAdmin(AllTenantsAdmin):
    list_display = ["hour", "tenant", "variant", "mode", "source", "predictions", "energy_uj", "co2e_ug"]
    list_filter = ["mode", "source"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BatchJob)
class BatchJobAdmin(AllTenantsAdmin):
    list_display = ["id", "tenant", "status", "mode", "planned_start", "deadline", "rows_done"]
    list_filter = ["status", "tier"]
