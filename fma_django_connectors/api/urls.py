"""Routes of API v1."""

from rest_framework.routers import DefaultRouter

from fma_django_connectors.api import views

router = DefaultRouter()
router.register("models", views.FederatedModelViewSet, basename="federated-model")
router.register("model_updates", views.ModelUpdateViewSet, basename="model-update")
router.register("model_aggregates", views.ModelAggregateViewSet, basename="model-aggregate")
router.register("model_artifacts", views.ModelArtifactViewSet, basename="model-artifact")
router.register("uploads", views.UploadViewSet, basename="upload")
router.register("enrollment_tokens", views.EnrollmentTokenViewSet, basename="enrollment-token")
router.register("client_aggregate_scores", views.ClientAggregateScoreViewSet, basename="client-aggregate-score")

urlpatterns = router.urls
