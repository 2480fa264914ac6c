"""Dependencies-like fields shared by the smith target types.

They are `SpecialCasedDependencies`: `./pants dependencies`, `dependents`, `filedeps`, `peek` and
`--changed-since` see them, while the rules read them on their own terms (a layer's `dependencies`
are its contents, a test's `image` is what it runs).
"""
from typing import Any, Optional, Tuple

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException, SpecialCasedDependencies


class SmithPackageOutputPathField(OutputPathField):
    """The `output_path` of every target `pants package` builds with smith (images, toolboxes,
    commands): ONE member of Pants' `PackageFieldSet` union requires it. Each member of that union
    costs every Pants start ~25k rule-graph solver steps (~0.25 s), whatever its rule does; see
    bench/README.md (issue 16)."""


class OneOrMoreAddressesField(SpecialCasedDependencies):
    """`root=":pkgs"` reads better than `root=[":pkgs"]`; both are accepted."""

    @classmethod
    def compute_value(cls, raw_value: Any, address: Address) -> Optional[Tuple[str, ...]]:
        if isinstance(raw_value, str):
            raw_value = [raw_value]
        return super().compute_value(raw_value, address)


class SingleAddressField(OneOrMoreAddressesField):
    """Exactly one address (`":bookworm"`; a list of one is accepted too)."""

    @classmethod
    def compute_value(cls, raw_value: Any, address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        if value is not None and len(value) != 1:
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} must name one target, e.g. `{cls.alias}=\":name\"`, "
                f"not {len(value)}."
            )
        return value

    @property
    def address_spec(self) -> Optional[str]:
        return self.value[0] if self.value else None
