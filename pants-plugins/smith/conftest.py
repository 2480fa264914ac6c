"""Markers shared by every smith test."""


def pytest_configure(config):
    config.addinivalue_line("markers", "debian_mirror: needs the real Debian mirror (network)")
