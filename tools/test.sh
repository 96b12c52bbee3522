#!/bin/sh
# Builds husk and runs every test: unit tests, the fence self-test, and the
# syscall conformance suite natively and inside `husk do`; then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer; then, with
# clang, the fuzz targets for a short while and the thread-safety analysis;
# last, clang-tidy over all of husk's code (tools/tidy.sh).
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHUSK_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs" --target unit_tests husk_fence
# LeakSanitizer is on too: a leak fails the run like any other finding.
ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"
# The clang build (build-fuzz): the libFuzzer targets under ASan+UBSan for
# 20 seconds each, and -Wthread-safety over every sentry library (`husk`).
FUZZ_BUILD_HUSK=1 tools/fuzz.sh 20
# clang-tidy with build's compile commands, and build-fuzz's for the fuzz
# targets, which only that build compiles.
TIDY_JOBS=$jobs tools/tidy.sh
