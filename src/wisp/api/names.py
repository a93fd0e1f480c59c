"""The label and annotation names wisp reads and writes: Knative's own, the seed platform's, and wisp's."""

from __future__ import annotations

# Knative Serving's labels on the objects it generates.
SERVICE_LABEL = "serving.knative.dev/service"
CONFIGURATION_LABEL = "serving.knative.dev/configuration"
CONFIGURATION_UID_LABEL = "serving.knative.dev/configurationUID"
CONFIGURATION_GENERATION_LABEL = "serving.knative.dev/configurationGeneration"
REVISION_LABEL = "serving.knative.dev/revision"
ROUTE_LABEL = "serving.knative.dev/route"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
# Knative's labeler: whether some Route targets a Revision, and which.
ROUTING_STATE_LABEL = "serving.knative.dev/routingState"
ROUTING_STATE_MODIFIED_ANNOTATION = "serving.knative.dev/routingStateModified"
ROUTES_ANNOTATION = "serving.knative.dev/routes"

# Knative Eventing.
BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
BROKER_LABEL = "eventing.knative.dev/broker"

# wisp's own.
WORKLOAD_CLASS_ANNOTATION = "wisp.dev/workload-class"  # function | container
FUNCTION_TARGET_ANNOTATION = "wisp.dev/function-target"  # module:attribute
QUEUE_DEPTH_ANNOTATION = "wisp.dev/queue-depth"  # requests a revision's throttler holds beyond its capacity
MANIFEST_DIR_ANNOTATION = "wisp.dev/manifest-dir"  # where `image: ./dir` is resolved from
IN_FLIGHT_ANNOTATION = "wisp.dev/in-flight"  # on a pod: requests it is serving
