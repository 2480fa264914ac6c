"""smith.registry.urls agrees with urllib.parse on what a registry sends and what we build."""
import urllib.parse

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smith.registry import urls

BASES = ["http://127.0.0.1:5000/v2/app/blobs/uploads/", "https://reg.io/v2/a/b?x=1",
         "https://[::1]:5000/v2/a/manifests/latest", "http://h"]
REFS = ["/v2/app/blobs/uploads/7f?_state=a%2Fb=", "7f?_state=x", "../c/d", "./", "..",
        "//s3.example/bucket/x?sig=1", "https://s3.example:8443/x#frag", "?q=1", "",
        "a/./b/../c", "/a/b/../../../c"]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("ref", REFS)
def test_join_is_urljoin(base, ref):
    assert urls.join(base, ref) == urllib.parse.urljoin(base, ref)


@pytest.mark.parametrize("url", BASES + ["HTTPS://Reg.IO:443/v2/?a=b#c", "http://h?x=/y",
                                         "https://[fe80::1]:1/p"])
def test_split_is_urlsplit(url):
    s = urllib.parse.urlsplit(url)
    assert urls.split(url) == (s.scheme, s.netloc, s.path, s.query)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=10), st.text(max_size=30)), max_size=4))
def test_encode_is_urlencode(params):
    assert urls.encode(params) == urllib.parse.urlencode(params)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab/.?=%&", max_size=20))
def test_relative_paths_join_as_urljoin(ref):
    assume(not ref.startswith("//"))  # network-path references: in the table above
    base = "http://h:1/v2/x/blobs/uploads/"
    assert urls.join(base, ref) == urllib.parse.urljoin(base, ref)
