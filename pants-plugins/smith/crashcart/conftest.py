"""Registers the marker of the one crashcart test that needs the real Debian mirror."""


def pytest_configure(config):
    config.addinivalue_line("markers", "debian_mirror: needs the real Debian mirror (network)")
