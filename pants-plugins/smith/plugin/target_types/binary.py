"""smith_binary: one program and exactly the files the dynamic loader needs for it."""
from typing import Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    DictStringToStringField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from smith.plugin.target_types.checks import DEFAULT_USER, parse_user
from smith.plugin.target_types.fields import OneOrMoreAddressesField


class SmithBinaryPathField(StringField):
    alias = "path"
    required = True
    help = "Absolute path of the program inside the root, e.g. `/usr/bin/redis-server`."


class SmithBinaryRootField(OneOrMoreAddressesField):
    alias = "root"
    help = help_text(
        """
        Where the program and its libraries live: a target that yields a file tree
        (`smith_packages`, `smith_minimize`) or
        `file`/`files` targets (each file at its path relative to its target's directory).
        """
    )


class SmithBinaryNssField(BoolField):
    alias = "nss"
    default = False
    help = help_text(
        """
        Add the NSS modules (libnss_files, libnss_dns and what they need) and minimal
        /etc/passwd, /etc/group and /etc/nsswitch.conf for `user`.
        """
    )


class SmithBinaryUserField(StringField):
    alias = "user"
    default = DEFAULT_USER
    help = "`NAME:UID:GID` (or `UID:GID`, NAME = smith) of the image user written to /etc/passwd and /etc/group when `nss=True`."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            parse_user(value, cls.alias, address)
        return value

    def parsed(self, address: Address) -> Tuple[str, int, int]:
        return parse_user(self.value, self.alias, address)


class SmithBinaryExtraLibsField(StringSequenceField):
    alias = "extra_libs"
    default = ()
    help = help_text(
        """
        Globs inside the root of libraries the program loads with dlopen() (ELF cannot tell);
        each match is traced in turn, e.g. `["/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so"]`.
        """
    )


class SmithBinaryPathsField(StringSequenceField):
    alias = "paths"
    default = ()
    help = help_text(
        """
        More files or directories (globs inside the root) to keep as they are, e.g. data files
        the program reads: `["/usr/share/zoneinfo/UTC"]`.
        """
    )


class SmithBinaryEnvField(DictStringToStringField):
    alias = "env"
    help = "Environment of the program for the loader search, e.g. `{\"LD_LIBRARY_PATH\": \"/opt/lib\"}`."


class SmithBinaryTarget(Target):
    alias = "smith_binary"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SmithBinaryPathField,
        SmithBinaryRootField,
        SmithBinaryNssField,
        SmithBinaryUserField,
        SmithBinaryExtraLibsField,
        SmithBinaryPathsField,
        SmithBinaryEnvField,
    )
    help = help_text(
        """
        A program and its ELF closure inside a root: the executable, its interpreter, every
        DT_NEEDED library found as ld.so would (RPATH/RUNPATH/$ORIGIN, ld.so.conf, multiarch
        dirs) and the symlinks on the way. Use it in a `smith_layer`'s dependencies. The closure
        runs as a cached Process over the root's digest.
        """
    )
