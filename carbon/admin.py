from django.contrib import admin

from carbon.models import GridIntensity


@admin.register(GridIntensity)
class GridIntensityAdmin(admin.ModelAdmin):
    """Read-only: history comes from import_grid_intensity, so it stays reproducible."""

    list_display = ["zone", "start", "end", "intensity_g_per_kwh", "kind", "source", "is_estimated", "imported_at"]
    list_filter = ["zone", "kind", "source", "is_estimated"]
    date_hierarchy = "start"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
