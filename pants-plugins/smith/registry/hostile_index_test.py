"""Hostile indexes from a registry: a platform listed twice, a manifest whose config contradicts
the platform its index lists it for, an index on the way to itself, nesting too deep. Each is
`smith pull: error: ...`, exit 1, nothing left at the destination."""
import pytest

from smith.registry import media_types
from smith.registry.hostile_test import FakeRegistry, assert_clean_failure, canonical, sha, smith_pull


@pytest.fixture
def fake():
    reg = FakeRegistry()
    yield reg
    reg.stop()


def entry(digest, size, arch, variant=None, mt=media_types.OCI_MANIFEST):
    platform = {"os": "linux", "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": mt, "digest": digest, "size": size, "platform": platform}


def index(*entries):
    return {"schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": list(entries)}


def test_a_platform_listed_twice_is_refused(fake, tmp_path):
    _, one, n1 = fake.image(b"one", {"os": "linux", "architecture": "arm64"})
    _, two, n2 = fake.image(b"two", {"os": "linux", "architecture": "arm64"})
    digest, _ = fake.add_manifest(index(entry(one, n1, "arm64"), entry(two, n2, "arm64", "v8")))
    result, dest = smith_pull(fake, digest, tmp_path, "--platform", "linux/arm64")
    assert_clean_failure(result, dest, "lists linux/arm64/v8 twice (%s and %s)" % (one, two),
                         "ambiguous")


def test_a_config_that_contradicts_its_index_entry_is_refused(fake, tmp_path):
    _, amd64, size = fake.image(b"really amd64", {"os": "linux", "architecture": "amd64"})
    digest, _ = fake.add_manifest(index(entry(amd64, size, "arm64")))
    result, dest = smith_pull(fake, digest, tmp_path, "--platform", "linux/arm64")
    assert_clean_failure(result, dest, "%s is listed in its index for linux/arm64 but its config "
                                       "says linux/amd64" % amd64)


def test_an_index_on_the_way_to_itself_is_refused(fake, tmp_path):
    """Content addressing rules out a real cycle, so the registry lies: it answers the inner
    digest with the outer index. The size/digest checks (or the cycle check) stop it."""
    _, image, size = fake.image()
    inner_digest, inner_size = fake.add_manifest(index(entry(image, size, "amd64")))
    outer = canonical(index(entry(inner_digest, inner_size, "amd64", mt=media_types.OCI_INDEX)))
    fake.manifests[sha(outer)] = outer
    fake.manifests[inner_digest] = outer  # the lie
    result, dest = smith_pull(fake, sha(outer), tmp_path)
    assert_clean_failure(result, dest)
    assert any(why in result.stderr for why in ("descriptor says", "does not match", "cycle")), result.stderr


def test_indexes_nested_too_deep_are_refused(fake, tmp_path):
    _, digest, size = fake.image()
    for _ in range(4):
        digest, size = fake.add_manifest(index(entry(digest, size, "amd64", mt=media_types.OCI_INDEX)
                                               if _ else entry(digest, size, "amd64")))
    result, dest = smith_pull(fake, digest, tmp_path)
    assert_clean_failure(result, dest, "indexes nested more than 3 deep")
