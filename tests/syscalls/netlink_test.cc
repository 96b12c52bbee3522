// Conformance: netlink route sockets as programs use them to learn the network, in a network
// namespace whose one interface is loopback (husk_fence's, or husk's sandbox): socket and
// autobind, RTM_GETLINK and RTM_GETADDR dumps, MSG_PEEK|MSG_TRUNC sizing, and glibc's
// getifaddrs and if_nametoindex built on them.
// Relies on, beyond the start-up set in test_util.h: socket(AF_NETLINK), bind, getsockname,
// sendto, recvfrom, getifaddrs' calls.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

Fd Route() { return Fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)); }

// Sends a dump request of `type` for `family` and collects the messages until NLMSG_DONE.
std::vector<std::string> Dump(int fd, uint16_t type, uint8_t family) {
  struct {
    nlmsghdr h;
    ifaddrmsg body;  // as big as rtgenmsg and ifinfomsg's first fields
  } req{};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 7;
  req.body.ifa_family = family;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::vector<std::string> out;
  if (sendto(fd, &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) !=
      static_cast<ssize_t>(sizeof(req))) {
    ADD_FAILURE() << "sendto: " << ErrnoName(errno);
    return out;
  }
  char buf[32768];
  for (int datagrams = 0; datagrams < 64; datagrams++) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      ADD_FAILURE() << "recv: " << ErrnoName(errno);
      return out;
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      EXPECT_EQ(h->nlmsg_seq, 7u);
      if (h->nlmsg_type == NLMSG_DONE) return out;
      if (h->nlmsg_type == NLMSG_ERROR) {
        ADD_FAILURE() << "NLMSG_ERROR " << -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        return out;
      }
      EXPECT_TRUE(h->nlmsg_flags & NLM_F_MULTI);
      out.emplace_back(reinterpret_cast<char*>(h), h->nlmsg_len);
    }
  }
  ADD_FAILURE() << "no NLMSG_DONE";
  return out;
}

// The attribute `type` of a message whose fixed part is `fixed` bytes.
std::string Attr(const std::string& msg, size_t fixed, uint16_t type) {
  const auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(fixed));
  const auto* a = reinterpret_cast<const rtattr*>(msg.data() + NLMSG_LENGTH(fixed) +
                                                  (NLMSG_ALIGN(fixed) - fixed));
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == type) {
      return std::string(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a));
    }
  }
  return "";
}

TEST(NetlinkTest, AnAutoboundSocketTakesItsProcessId) {
  EXPECT_EQ(InChild([] {
              Fd fd = Route();
              if (!fd.valid()) return 1;
              sockaddr_nl a{};
              a.nl_family = AF_NETLINK;
              if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 2;
              socklen_t len = sizeof(a);
              if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return 3;
              if (len != sizeof(a) || a.nl_family != AF_NETLINK) return 4;
              return a.nl_pid == static_cast<uint32_t>(getpid()) ? 0 : 5;
            }),
            0);
}

TEST(NetlinkTest, TheLinkDumpListsLoopback) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  std::vector<std::string> links = Dump(fd.get(), RTM_GETLINK, AF_UNSPEC);
  ASSERT_EQ(links.size(), 1u);
  const auto* h = reinterpret_cast<const nlmsghdr*>(links[0].data());
  EXPECT_EQ(h->nlmsg_type, RTM_NEWLINK);
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  EXPECT_EQ(ifi->ifi_index, 1);
  EXPECT_TRUE(ifi->ifi_flags & IFF_LOOPBACK);
  EXPECT_TRUE(ifi->ifi_flags & IFF_UP);
  EXPECT_EQ(Attr(links[0], sizeof(ifinfomsg), IFLA_IFNAME), std::string("lo\0", 3));
  const std::string mtu = Attr(links[0], sizeof(ifinfomsg), IFLA_MTU);
  ASSERT_EQ(mtu.size(), 4u);
  uint32_t m;
  memcpy(&m, mtu.data(), 4);
  EXPECT_EQ(m, 65536u);
}

