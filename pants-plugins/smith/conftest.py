"""Markers and hypothesis profiles shared by every smith test."""
import os

from hypothesis import HealthCheck, settings

# Property-based tests (parsers, unpackers): a bounded example count by default, so `pants test` stays
# quick and repeatable; SMITH_HYPOTHESIS_PROFILE=long (passed through by pants.toml) runs many more.
# No example database: the source tree and the Pants sandbox stay clean.
settings.register_profile("ci", max_examples=150, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=20000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("SMITH_HYPOTHESIS_PROFILE") or "ci")


def pytest_configure(config):
    config.addinivalue_line("markers", "debian_mirror: needs the real Debian mirror (network)")
