// @file tests/support/catch.hpp
// @brief Includes Catch2 v3 where it is installed, else Catch2 v2 (Debian 12 ships 2.13).
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define EMBER_CATCH_V3 1
#else
#include <catch2/catch.hpp>
#define EMBER_CATCH_V3 0
#endif
