"""What the core PEX and the zipapps carry is derived from the package layout (is_core_file)."""
import re

from smith.plugin.rules.util.process import core_source_files, is_core_file


def test_core_sources_hold_no_glue_tests_or_test_helpers():
    paths = [p for p, _ in core_source_files()]
    assert "smith/runtime/__init__.py" in paths and "smith/cli.py" in paths
    for path in paths:
        assert not path.startswith(("smith/plugin/", "smith/testutil/")), path
        assert not path.endswith(("_test.py", "/conftest.py")), path


def test_no_core_module_imports_pants_or_the_test_helpers():
    # Anything the core imports must ship with it: the test helpers and pants never do.
    imports = re.compile(rb"^\s*(?:from|import)\s+(pants\b|smith\.testutil\b|smith\.plugin\b)", re.M)
    offenders = [p for p, content in core_source_files() if imports.search(content)]
    assert offenders == []


def test_is_core_file():
    assert is_core_file("oci/layer.py")
    assert not is_core_file("testutil/launch.py")
    assert not is_core_file("plugin/register.py")
    assert not is_core_file("oci/layer_test.py")
    assert not is_core_file("conftest.py")
