#!/usr/bin/env bash
# tests/core/run-fuzz-jwt.sh - builds the JWT and JWKS fuzzer (core/jwt.c) with clang's libFuzzer
# and runs it for FUZZ_SECONDS (default 20). Keys and seed tokens come from tests/e2e/jwt_tool.py
# (PyJWT): valid RS256 and ES256 tokens, forgeries (alg none, HS256 keyed with the public key),
# the JWKS itself, and claims the target signs with rsa1 (so that they reach the claim checks),
# with the kept corpus (tests/core/corpus/; its tokens were signed by keys of earlier runs, so
# they exercise the parsers, not a valid signature). Crashes are kept in a printed directory,
# never in the source tree.
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cc=${CC:-clang}
seconds=${FUZZ_SECONDS:-20}
. "$root/tests/fuzz-lib.sh"
fuzz_workdir fstore-fuzz-jwt

"$cc" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -fno-omit-frame-pointer -w -I "$root" "$root"/base/*.c "$root/core/jwt.c" \
  "$root/tests/core/fuzz_jwt.c" -ljansson -lcrypto -lxxhash -lz -lpthread -lm -ldl \
  -o "$work/fuzz_jwt"

tool="/usr/bin/python3 $root/tests/e2e/jwt_tool.py"
$tool keys "$work" >/dev/null
mkdir -p "$work/corpus"
seed() { # NAME ALG KID CLAIMS: a token, after the even byte that selects tokens
  { printf '\x00'; $tool sign "$work" "$2" "$3" "$4" | tr -d '\n'; } >"$work/corpus/$1"
}
good='"iss":"https://issuer.test","aud":"fstore","exp":2000000000,"iat":1800000000'
seed rs256 RS256 rsa1 "{$good,\"sub\":\"svc\"}"
seed rs512 RS512 rsa1 "{$good,\"sub\":\"svc\",\"aud\":[\"x\",\"fstore\"]}"
seed es256 ES256 ec1 "{$good,\"sub\":\"system:serviceaccount:ml:trainer\"}"
seed nokid RS256 - "{$good,\"sub\":\"svc\"}"
seed none none rsa1 "{$good,\"sub\":\"svc\"}"
seed hs256 HS256-pub rsa1 "{$good,\"sub\":\"svc\"}"
seed expired RS256 rsa1 '{"iss":"https://issuer.test","aud":"fstore","exp":1000,"sub":"svc"}'
{ printf '\x01'; cat "$work/jwks.json"; } >"$work/corpus/jwks"
# Claims the target signs itself (its first byte 2): valid ones, and near misses.
printf '\x02{%s,"sub":"svc"}' "$good" >"$work/corpus/claims"
printf '\x02{%s,"sub":"svc","nbf":1950000000}' "$good" >"$work/corpus/claims_nbf"
printf '\x02{"iss":"https://issuer.test","aud":["a","fstore"],"exp":1900000030.5,"sub":"s"}' \
  >"$work/corpus/claims_edge"

export FUZZ_JWKS="$work/jwks.json" FUZZ_JWT_KEY="$work/rsa1.pem"
if ! fuzz_run "$work" fuzz_jwt "$seconds" "$work/corpus" -max_len=8192; then
  keep=1
  exit 1
fi
