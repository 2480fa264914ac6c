"""smith_repository and smith_packages: package repositories and the locked package trees built
from them. Every field carries the help text `pants help` shows."""
from pants.engine.fs import PathGlobs
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    MultipleSourcesField,
    SingleSourceField,
    StringField,
    StringSequenceField,
    Target,
    TargetFilesGenerator,
)
from pants.option.global_options import UnmatchedBuildFileGlobs
from pants.util.strutil import help_text

from smith.plugin.target_types.fields import SingleAddressField

# ----------------------------------------------------------------------------------------------
# smith_repository
# ----------------------------------------------------------------------------------------------


class SmithRepositoryKindField(StringField):
    alias = "kind"
    default = "deb"
    valid_choices = ("deb", "rpm")
    help = "`deb` (an apt repository: dists/SUITE/InRelease) or `rpm` (a yum repository: repodata/repomd.xml)."


class SmithRepositoryUrlField(StringField):
    alias = "url"
    required = True
    help = help_text(
        """
        Base URL of the repository (http://, https:// or file://), e.g.
        `http://deb.debian.org/debian` or `http://127.0.0.1:8080/repo`.
        """
    )


class SmithRepositorySuitesField(StringSequenceField):
    alias = "suites"
    default = ("bookworm",)
    help = "deb only: the suites (dists/SUITE) whose packages are merged, e.g. `[\"bookworm\", \"bookworm-updates\"]`."


class SmithRepositoryComponentsField(StringSequenceField):
    alias = "components"
    default = ("main",)
    help = "deb only: the components of every suite, e.g. `[\"main\"]`."


class SmithRepositoryArchitecturesField(StringSequenceField):
    alias = "architectures"
    help = help_text(
        """
        Architectures to take packages from. Default: `["amd64"]` for deb (`all` is always
        accepted too), `["x86_64", "noarch"]` for rpm. Several (`["amd64", "arm64"]`): each is
        resolved on its own packages and the shared `all`/`noarch` ones, into one lockfile with
        pins per architecture, so images can be built for each matching platform (`linux/amd64`,
        `linux/arm64`; see `smith_image.platforms`).
        """
    )

    def for_kind(self, kind: str):
        if self.value:
            return list(self.value)
        return ["amd64"] if kind == "deb" else ["x86_64", "noarch"]


class SmithRepositoryKeyringField(StringField):
    alias = "keyring"
    help = help_text(
        """
        OpenPGP keyring (a file, path relative to this BUILD file's directory) that signs the
        repository: deb InRelease/Release.gpg, rpm repomd.xml.asc. Unset: Debian's archive
        keyring (/usr/share/keyrings/debian-archive-keyring.gpg) for deb; no signature check
        for rpm (the repomd.xml checksums still apply).
        """
    )


class SmithRepositoryTrustedField(BoolField):
    alias = "trusted"
    default = False
    help = "Do not check signatures (apt's `[trusted=yes]`). Index checksums are still checked."


class SmithRepositoryTarget(Target):
    alias = "smith_repository"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithRepositoryKindField,
        SmithRepositoryUrlField,
        SmithRepositorySuitesField,
        SmithRepositoryComponentsField,
        SmithRepositoryArchitecturesField,
        SmithRepositoryKeyringField,
        SmithRepositoryTrustedField,
    )
    help = help_text(
        """
        A deb or rpm package repository that `smith_packages` targets lock against. Only
        `./pants generate-lockfiles` reads it; builds read the lockfile alone.
        """
    )


# ----------------------------------------------------------------------------------------------
# smith_packages
# ----------------------------------------------------------------------------------------------


class SmithPackagesRepositoryField(SingleAddressField):
    alias = "repository"
    default = (":bookworm",)
    help = help_text(
        """
        Address of the `smith_repository` to lock against, e.g. `:bookworm` or
        `//3rdparty/deb:bookworm`. A dependency: `./pants dependencies` lists it.
        """
    )


class SmithPackagesPackagesField(StringSequenceField):
    alias = "packages"
    required = True
    help = help_text(
        """
        Packages to install with everything they depend on, in the repository's own syntax:
        deb `redis-server`, `redis-server (>= 5:7.0)`, `mawk | gawk`; rpm `hello`, `hello >= 1.0`.
        """
    )


