#!/bin/sh
# Installs everything husk needs to build and test on Debian 12 (run as root,
# or with sudo available).
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config \
  libseccomp-dev libprotobuf-dev protobuf-compiler libabsl-dev \
  libgtest-dev libgmock-dev manpages-dev >/dev/null
