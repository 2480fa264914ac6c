"""A dependencies-like field that also takes one address as a plain string."""
from typing import Any, Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.target import SpecialCasedDependencies


class OneOrMoreAddressesField(SpecialCasedDependencies):
    """`root=":pkgs"` reads better than `root=[":pkgs"]`; both are accepted."""

    @classmethod
    def compute_value(cls, raw_value: Any, address: Address) -> Optional[Tuple[str, ...]]:
        if isinstance(raw_value, str):
            raw_value = [raw_value]
        return super().compute_value(raw_value, address)
