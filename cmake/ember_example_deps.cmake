# The examples' and benchmarks' own dependencies (never ember's): two header-only Debian
# packages, CLI11 (libcli11-dev: command lines) and nlohmann-json (nlohmann-json3-dev: JSON).
# Found through their CMake packages; where they are not installed (e.g. a GPU host without
# network), through a copy of their headers in EMBER_EXAMPLE_DEPS_DIR (default: deps/include in
# the source tree, git-ignored), which scripts/copy-example-deps.sh makes on a machine that has
# the packages. Defines CLI11::CLI11 and nlohmann_json::nlohmann_json, or stops with what to do.
set(EMBER_EXAMPLE_DEPS_DIR "${PROJECT_SOURCE_DIR}/deps/include" CACHE PATH
    "Copied CLI11 (CLI/) and nlohmann-json (nlohmann/) headers, used when their packages are missing")

if(NOT TARGET CLI11::CLI11)
  find_package(CLI11 CONFIG QUIET)
  if(TARGET CLI11::CLI11)
    message(STATUS "ember: examples use CLI11 ${CLI11_VERSION} (${CLI11_DIR})")
  elseif(EXISTS "${EMBER_EXAMPLE_DEPS_DIR}/CLI/CLI.hpp")
    add_library(CLI11::CLI11 INTERFACE IMPORTED GLOBAL)
    set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${EMBER_EXAMPLE_DEPS_DIR}")
    message(STATUS "ember: examples use CLI11 from ${EMBER_EXAMPLE_DEPS_DIR} (copied headers)")
  endif()
endif()
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json CONFIG QUIET)
  if(TARGET nlohmann_json::nlohmann_json)
    message(STATUS "ember: examples use nlohmann-json ${nlohmann_json_VERSION} (${nlohmann_json_DIR})")
  elseif(EXISTS "${EMBER_EXAMPLE_DEPS_DIR}/nlohmann/json.hpp")
    add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED GLOBAL)
    set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${EMBER_EXAMPLE_DEPS_DIR}")
    message(STATUS "ember: examples use nlohmann-json from ${EMBER_EXAMPLE_DEPS_DIR} (copied headers)")
  endif()
endif()
if(NOT TARGET CLI11::CLI11 OR NOT TARGET nlohmann_json::nlohmann_json)
  message(FATAL_ERROR
    "ember's examples and benchmarks need CLI11 and nlohmann-json (header-only): "
    "apt-get install libcli11-dev nlohmann-json3-dev (scripts/install-deps.sh installs them), or "
    "bring a copy of their headers made by scripts/copy-example-deps.sh (deps/include, or "
    "-DEMBER_EXAMPLE_DEPS_DIR=DIR), or configure with -DEMBER_BUILD_EXAMPLES=OFF "
    "-DEMBER_BUILD_BENCHMARKS=OFF")
endif()
