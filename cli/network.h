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

#include "sentry/net/netdev.h"

namespace husk::cli {

struct TakenNetwork {
  std::vector<net::NicSpec> nics;  // fds: the packet sockets (ours to close)
  std::vector<net::RouteSpec> routes;
  // What came off the interfaces, to put back (husk do does at its end).
  struct Removed {
    int ifindex;
    uint32_t addr;  // network byte order
    int prefix;
  };
  std::vector<Removed> removed;
};

// Refuses (false, with a line on stderr prefixed by who) in the host's
// own network namespace (the one of pid 1), or where nothing is up.
bool TakeNetwork(const char* who, TakenNetwork* out);
// Puts the addresses back and closes the packet sockets.
void RestoreNetwork(TakenNetwork* taken);

}  // namespace husk::cli

#endif  // HUSK_CLI_NETWORK_H_
