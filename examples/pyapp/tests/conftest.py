"""`store`: a fresh layer store per test, failing the test if anything is left behind in it."""
from smith.testutil.launch import store  # noqa: F401
