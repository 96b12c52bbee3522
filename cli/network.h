// `--network=sandbox`, the host's side: husk takes the interfaces of the
// network namespace it runs in away from the host's kernel and gives them
// to the sandbox's stack. For each interface that is up (loopback aside):
// a packet socket bound to it, its MAC address, MTU and IPv4 addresses;
// the IPv4 routes; then the addresses come off the interface, so that the
// host's kernel no longer answers for them (ARP, ICMP, TCP resets): the
// sandbox does.
#ifndef HUSK_CLI_NETWORK_H_
#define HUSK_CLI_NETWORK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sentry/net/netdev.h"

namespace husk::cli {

struct TakenNetwork {
  std::vector<net::NicSpec> nics;  // fds: the packet sockets (ours to close)
  std::vector<net::RouteSpec> routes;
  // What came off the interfaces, to put back (husk do does at its end).
  struct Removed {
    int ifindex;
    netstack::Ip addr;
    int prefix;
  };
  std::vector<Removed> removed;
};

// Refuses (false, and why) in the host's own network namespace (the one
// of pid 1); where no interface is up with an address, refuses if
// `required`, else takes nothing.
bool TakeNetwork(TakenNetwork* out, bool required, std::string* why);
// --network=host: the interfaces and routes as they are (fd -1 each, the
// host's index in ifindex), for the sandbox to see; nothing is taken.
bool DescribeNetwork(TakenNetwork* out, std::string* why);
// Whether the network namespace at path is the one husk runs in (what
// Docker's --network=host names: the host's).
bool IsOurNetns(const std::string& path);
// Puts the addresses back and closes the packet sockets.
void RestoreNetwork(TakenNetwork* taken);

// For an OCI container: takes the interfaces of the network namespace at
// `netns` (a path; the engine's hooks have set it up) and hands them to
// the sentry over its start channel (TakeNetworkMessage,
// sentry/boot/control.h), waiting for its answer. A namespace with loopback alone is left as is.
absl::Status HandNetworkToSandbox(const std::string& netns, int start);

}  // namespace husk::cli

#endif  // HUSK_CLI_NETWORK_H_