class SmithPackagesExcludesField(StringSequenceField):
    alias = "excludes"
    deprecated_alias = "exclude"
    deprecated_alias_removal_version = "2.19.0.dev0"
    default = ()
    help = help_text(
        """
        Package names never installed, even when something depends on them (e.g. `["libc-bin"]`);
        the lockfile records who wanted them.
        """
    )


class SmithPackagesResolveField(StringField):
    alias = "resolve"
    help = "Name of the lock for `./pants generate-lockfiles --resolve=NAME`. Default: the target's name."

    def name_for(self, address) -> str:
        return self.value or address.target_name


class SmithPackagesLockfileField(StringField):
    alias = "lockfile"
    help = help_text(
        """
        The lockfile, relative to this BUILD file's directory. Default: `NAME.lock.json` (NAME =
        the resolve). It must be owned by a `smith_lockfile` target (e.g. `smith_lockfiles()` in
        the same BUILD file), which becomes a dependency of this target: a change to the
        lockfile marks every image built from it as changed.
        """
    )

    def path_for(self, address, resolve: str) -> str:
        name = self.value or f"{resolve}.lock.json"
        return f"{address.spec_path}/{name}" if address.spec_path else name


class SmithPackagesTarget(Target):
    alias = "smith_packages"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithPackagesRepositoryField,
        SmithPackagesPackagesField,
        SmithPackagesExcludesField,
        SmithPackagesResolveField,
        SmithPackagesLockfileField,
    )
    help = help_text(
        """
        Packages from a `smith_repository`, pinned in a lockfile (name, version, architecture,
        URL, sha256, size, dependencies) that `./pants generate-lockfiles --resolve=NAME` writes.
        A build reads only the lockfile: each package file is downloaded by sha256 and size,
        extracted by its own cached Process (no maintainer scripts run) and the packages are
        merged into one merged-/usr file tree. Use it in a `smith_layer`'s dependencies or as a
        `smith_binary`'s `root`. `./pants smith-outdated` lists pins with newer versions.
        """
    )


# ----------------------------------------------------------------------------------------------
# smith_lockfile(s): the targets that own lockfiles, so they are nodes of the graph
# ----------------------------------------------------------------------------------------------


class _MissingIsFine:
    """A lockfile may not exist yet: `generate-lockfiles` writes it (Pants' `_lockfile` does the same)."""

    def path_globs(self, unmatched_build_file_globs: UnmatchedBuildFileGlobs) -> PathGlobs:  # type: ignore[misc]
        return super().path_globs(UnmatchedBuildFileGlobs.ignore())  # type: ignore[misc]


class SmithLockfileSourceField(_MissingIsFine, SingleSourceField):
    uses_source_roots = False
    expected_file_extensions = (".json",)
    help = "The lockfile a `smith_packages` target reads, relative to this BUILD file."


class SmithLockfileTarget(Target):
    alias = "smith_lockfile"
    core_fields = (*COMMON_TARGET_FIELDS, SmithLockfileSourceField)
    help = help_text(
        """
        A smith_packages lockfile as a node of the build graph: the smith_packages target whose
        `lockfile` it is depends on it (inferred), so `./pants dependents`, `filedeps` and
        `--changed-since` see a lockfile change reach every image built from it.
        """
    )


class SmithLockfilesSourcesField(_MissingIsFine, MultipleSourcesField):
    uses_source_roots = False
    default = ("*.lock.json",)
    expected_file_extensions = (".json",)
    help = "Lockfiles of smith_packages targets, relative to this BUILD file. Default: `*.lock.json`."


class SmithLockfilesTarget(TargetFilesGenerator):
    alias = "smith_lockfiles"
    core_fields = (*COMMON_TARGET_FIELDS, SmithLockfilesSourcesField)
    generated_target_cls = SmithLockfileTarget
    copied_fields = COMMON_TARGET_FIELDS
    moved_fields = ()
    help = help_text(
        """
        One `smith_lockfile` target per lockfile of this directory (default `*.lock.json`): put
        `smith_lockfiles(name="lockfiles")` next to smith_packages targets.
        """
    )


def all_target_types():
    return [SmithRepositoryTarget, SmithPackagesTarget, SmithLockfileTarget, SmithLockfilesTarget]
