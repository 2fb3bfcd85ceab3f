"""The project's URLs plus billing's, until config/urls.py includes billing.urls itself."""

from django.urls import include, path

from config import urls as project

urlpatterns = list(project.urlpatterns)
if not any(getattr(p, "urlconf_name", None) == "billing.urls" for p in urlpatterns):
    urlpatterns.append(path("v1/", include("billing.urls")))

handler400 = project.handler400
handler404 = project.handler404
handler500 = project.handler500