TEST(NetlinkTest, TheAddressDumpsGiveLoopbacksAddresses) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  std::vector<std::string> v4 = Dump(fd.get(), RTM_GETADDR, AF_INET);
  ASSERT_EQ(v4.size(), 1u);
  const auto* a4 =
      static_cast<const ifaddrmsg*>(NLMSG_DATA(reinterpret_cast<const nlmsghdr*>(v4[0].data())));
  EXPECT_EQ(a4->ifa_family, AF_INET);
  EXPECT_EQ(a4->ifa_prefixlen, 8);
  EXPECT_EQ(a4->ifa_index, 1u);
  EXPECT_EQ(a4->ifa_scope, RT_SCOPE_HOST);
  const in_addr lo = {htonl(INADDR_LOOPBACK)};
  EXPECT_EQ(Attr(v4[0], sizeof(ifaddrmsg), IFA_ADDRESS),
            std::string(reinterpret_cast<const char*>(&lo), sizeof(lo)));
  EXPECT_EQ(Attr(v4[0], sizeof(ifaddrmsg), IFA_LABEL), std::string("lo\0", 3));

  std::vector<std::string> v6 = Dump(fd.get(), RTM_GETADDR, AF_INET6);
  ASSERT_EQ(v6.size(), 1u);
  const auto* a6 =
      static_cast<const ifaddrmsg*>(NLMSG_DATA(reinterpret_cast<const nlmsghdr*>(v6[0].data())));
  EXPECT_EQ(a6->ifa_family, AF_INET6);
  EXPECT_EQ(a6->ifa_prefixlen, 128);
  EXPECT_EQ(Attr(v6[0], sizeof(ifaddrmsg), IFA_ADDRESS),
            std::string(reinterpret_cast<const char*>(&in6addr_loopback), 16));

  // AF_UNSPEC: both.
  EXPECT_EQ(Dump(fd.get(), RTM_GETADDR, AF_UNSPEC).size(), 2u);
}

// Peeking with MSG_TRUNC gives the next datagram's whole size (how iproute2 sizes its buffer).
TEST(NetlinkTest, PeekWithTruncGivesTheDatagramsSize) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  struct {
    nlmsghdr h;
    ifinfomsg body;
  } req{};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  ASSERT_OK(send(fd.get(), &req, sizeof(req), 0));
  char tiny[4];
  ssize_t size = recv(fd.get(), tiny, sizeof(tiny), MSG_PEEK | MSG_TRUNC);
  ASSERT_GT(size, static_cast<ssize_t>(sizeof(nlmsghdr)));
  std::vector<char> buf(static_cast<size_t>(size));
  EXPECT_EQ(recv(fd.get(), buf.data(), buf.size(), 0), size);
}

TEST(NetlinkTest, GetifaddrsListsLoopbackInBothFamilies) {
  ifaddrs* list = nullptr;
  ASSERT_OK(getifaddrs(&list));
  std::set<std::string> seen;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    ASSERT_NE(i->ifa_name, nullptr);
    EXPECT_STREQ(i->ifa_name, "lo");
    EXPECT_TRUE(i->ifa_flags & IFF_LOOPBACK);
    if (i->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text,
                sizeof(text));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, text,
                sizeof(text));
    } else {
      continue;
    }
    seen.insert(text);
  }
  freeifaddrs(list);
  EXPECT_EQ(seen, (std::set<std::string>{"127.0.0.1", "::1"}));
}

TEST(NetlinkTest, InterfaceNamesAndIndexesMatch) {
  EXPECT_EQ(if_nametoindex("lo"), 1u);
  char name[IF_NAMESIZE] = {};
  ASSERT_NE(if_indextoname(1, name), nullptr);
  EXPECT_STREQ(name, "lo");
  EXPECT_EQ(if_nametoindex("eth0"), 0u);
}

}  // namespace
}  // namespace husk_test
