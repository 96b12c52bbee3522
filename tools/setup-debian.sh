#!/bin/sh
# Installs everything husk needs to build and test on Debian 12 (run as root,
# or with sudo available). clang and libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes, which clang-14 does not pull in) build the fuzz targets
# and check the thread-safety annotations; llvm brings llvm-symbolizer for
# readable sanitizer stacks; clang-tidy runs the checks in .clang-tidy
# (tools/tidy.sh, which takes the files to check from git); busybox-static
# makes the small root of the --rootfs and --volume tests; nlohmann-json3-dev
# parses OCI bundles.
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config \
  libseccomp-dev libprotobuf-dev protobuf-compiler libabsl-dev \
  libgtest-dev libgmock-dev manpages-dev python3 xz-utils zstd \
  clang libclang-rt-14-dev llvm clang-tidy git busybox-static sqlite3 tmux socat \
  iproute2 iputils-ping iperf3 curl \
  nlohmann-json3-dev >/dev/null
# The container engines of the OCI runtime's integration tests (tests/integration): containerd,
# Docker (docker.io) and runc (the comparison runtime); and the servers the socket tests run
# inside the sandbox (tests/net): redis and nginx. Their packages would start the system's
# daemons; a policy-rc.d that refuses keeps them stopped (the tests start their own, with their
# own configuration), and is removed afterwards unless it was there before.
if ! command -v containerd >/dev/null || ! command -v runc >/dev/null ||
  ! [ -x /usr/sbin/dockerd ] || ! [ -x /usr/bin/docker ] ||
  ! command -v redis-server >/dev/null || ! [ -x /usr/sbin/nginx ]; then
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends containerd runc docker.io \
    redis-server redis-tools nginx-light >/dev/null
  if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
