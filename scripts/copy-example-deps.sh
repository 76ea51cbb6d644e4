#!/usr/bin/env bash
# Copies the headers of the examples' two header-only dependencies, CLI11 (/usr/include/CLI) and
# nlohmann-json (/usr/include/nlohmann), into deps/include (git-ignored), for a machine that
# lacks the Debian packages and has no network, e.g. the GPU host: carry deps/ there with the
# working tree, and CMake (cmake/ember_example_deps.cmake) uses the copy when find_package finds
# no CLI11 / nlohmann_json. Installs the two packages here first when they are missing.
# Usage: scripts/copy-example-deps.sh [DEST (default deps/include)]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-deps/include}
bash scripts/install-deps.sh
for dir in /usr/include/CLI /usr/include/nlohmann; do
  [ -d "$dir" ] || { echo "copy-example-deps.sh: $dir is missing" >&2; exit 1; }
done
rm -rf "$dest/CLI" "$dest/nlohmann"
mkdir -p "$dest"
cp -r /usr/include/CLI /usr/include/nlohmann "$dest/"
echo "copied CLI11 $(dpkg-query -W -f='${Version}' libcli11-dev) and nlohmann-json" \
  "$(dpkg-query -W -f='${Version}' nlohmann-json3-dev) headers to $dest ($(du -sh "$dest" | cut -f1))"
