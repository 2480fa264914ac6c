"""Media types the distribution API speaks, and the Accept header that asks for all of them."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
ALL_MANIFESTS = INDEXES + IMAGE_MANIFESTS

# distribution 2.8 answers 404 to a GET whose Accept lacks the OCI types, so always send all four.
MANIFEST_ACCEPT = ", ".join(ALL_MANIFESTS)

REF_NAME = "org.opencontainers.image.ref.name"
