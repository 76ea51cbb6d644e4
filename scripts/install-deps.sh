#!/usr/bin/env bash
# Installs what ember's tests, examples and benchmarks need on Debian (12 or newer): compiler,
# CMake, Catch2, the FashionMNIST package, zlib (ember::io: gzip and PNG; the core ember::ember
# needs none of these libraries) and the examples' header-only CLI11 and nlohmann-json. Extra
# arguments are more packages. Runs apt-get only for what is missing; uses sudo when not root.
set -euo pipefail
pkgs=(g++ cmake make catch2 dataset-fashion-mnist zlib1g-dev libcli11-dev nlohmann-json3-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
