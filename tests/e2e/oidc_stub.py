"""A local OpenID Connect provider for tests: discovery, JWKS, an authorization endpoint that
signs in a chosen user at once, and a token endpoint that checks the client, the redirect URI
and the PKCE verifier before issuing an RS256 ID token. `mode` makes it misbehave on purpose."""
import base64
import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class StubProvider:
    def __init__(self, client_id, client_secret):
        self.client_id, self.client_secret = client_id, client_secret
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user = "doc"
        self.mode = "good"
        self.authorize_requests = []
        self.codes = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()

    def jwks(self):
        pub = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": int_b64(pub.n),
                          "e": int_b64(pub.e)}]}

    def id_token(self, nonce, user):
        now = int(time.time())
        claims = {"iss": self.url, "sub": "sub-" + user, "aud": self.client_id, "exp": now + 300, "iat": now,
                  "nonce": nonce, "preferred_username": user}
        key = self.key
        if self.mode == "wrong-nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.mode == "wrong-audience":
            claims["aud"] = "another-app"
        elif self.mode == "expired":
            claims["exp"] = now - 3600
        elif self.mode == "other-key":
            key = self.other_key
        header = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
        if self.mode == "alg-none":
            header = {"alg": "none"}
        data = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = b"" if self.mode == "alg-none" else key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{data}.{b64(sig)}"

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_json(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                if u.path == "/.well-known/openid-configuration":
                    self.send_json(200, {"issuer": stub.url, "authorization_endpoint": stub.url + "/authorize",
                                         "token_endpoint": stub.url + "/token", "jwks_uri": stub.url + "/jwks",
                                         "response_types_supported": ["code"],
                                         "id_token_signing_alg_values_supported": ["RS256"]})
                elif u.path == "/jwks":
                    self.send_json(200, stub.jwks())
                elif u.path == "/authorize":
                    stub.authorize_requests.append(q)
                    if stub.mode == "refuse":
                        target = {"error": "access_denied", "state": q.get("state", "")}
                    else:
                        code = uuid.uuid4().hex
                        stub.codes[code] = (q, stub.user)
                        target = {"code": code, "state": q.get("state", "")}
                    self.send_response(302)
                    self.send_header("Location", q["redirect_uri"] + "?" + urlencode(target))
                    self.end_headers()
                else:
                    self.send_json(404, {"error": "not_found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                f = {k: v[0] for k, v in parse_qs(body).items()}
                if urlparse(self.path).path != "/token":
                    return self.send_json(404, {"error": "not_found"})
                if (f.get("client_id"), f.get("client_secret")) != (stub.client_id, stub.client_secret):
                    return self.send_json(401, {"error": "invalid_client"})
                asked = stub.codes.pop(f.get("code", ""), None)
                if f.get("grant_type") != "authorization_code" or asked is None:
                    return self.send_json(400, {"error": "invalid_grant"})
                q, user = asked
                # RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) must equal the challenge.
                challenge = b64(hashlib.sha256(f.get("code_verifier", "").encode()).digest())
                if q.get("code_challenge_method") != "S256" or challenge != q.get("code_challenge") \
                        or f.get("redirect_uri") != q.get("redirect_uri"):
                    return self.send_json(400, {"error": "invalid_grant"})
                self.send_json(200, {"access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": 300,
                                     "id_token": stub.id_token(q.get("nonce", ""), user)})

        return Handler
