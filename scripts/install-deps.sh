#!/usr/bin/env bash
# Installs what ember needs on Debian (12 or newer): compiler, CMake, Catch2, the FashionMNIST
# package. Runs apt-get only for what is missing; uses sudo when not root. ember does not need
# zlib; when zlib1g-dev happens to be installed, the tests use it as an extra cross-check of
# ember's own gzip/zlib codec (pass it as an argument to install it).
set -euo pipefail
pkgs=(g++ cmake make catch2 dataset-fashion-mnist "$@")
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
