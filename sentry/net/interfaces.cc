// The interface ioctls (netdevice(7)) on any socket, answered from the
// sandbox's one interface, loopback: what glibc's if_nametoindex and
// if_indextoname, and older programs that list interfaces, ask.
#include <errno.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "sentry/net/socket.h"

namespace husk::net {

Result<long> InterfaceIoctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) {
  if (cmd == SIOCGIFCONF) {
    // struct ifconf: one entry, lo with 127.0.0.1; a null buffer asks the size.
    ifconf conf{};
    TRY(mm.CopyIn(arg, &conf, sizeof(conf)));
    if (conf.ifc_buf == nullptr) {
      conf.ifc_len = sizeof(ifreq);
    } else {
      int len = 0;
      if (conf.ifc_len >= static_cast<int>(sizeof(ifreq))) {
        ifreq r{};
        strcpy(r.ifr_name, "lo");
        auto* sin = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        TRY(mm.CopyOut(reinterpret_cast<uintptr_t>(conf.ifc_buf), &r, sizeof(r)));
        len = sizeof(ifreq);
      }
      conf.ifc_len = len;
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
    case SIOCGIFHWADDR:
    case SIOCGIFTXQLEN:
      break;
    default:
      return Errno{ENOTTY};
  }
  ifreq r{};
  TRY(mm.CopyIn(arg, &r, sizeof(r)));
  if (cmd == SIOCGIFNAME) {
    if (r.ifr_ifindex != 1) return Errno{ENODEV};
    strcpy(r.ifr_name, "lo");
  } else {
    r.ifr_name[IFNAMSIZ - 1] = '\0';
    if (strcmp(r.ifr_name, "lo") != 0) return Errno{ENODEV};
    switch (cmd) {
      case SIOCGIFINDEX:
        r.ifr_ifindex = 1;
        break;
      case SIOCGIFFLAGS:
        r.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
        break;
      case SIOCGIFMTU:
        r.ifr_mtu = 65536;
        break;
      case SIOCGIFTXQLEN:
        r.ifr_qlen = 1000;
        break;
      case SIOCGIFHWADDR:
        memset(&r.ifr_hwaddr, 0, sizeof(r.ifr_hwaddr));
        r.ifr_hwaddr.sa_family = ARPHRD_LOOPBACK;
        break;
      case SIOCGIFADDR:
      case SIOCGIFNETMASK: {
        auto* sin = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
        memset(sin, 0, sizeof(*sin));
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(cmd == SIOCGIFADDR ? INADDR_LOOPBACK : 0xff000000u);
        break;
      }
    }
  }
  TRY(mm.CopyOut(arg, &r, sizeof(r)));
  return 0L;
}

}  // namespace husk::net
