"""The launcher's tests share one layer-store fixture (`store`): a fresh store per test that
fails the test if a container, mount or file is left behind in it."""
from smith.testutil.launch import store  # noqa: F401
