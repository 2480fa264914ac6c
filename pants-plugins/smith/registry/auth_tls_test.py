"""Authentication and TLS against a real docker-registry: htpasswd (bcrypt) behind TLS with a CA
made here by openssl, credentials from docker/containers auth files, and Bearer tokens from a
small token server that signs real JWTs the registry verifies."""
import base64
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smith.errors import SmithError
from smith.registry.client import RegistryClient
from smith.registry.credentials import Credentials, find_credentials
from smith.testutil.local_registry import LocalRegistry, run_smith
from smith.registry.platforms import parse_platform
from smith.registry.pull import pull_image
from smith.registry.push import push_layout
from smith.registry.reference import parse_reference
from smith.testutil.sample_images import simple_layout
from smith.testutil.debian import require_tools, tool_env


def openssl(*args, cwd):
    proc = subprocess.run(["openssl", *args], cwd=cwd, env=tool_env(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def make_ca_and_server_cert(d):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (EC keys: fast)."""
    require_tools("openssl")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
            "/CN=smith test CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    return os.path.join(d, "ca.pem"), os.path.join(d, "server.pem"), os.path.join(d, "server.key")


def write_auth_file(path, host, user, password):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    with open(path, "w") as f:
        json.dump({"auths": {host: {"auth": auth}}}, f)


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("secure"))
    ca, cert, key = make_ca_and_server_cert(d)
    require_tools("htpasswd")
    htpasswd = os.path.join(d, "htpasswd")
    subprocess.run(["htpasswd", "-B", "-b", "-c", htpasswd, "smith", "s3cret pass"],
                   env=tool_env(), check=True, capture_output=True)
    reg = LocalRegistry(os.path.join(d, "reg"), htpasswd=htpasswd, tls=(cert, key))
    reg.ca = ca
    yield reg
    reg.stop()


def test_push_and_pull_with_docker_config_credentials_and_ca(secure_registry, tmp_path):
    reg = secure_registry
    home = str(tmp_path / "home")
    write_auth_file(os.path.join(home, ".docker", "config.json"), reg.host, "smith",
                    "s3cret pass")
    desc = simple_layout(str(tmp_path / "src"), salt="secure")
    pushed = run_smith(["push", "--ca", reg.ca, str(tmp_path / "src"),
                        reg.host + "/private/app:v1"], home)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == desc["digest"]
    pulled = run_smith(["pull", "--ca", reg.ca, "%s/private/app@%s" % (reg.host, desc["digest"]),
                        str(tmp_path / "out")], home)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == desc["digest"]

    # Without the CA the certificate is not trusted, and the message says what to pass.
    untrusted = run_smith(["pull", "%s/private/app@%s" % (reg.host, desc["digest"]),
                           str(tmp_path / "out2")], home)
    assert untrusted.returncode == 1
    assert "not trusted" in untrusted.stderr and "--ca" in untrusted.stderr
    assert not (tmp_path / "out2").exists()
    insecure = run_smith(["pull", "--insecure", "%s/private/app@%s" % (reg.host, desc["digest"]),
                          str(tmp_path / "out3")], home)
    assert insecure.returncode == 0, insecure.stderr


def test_wrong_password_and_missing_credentials_are_clear_errors(secure_registry, tmp_path):
    reg = secure_registry
    home = str(tmp_path / "home")
    write_auth_file(os.path.join(home, ".docker", "config.json"), reg.host, "smith",
                    "s3cret pass")
    wrong = str(tmp_path / "auth.json")  # REGISTRY_AUTH_FILE wins over ~/.docker/config.json
    write_auth_file(wrong, reg.host, "smith", "not the password")
    simple_layout(str(tmp_path / "src"), salt="denied")
    refused = run_smith(["push", "--ca", reg.ca, str(tmp_path / "src"), reg.host + "/private/x"],
                        home, REGISTRY_AUTH_FILE=wrong)
    assert refused.returncode == 1
    assert "check the username and password" in refused.stderr and wrong in refused.stderr

    nobody = str(tmp_path / "nobody")
    anonymous = run_smith(["push", "--ca", reg.ca, str(tmp_path / "src"),
                           reg.host + "/private/x"], nobody)
    assert anonymous.returncode == 1
    assert "requires a login" in anonymous.stderr and reg.host in anonymous.stderr


def test_credentials_lookup_order_and_keys(tmp_path):
    env = {"HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(tmp_path / "containers.json"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    write_auth_file(str(tmp_path / ".docker" / "config.json"), "https://reg.example:5000/v1/",
                    "docker", "pw1")
    assert find_credentials("reg.example:5000", "a/b", env) == Credentials(
        "docker", "pw1", str(tmp_path / ".docker" / "config.json"))
    # containers auth.json may scope credentials to a namespace; the most specific key wins.
    with open(env["REGISTRY_AUTH_FILE"], "w") as f:
        json.dump({"auths": {"reg.example:5000/team": {"username": "team", "password": "pw2"}}},
                  f)
    assert find_credentials("reg.example:5000", "team/app", env).username == "team"
    assert find_credentials("reg.example:5000", "other/app", env).username == "docker"
    with open(env["REGISTRY_AUTH_FILE"], "w") as f:
        json.dump({"auths": {"reg.example:5000": {"auth": "!!!"}}}, f)
    with pytest.raises(SmithError, match="containers.json.*not base64"):
        find_credentials("reg.example:5000", "a/b", env)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues RS256 JWTs (signed by openssl) in the format distribution's `auth: token` checks."""

    def __init__(self, d, service, issuer):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "token.key",
                "-out", "token.pem", "-days", "2", "-subj", "/CN=smith token issuer", cwd=d)
        self.dir, self.service, self.issuer = d, service, issuer
        self.cert = os.path.join(d, "token.pem")
        der = openssl("x509", "-in", "token.pem", "-outform", "DER", cwd=d)
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                query = parse_qs(urlsplit(self.path).query)
                server.requests.append((self.headers.get("Authorization"), query))
                expected = "Basic " + base64.b64encode(b"tok:en pass").decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.sign(query.get("scope", [])),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = "http://127.0.0.1:%d/token" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, scopes):
        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": "tok", "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": str(now) + str(len(self.requests)),
                  "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(
            json.dumps(claims).encode())
        path = os.path.join(self.dir, "input-%d" % threading.get_ident())
        with open(path, "w") as f:
            f.write(signing_input)
        signature = openssl("dgst", "-sha256", "-sign", "token.key", path, cwd=self.dir)
        return signing_input + "." + b64url(signature)

    def stop(self):
        self.httpd.shutdown()


