"""tests/e2e/jwt_tool.py - JWKS files and JWTs for the tests, made with PyJWT and cryptography
(Debian's python3-jwt, python3-cryptography): another implementation than the server's libjwt.

As a module: make_keys(dir), sign(dir, alg, kid, claims). As a command (the C unit tests):
    jwt_tool.py keys DIR                    RSA and EC keys, DIR/jwks.json (kids rsa1, and ec1,
                                            ec384, ec521 on P-256, P-384, P-521)
    jwt_tool.py sign DIR ALG KID CLAIMS     a token on stdout; CLAIMS is JSON, where exp, nbf
                                            and iat given as "+N" / "-N" are now plus N seconds
ALG: RS256, RS384, RS512 (key rsa1), ES256 (ec1), ES384 (ec384), ES512 (ec521), and two forged
kinds: "none" (unsigned) and
"HS256-pub" (HMAC keyed with the RSA public key's PEM, the classic key-confusion forgery).
KID "-" leaves the header without one. A claim "_typ" goes into the header as its "typ".
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def make_keys(d):
    """Writes d/rsa1.pem, d/ec1.pem (private keys) and d/jwks.json; returns the JWKS's path."""
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = []
    for kid, k, alg in (("rsa1", rk, RSAAlgorithm),
                        ("ec1", ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
                        ("ec384", ec.generate_private_key(ec.SECP384R1()), ECAlgorithm),
                        ("ec521", ec.generate_private_key(ec.SECP521R1()), ECAlgorithm)):
        with open(os.path.join(d, kid + ".pem"), "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        jwk = json.loads(alg.to_jwk(k.public_key()))
        jwk.update({"kid": kid, "use": "sig"})
        keys.append(jwk)
    path = os.path.join(d, "jwks.json")
    with open(path, "w") as f:
        json.dump({"keys": keys}, f)
    return path


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _times(claims):
    now = int(time.time())
    out = dict(claims)
    for k in ("exp", "nbf", "iat"):
        v = out.get(k)
        if isinstance(v, str) and v[:1] in "+-":
            out[k] = now + int(v)
    return out


def sign(d, alg, kid, claims):
    claims = _times(claims)
    headers = {} if kid in (None, "-") else {"kid": kid}
    if "_typ" in claims:
        headers["typ"] = claims.pop("_typ")
    if alg in ("none", "HS256-pub"):
        head = {"alg": "none" if alg == "none" else "HS256", "typ": "JWT", **headers}
        signing = _b64(json.dumps(head).encode()) + "." + _b64(json.dumps(claims).encode())
        if alg == "none":
            return signing + "."
        with open(os.path.join(d, "rsa1.pem"), "rb") as f:
            priv = serialization.load_pem_private_key(f.read(), None)
        pub = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        mac = hmac.new(pub, signing.encode(), hashlib.sha256).digest()
        return signing + "." + _b64(mac)
    name = {"ES256": "ec1", "ES384": "ec384", "ES512": "ec521"}.get(alg, "rsa1")
    with open(os.path.join(d, name + ".pem"), "rb") as f:
        key = f.read()
    return jwt.encode(claims, key, algorithm=alg, headers=headers or None)


if __name__ == "__main__":
    if sys.argv[1] == "keys":
        print(make_keys(sys.argv[2]))
    else:
        print(sign(sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])))
