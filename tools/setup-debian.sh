#!/bin/sh
# Installs everything husk needs to build and test on Debian 12 (run as root,
# or with sudo available). clang and libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes, which clang-14 does not pull in) build the fuzz targets
# and check the thread-safety annotations; llvm brings llvm-symbolizer for
# readable sanitizer stacks; clang-tidy runs the checks in .clang-tidy
# (tools/tidy.sh, which takes the files to check from git); busybox-static
# makes the small root of the --rootfs and --volume tests.
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config \
  libseccomp-dev libprotobuf-dev protobuf-compiler libabsl-dev \
  libgtest-dev libgmock-dev manpages-dev python3 xz-utils zstd \
  clang libclang-rt-14-dev llvm clang-tidy git busybox-static sqlite3 \
  nlohmann-json3-dev >/dev/null
