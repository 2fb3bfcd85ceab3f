from django.urls import path

from inference import apis

urlpatterns = [
    path("models", apis.ModelListApi.as_view(), name="models"),
    path("models/<slug:family>", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<slug:family>/candidates", apis.CandidateApi.as_view(), name="model-candidates"),
    path("usage", apis.UsageApi.as_view(), name="usage"),
    path("budgets", apis.BudgetListApi.as_view(), name="budgets"),
    path("budgets/<int:budget_id>/sign-off", apis.BudgetSignOffApi.as_view(), name="budget-sign-off"),
    path("retention", apis.RetentionApi.as_view(), name="retention"),
    path("batches", apis.BatchListApi.as_view(), name="batches"),
    path("batches/<int:job_id>", apis.BatchDetailApi.as_view(), name="batch-detail"),
    path("batches/<int:job_id>/results", apis.BatchResultsApi.as_view(), name="batch-results"),
]
