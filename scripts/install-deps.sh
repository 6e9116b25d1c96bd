#!/usr/bin/env bash
# scripts/install-deps.sh - every build, test and run dependency, from Debian bookworm's packages.
# Idempotent: a machine that already has everything only pays for the dpkg check.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev protobuf-compiler-grpc
  grpc-proto liblmdb-dev lmdb-utils libjansson-dev libyaml-dev libcriterion-dev
  libmicrohttpd-dev nats-server libnats-dev prometheus zlib1g-dev libssl-dev
  python3-grpcio python3-protobuf python3-yaml python3-h2 curl openssl redis-server redis-tools procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian redis-server package starts a system instance; fstore's benchmark runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl stop redis-server || true
fi
echo "install-deps: done"
