"""Package repositories (Pants-free): deb + rpm metadata, solver, lockfiles, extraction,
outdated report and SPDX SBOM. The Pants rules call these CLIs in sandboxes:

  smith lock --repo REPO.json --output LOCK.json [--exclude NAME]... [--cache-dir DIR] PKG...
      needs the network (the repository URL); writes the canonical lockfile.
  smith extract --output TREE.tar --sha256 HEX [--size N] [--name NAME] FILE.deb|FILE.rpm
      hermetic; one cacheable Process per package file.
  smith outdated [--check] [--json OUT] [--keyring K] [--trusted] [--cache-dir DIR] LOCK.json...
      needs the network; exit 3 with --check when anything is outdated.
  smith sbom --output SBOM.json --lock LOCK.json --image-tree TREE.tar [--package NAME=TREE.tar]...
      hermetic; SPDX 2.3 JSON.
Every command exits 0 on success, 1 on a user error (`smith CMD: error: ...` on stderr),
2 on bad usage (argparse). Outputs are written atomically (temp name + rename).

Modules: repo_config (REPO.json), fetch, gpg, deb_repo / rpm_repo (metadata), universe +
model + rpmvercmp (what the solver sees), solver, lockfile, ar / cpio / debfile / rpmfile /
compression (readers), tree (merged-/usr tree tars), outdated, sbom; *_cli the commands.
"""
