"""OCI core, Pants-free: deterministic layers, image layouts, docker archives, safe unpacking.

Modules: tree (file trees from dirs/tree tars, merge, excludes), tar_format (byte-exact tar
headers), deterministic_gzip, layer (sorted/normalised layer writer), image (config, manifest,
index, skeleton, base, attachments), image_source (reading layouts/archives, digest checks),
docker_archive (`docker save` format), unpack (untrusted images -> directory), atomic (outputs
appear whole or not at all). CLIs: layer_cli, image_cli, unpack_cli, merge_cli.
"""
