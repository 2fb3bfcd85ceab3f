from django.urls import path

from inference import apis

urlpatterns = [
    path("models", apis.ModelListApi.as_view(), name="models"),
    path("models/<slug:family>", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<slug:family>/predict", apis.PredictApi.as_view(), name="predict"),
    path("usage", apis.UsageApi.as_view(), name="usage"),
]