def test_bearer_tokens_from_the_challenge(tmp_path):
    require_tools("openssl")
    d = str(tmp_path)
    tokens = TokenServer(d, "smith-registry", "smith-issuer")
    reg = LocalRegistry(os.path.join(d, "reg"), token={
        "realm": tokens.realm, "service": "smith-registry", "issuer": "smith-issuer",
        "rootcertbundle": tokens.cert})
    try:
        desc = simple_layout(os.path.join(d, "src"), salt="bearer")
        good = RegistryClient(reg.host, credentials=Credentials("tok", "en pass", "test"))
        assert push_layout(good, os.path.join(d, "src"), None, "tokened/app", ["v1"]) == \
            desc["digest"]
        got = pull_image(good, parse_reference("%s/tokened/app@%s" % (reg.host, desc["digest"])),
                         parse_platform("linux/amd64"), os.path.join(d, "out"))
        assert got == desc["digest"]
        # The token server saw our Basic credentials, the service from the challenge, and the
        # scopes we asked for; tokens are cached per scope, not fetched per request.
        scopes = [q.get("scope") for _, q in tokens.requests]
        assert all(q.get("service") == ["smith-registry"] for _, q in tokens.requests)
        assert ["repository:tokened/app:pull,push"] in scopes
        assert ["repository:tokened/app:pull"] in scopes
        assert len(tokens.requests) <= 3

        wrong = RegistryClient(reg.host, credentials=Credentials("tok", "bad", "/my/auth.json"))
        with pytest.raises(SmithError, match="token server .* refused the credentials for .* "
                                             "from /my/auth.json"):
            push_layout(wrong, os.path.join(d, "src"), None, "tokened/app", [])
    finally:
        reg.stop()
        tokens.stop()
