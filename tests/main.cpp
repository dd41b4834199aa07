// SPDX-License-Identifier: MIT
// The Catch2 runner for every test executable.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
