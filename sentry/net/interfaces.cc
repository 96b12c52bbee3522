// The interface ioctls (netdevice(7)) on any socket, answered from the
// sandbox's interfaces (loopback, and with --network=sandbox the stack's):
// what glibc's if_nametoindex and if_indextoname, and older programs that
// list interfaces, ask.
#include <errno.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "sentry/net/netdev.h"
#include "sentry/net/socket.h"

namespace husk::net {
namespace {

// The interface's first IPv4 address and its prefix length.
bool FirstV4(const InterfaceInfo& i, uint32_t* addr, int* prefix) {
  for (const auto& [ip, p] : i.addrs) {
    if (netstack::IsV4(ip)) {
      *addr = netstack::V4Of(ip);
      *prefix = p;
      return true;
    }
  }
  return false;
}

}  // namespace

Result<long> InterfaceIoctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) {
  const std::vector<InterfaceInfo> ifs = Interfaces();
  if (cmd == SIOCGIFCONF) {
    // struct ifconf: an entry per interface with an IPv4 address, as many
    // as fit; a null buffer asks the size.
    ifconf conf{};
    TRY(mm.CopyIn(arg, &conf, sizeof(conf)));
    std::vector<ifreq> entries;
    for (const InterfaceInfo& i : ifs) {
      uint32_t addr;
      int prefix;
      if (!FirstV4(i, &addr, &prefix)) continue;
      ifreq r{};
      strncpy(r.ifr_name, i.name.c_str(), IFNAMSIZ - 1);
      auto* sin = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl(addr);
      entries.push_back(r);
    }
    if (conf.ifc_buf == nullptr) {
      conf.ifc_len = static_cast<int>(entries.size() * sizeof(ifreq));
    } else {
      size_t fit = conf.ifc_len < 0 ? 0 : static_cast<size_t>(conf.ifc_len) / sizeof(ifreq);
      fit = std::min(fit, entries.size());
      if (fit > 0) {
        TRY(mm.CopyOut(reinterpret_cast<uintptr_t>(conf.ifc_buf), entries.data(),
                       fit * sizeof(ifreq)));
      }
      conf.ifc_len = static_cast<int>(fit * sizeof(ifreq));
    }
    TRY(mm.CopyOut(arg, &conf, sizeof(conf)));
    return 0L;
  }
  switch (cmd) {
    case SIOCGIFINDEX:
    case SIOCGIFNAME:
    case SIOCGIFFLAGS:
    case SIOCGIFMTU:
    case SIOCGIFADDR:
    case SIOCGIFNETMASK:
    case SIOCGIFBRDADDR:
    case SIOCGIFHWADDR:
    case SIOCGIFTXQLEN:
      break;
    default:
      return Errno{ENOTTY};
  }
  ifreq r{};
  TRY(mm.CopyIn(arg, &r, sizeof(r)));
  const InterfaceInfo* found = nullptr;
  if (cmd == SIOCGIFNAME) {
    for (const InterfaceInfo& i : ifs) {
      if (i.index == r.ifr_ifindex) found = &i;
    }
    if (found == nullptr) return Errno{ENODEV};
    memset(r.ifr_name, 0, sizeof(r.ifr_name));
    strncpy(r.ifr_name, found->name.c_str(), IFNAMSIZ - 1);
    TRY(mm.CopyOut(arg, &r, sizeof(r)));
    return 0L;
  }
  r.ifr_name[IFNAMSIZ - 1] = '\0';
  for (const InterfaceInfo& i : ifs) {
    if (i.name == r.ifr_name) found = &i;
  }
  if (found == nullptr) return Errno{ENODEV};
  const InterfaceInfo& i = *found;
  switch (cmd) {
    case SIOCGIFINDEX:
      r.ifr_ifindex = i.index;
      break;
    case SIOCGIFFLAGS:
      r.ifr_flags = static_cast<short>(IFF_UP | IFF_RUNNING |
                                       (i.loopback ? IFF_LOOPBACK : IFF_BROADCAST | IFF_MULTICAST));
      break;
    case SIOCGIFMTU:
      r.ifr_mtu = static_cast<int>(i.mtu);
      break;
    case SIOCGIFTXQLEN:
      r.ifr_qlen = 1000;
      break;
    case SIOCGIFHWADDR:
      memset(&r.ifr_hwaddr, 0, sizeof(r.ifr_hwaddr));
      r.ifr_hwaddr.sa_family = i.loopback ? ARPHRD_LOOPBACK : ARPHRD_ETHER;
      memcpy(r.ifr_hwaddr.sa_data, i.mac.data(), i.mac.size());
      break;
    default: {  // SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFBRDADDR
      uint32_t addr;
      int prefix;
      if (!FirstV4(i, &addr, &prefix)) return Errno{EADDRNOTAVAIL};
      const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
      uint32_t v = addr;
      if (cmd == SIOCGIFNETMASK) v = mask;
      if (cmd == SIOCGIFBRDADDR) v = i.loopback ? 0 : addr | ~mask;
      auto* sin = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
      memset(sin, 0, sizeof(*sin));
      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl(v);
      break;
    }
  }
  TRY(mm.CopyOut(arg, &r, sizeof(r)));
  return 0L;
}

}  // namespace husk::net
