#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the demo need.
# Idempotent: safe to run on a fresh Debian 12 machine or again on a prepared one.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git
  libpcap-dev libcap-dev prometheus-cpp-dev libcivetweb-dev libcpp-httplib-dev libssl-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev libspdlog-dev
  mosquitto mosquitto-clients prometheus tshark tcpdump tcpreplay openssl haproxy
  iproute2 iptables libcap2-bin procps psmisc python3 curl jq
  clang libclang-rt-14-dev
  python3-yaml systemd
  chromium
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer once, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian packages start their own daemons; tests start private instances instead.
for svc in mosquitto prometheus haproxy; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
# The fault lab's second broker (aedes, tests/e2e/aedes) runs on Node.js; its npm
# dependencies are pinned by package-lock.json and installed once.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
aedes_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/e2e/aedes"
# Again whenever package-lock.json changed since the last install (the stamp is a copy of it).
if ! cmp -s "$aedes_dir/package-lock.json" "$aedes_dir/node_modules/.mqttlive-installed-lock"; then
  (cd "$aedes_dir" && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.mqttlive-installed-lock)
fi
