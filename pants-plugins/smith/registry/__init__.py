"""Pants-free client of the OCI distribution spec, and the `smith push` / `smith pull` CLIs.

reference.py   REGISTRY/REPO[:TAG][@DIGEST] and LAYOUT_DIR[:REF] arguments
credentials.py auth.json / docker config.json lookup
challenge.py   WWW-Authenticate parsing
transport.py   one HTTP(S) exchange: TLS, plain http for local registries, redirects
client.py      blobs, manifests, tags, Basic/Bearer auth, bounded retries, chunked uploads
layout.py      reading and (atomically) writing OCI image layouts
platforms.py   choosing a platform's manifest from an index
push.py        image (+ index children + referring artifacts such as SBOMs) -> registry
pull.py        registry -> new OCI layout, digest-checked, nothing written on failure
(test helpers, a real docker-registry and small layouts: smith/testutil/local_registry.py, sample_images.py)
"""
