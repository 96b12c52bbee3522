// The sandbox's own TCP/IP stack: the packets its programs send and receive
// over the interfaces husk gives it (--network=sandbox) are made and taken
// apart here, in the sentry, never by the host's TCP/IP code.
//
// A Stack has network interfaces (each a Link that carries Ethernet frames),
// their addresses and the routes; it answers ARP and ICMP echo, carries UDP
// datagrams to and from the socket layer (Upcalls), and runs TCP
// connections (tcp.h).
//
// The Stack is a plain data structure: it takes no lock and starts no
// thread. Its owner calls it under one lock of its own (the sentry: the
// local socket lock, sentry/net/netdev.cc), feeds it frames (Input) and
// time (Tick, with the moment of its next deadline), and implements Link
// and Upcalls. Times are nanoseconds on a monotonic clock the owner picks.
#ifndef HUSK_SENTRY_NET_STACK_STACK_H_
#define HUSK_SENTRY_NET_STACK_STACK_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "sentry/net/stack/wire.h"

namespace husk::netstack {

class TcpEndpoint;
class TcpListener;
struct TcpSettings;

// A frame that is many TCP segments in one (generic segmentation offload,
// as virtio_net_hdr describes it): the link, or the host's kernel behind
// it, cuts it into segments of `size` bytes of payload and makes each
// one's checksum, which starts at csum_start (the TCP header) and is kept
// at csum_start + csum_offset; hdr_len covers the headers.
struct GsoInfo {
  uint16_t size = 0;  // 0: an ordinary frame, checksums made
  uint16_t hdr_len = 0, csum_start = 0, csum_offset = 0;
  bool v6 = false;  // TCP over IPv6
};

// Carries frames out of one interface.
class Link {
 public:
  virtual ~Link() = default;
  virtual void Transmit(Bytes frame, const GsoInfo& gso) = 0;
};

struct Nic {
  int index = 0;  // as the sandbox numbers them (loopback is 1)
  std::string name;
  Mac mac{};
  uint32_t mtu = 1500;
  std::vector<std::pair<Ip, int>> addrs;  // address, prefix length
  // The IPv6 groups sockets joined on the interface, with how many
  // memberships each has (JoinGroup).
  std::map<Ip, int> groups;
  // When a query was last answered (IGMP, MLD): at most one answer per
  // kQueryAnswerGap, so that a flood of queries is no flood of reports.
  int64_t igmp_answered = INT64_MIN / 2, mld_answered = INT64_MIN / 2;
  Link* link = nullptr;
  bool gso = false;  // the link takes GSO frames
  uint64_t rx_packets = 0, rx_bytes = 0, rx_dropped = 0, tx_packets = 0, tx_bytes = 0,
           tx_dropped = 0;
};

struct Route {
  Ip dst{};
  int prefix = 0;
  Ip gateway{};
  bool has_gateway = false;
  int nic = 0;
};

// What /proc/net/snmp counts (RFC 1213's names).
struct Counters {
  uint64_t ip_in_receives = 0, ip_in_hdr_errors = 0, ip_in_addr_errors = 0,
           ip_in_unknown_protos = 0, ip_in_discards = 0, ip_in_delivers = 0, ip_out_requests = 0,
           ip_out_no_routes = 0, ip_reasm_timeout = 0, ip_reasm_reqds = 0, ip_reasm_oks = 0,
           ip_reasm_fails = 0, ip_frag_oks = 0, ip_frag_creates = 0;
  uint64_t icmp_in_msgs = 0, icmp_in_errors = 0, icmp_in_dest_unreachs = 0, icmp_in_echos = 0,
           icmp_in_echo_reps = 0, icmp_out_msgs = 0, icmp_out_dest_unreachs = 0,
           icmp_out_echo_reps = 0;
  uint64_t tcp_active_opens = 0, tcp_passive_opens = 0, tcp_attempt_fails = 0, tcp_estab_resets = 0,
           tcp_in_segs = 0, tcp_out_segs = 0, tcp_retrans_segs = 0, tcp_in_errs = 0,
           tcp_out_rsts = 0;
  // /proc/net/netstat's TcpExt: segments past a hole queued, and ones
  // dropped for want of room (out of order, in order, at a zero window).
  uint64_t tcp_ofo_queue = 0, tcp_ofo_drop = 0, tcp_rcvq_drop = 0, tcp_zero_window_drop = 0;
  uint64_t udp_in_datagrams = 0, udp_no_ports = 0, udp_in_errors = 0, udp_out_datagrams = 0;
};

// One UDP datagram between the stack and the socket layer.
struct UdpDatagram {
  Ip src{}, dst{};
  uint16_t sport = 0, dport = 0;
  Bytes payload;
  uint8_t tos = 0, ttl = 64;
  // The interface: the one an IPv6 datagram arrived on; for one sent to
  // an IPv6 group, the one it leaves by (0: the first).
  int nic = 0;
};

// What the stack asks of the socket layer.
class Upcalls {
 public:
  virtual ~Upcalls() = default;
  // The listening socket that takes connections to dst:port, or null.
  virtual std::shared_ptr<TcpListener> FindListener(const Ip& dst, uint16_t port) = 0;
  // Gives a datagram to the socket bound to its destination; false if no
  // socket takes it (the stack then answers port unreachable).
  virtual bool DeliverUdp(const UdpDatagram& d) = 0;
  // An ICMP error (as an errno) about a datagram sent from src:sport to
  // dst:dport.
  virtual void UdpError(const Ip& src, uint16_t sport, const Ip& dst, uint16_t dport, int err) = 0;
  // An ICMP echo reply from `from` to `to` with identifier id (the whole
  // ICMP message), for a ping socket.
  virtual void DeliverEchoReply(const Ip& from, const Ip& to, uint16_t id, Bytes icmp,
                                uint8_t ttl) {}
};

class Stack {
 public:
  // seed: initial sequence numbers and IP ids start from it.
  Stack(Upcalls* up, uint64_t seed);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Adds an interface (its index is its position + 2: 1 is loopback's).
  int AddNic(const std::string& name, const Mac& mac, uint32_t mtu, Link* link, bool gso = false);
  void AddAddress(int nic, const Ip& addr, int prefix);
  // The most received data all connections together may hold unread
  // (256 MiB unless set).
  void SetReceiveLimit(size_t bytes) { rx_limit_ = bytes; }
  size_t ReceiveHeld() const { return rx_buffered_; }
  // What fragments waiting for the rest of their datagrams hold (bytes as
  // charged, datagrams), for tests.
  size_t ReassemblyHeld() const { return reasm_bytes_; }
  size_t ReassemblyCount() const { return reasm_.size(); }
  // Whether the interface's link takes GSO frames.
  void SetGso(int nic, bool on);
  // Routes are kept longest prefix first.
  void AddRoute(const Route& r);

  // A frame that arrived on nic. checksum_ok: the link vouches for the
  // transport checksum (the host's driver checked it, or it was made by a
  // local sender that leaves it to offload).
  void Input(int nic, Bytes frame, bool checksum_ok, int64_t now);
  // Runs what is due at `now`; returns the next deadline (INT64_MAX: none).
  int64_t Tick(int64_t now);
  // Frames input between the two are a batch: a connection's in-order
  // data is ACKed once, at its end.
  void BeginBatch() { batching_ = true; }
  void EndBatch(int64_t now);
  // A thread runs the stack (feeding it frames in batches): window updates
  // a read earns are sent from it, at its next batch's end, and `kick`
  // wakes it for them. The reader's thread then does not carry the peer's
  // answer (over a veth, the host's TCP sending more into our interface).
  void SetOutputThread(void (*kick)()) { output_kick_ = kick; }
  // How often Tick walked every connection for its timers (for tests).
  uint64_t timer_walks() const { return timer_walks_; }

  // The address packets to dst leave from (ENETUNREACH: no route).
  int SourceFor(const Ip& dst, Ip* src) const;
  // The address packets to dst leave from when they leave by interface
  // `nic`, as for a group (ENETUNREACH: no such interface; EADDRNOTAVAIL:
  // it has no address of dst's family).
  int SourceOn(int nic, const Ip& dst, Ip* src) const;

  // Multicast groups joined on an interface, counted (one call for each
  // socket's membership). IPv6: frames to a joined group are taken, and its
  // UDP datagrams reach the socket layer (DeliverUdp), which picks the
  // members; IPv4 groups' datagrams reach it whatever was joined. The first
  // membership of a group and the end of the last are reported (MLDv2, RFC
  // 3810; IGMPv3, RFC 3376: a switch that snoops them forwards a group's
  // traffic only to ports that reported it), and queries are answered.
  void JoinGroup(int nic, const Ip& group);
  void LeaveGroup(int nic, const Ip& group);
  // Whether interface `nic` takes what is sent to `group`: a group joined
  // there, all-nodes (ff02::1), or the solicited-node group of one of its
  // addresses.
  bool InGroup(int nic, const Ip& group) const;
  // An address of one of the interfaces.
  bool IsLocal(const Ip& ip) const;
  // 255.255.255.255, or the broadcast address of an interface's subnet.
  bool IsBroadcast(const Ip& ip) const;
  // The largest TCP payload an interface's MTU leaves for dst.
  uint16_t MssFor(const Ip& dst) const;

  // Sends a UDP datagram; 0 or an errno (ENETUNREACH, EMSGSIZE). One to
  // an IPv6 group leaves by d.nic (the first interface if 0) to the
  // group's Ethernet address, with d.ttl as its hop limit.
  int SendUdp(const UdpDatagram& d, int64_t now);
  // Sends an ICMP message, or an ICMPv6 one between IPv6 addresses
  // (checksum made); 0 or an errno.
  int SendIcmp(const Ip& src, const Ip& dst, Bytes icmp, uint8_t ttl, int64_t now);
  // Starts a connection (its SYN leaves at once).
  std::shared_ptr<TcpEndpoint> Connect(const Ip& src, uint16_t sport, const Ip& dst, uint16_t dport,
                                       const TcpSettings& s, int64_t now);
  // Every connection the stack keeps, for /proc/net/tcp.
  std::vector<std::shared_ptr<TcpEndpoint>> Connections() const;

  const std::vector<Nic>& nics() const { return nics_; }
  const std::vector<Route>& routes() const { return routes_; }
  const Counters& counters() const { return counters_; }
  Counters& mutable_counters() { return counters_; }

  // For TCP: sends a segment from src to dst (the checksum is made here).
  // A payload larger than gso_size goes as one GSO frame of gso_size
  // segments (the caller asked GsoMax first).
  void SendTcp(const Ip& src, const Ip& dst, const TcpHeader& h, Bytes payload, uint8_t tos,
               int64_t now, uint16_t gso_size = 0);
  // The most TCP payload one segment to dst may carry as a GSO frame: 0
  // unless the way there is an interface that takes them and the next
  // hop's address is known.
  uint32_t GsoMax(const Ip& dst, int64_t now) const;
  uint32_t NewIsn(int64_t now);
  // Tests: the next connections' initial sequence numbers start at isn.
  void SetIsnForTest(uint32_t isn) {
    isn_for_test_ = isn;
    isn_set_ = true;
  }
  uint32_t Random();
  // The SYN cookies' key, from the host's randomness (the stack's own
  // generator shows its outputs on the wire: ISNs, fragment ids).
  void SetCookieKey(uint64_t a, uint64_t b) {
    cookie_key_[0] = a;
    cookie_key_[1] = b;
  }
  // SYN-ACKs sent with a cookie, cookies taken back and refused (Linux's
  // TcpExt SyncookiesSent, Recv and Failed).
  uint64_t syncookies_sent() const { return syncookies_sent_; }
  uint64_t syncookies_recv() const { return syncookies_recv_; }
  uint64_t syncookies_failed() const { return syncookies_failed_; }

 private:
  struct Neighbor {
    Mac mac{};
    bool resolved = false;
    int64_t expires = 0;  // resolved: until then; else: the next request
    int tries = 0;
    int stale_probes = 0;             // asked again while used stale
    std::deque<std::string> pending;  // IP packets waiting for the address
  };
  using ConnKey = std::tuple<Ip, uint16_t, Ip, uint16_t>;  // local, remote
  // What the transports need of an arriving datagram's IP header.
  struct IpMeta {
    Ip src{}, dst{};
    uint8_t tos = 0, ttl = 64;
    bool v6 = false;
    bool link_multicast = false;  // IPv6: it came in a frame to a group or broadcast
    int nic = 0;                  // IPv6: the interface it came on
    Ipv4Header v4;                // IPv4's, for an ICMP error quoting it
  };
  // A datagram being put back together from its fragments: IPv4's
  // (RFC 791) by source, destination, id and protocol; IPv6's (RFC 8200
  // 4.5) by source, destination and id (the protocol 0).
  using ReasmKey = std::tuple<Ip, Ip, uint32_t, uint8_t>;
  struct Reassembly {
    std::map<uint32_t, std::string> frags;  // by offset
    uint32_t total = 0;                     // the length, once the last fragment came
    size_t bytes = 0;
    int64_t born = 0, expires = 0;
    bool have_first = false;
    Ipv4Header first;  // IPv4: the first fragment's header
    // IPv6: the first fragment's unfragmentable part (the IPv6 header and
    // the extension headers before its Fragment header), the Fragment
    // header's own next header written where that header was named.
    std::string head;
    bool link_multicast = false;  // IPv6: a fragment came in a frame to a group
  };

  Nic* NicByIndex(int index);
  const Route* Lookup(const Ip& dst) const;
  void InputArp(Nic& nic, Bytes b, int64_t now);
  void InputIpv4(Nic& nic, Bytes b, bool checksum_ok, int64_t now);
  // Hands a whole datagram (whole: its header and payload) to its protocol.
  void DeliverIpv4(const Ipv4Header& ip, Bytes payload, Bytes whole, bool checksum_ok,
                   bool broadcast, int64_t now);
  // Keeps a fragment; when it completes its datagram, delivers that.
  void Reassemble(const Ipv4Header& ip, Bytes payload, bool broadcast, int64_t now);
  // Either family's share of that: keeps a fragment (offset and payload
  // in bytes; more: not the last) of the datagram `key`, whose fragments
  // may reach no further than max_end, charging it its bytes and `extra`;
  // returns the datagram it joined, or null if it was a duplicate or was
  // refused (then the datagram is dropped).
  Reassembly* KeepFragment(const ReasmKey& key, uint32_t off, bool more, Bytes payload,
                           uint32_t max_end, size_t extra, int64_t timeout, int64_t now);
  // Drops a datagram being put back together, counting a failure.
  void DropReassembly(const ReasmKey& key);
  void InputIcmp(const Ipv4Header& ip, Bytes b, int64_t now);
  void InputUdp(const IpMeta& ip, Bytes b, bool checksum_ok, Bytes whole, int64_t now);
  void InputTcp(const IpMeta& ip, Bytes b, bool checksum_ok, int64_t now);
  void InputIpv6(Nic& nic, Bytes b, bool checksum_ok, const Mac& from, bool link_multicast,
                 int64_t now);
  // Steps over a packet's extension headers (whole: its IPv6 header and
  // payload) and hands it to its protocol; a fragment goes to
  // Reassemble6, and a datagram it completed comes back (reassembled).
  void DeliverIpv6(Nic& nic, const Ipv6Header& ip, Bytes whole, bool checksum_ok, const Mac& from,
                   bool link_multicast, bool reassembled, int64_t now);
  // Keeps an IPv6 fragment (its Fragment header at frag_at in whole, and
  // named by the byte at next_at); when it completes its datagram,
  // delivers that.
  void Reassemble6(Nic& nic, const Ipv6Header& ip, Bytes whole, size_t frag_at, size_t next_at,
                   const Ipv6Frag& f, const Mac& from, bool link_multicast, int64_t now);
  // fragmented: the message came in fragments (neighbour discovery takes
  // none, RFC 6980).
  void InputIcmp6(Nic& nic, const Ipv6Header& ip, Bytes b, const Mac& from, bool fragmented,
                  int64_t now);
  // An ICMPv6 Destination Unreachable or Packet Too Big (b: the whole
  // message, its checksum checked) about a packet of ours: to the
  // transport that sent it.
  void InputIcmp6Error(Bytes b, int64_t now);
  // Learns (or refreshes) a neighbour's link address and sends what waited.
  void Learn(Nic& nic, const Ip& ip, const Mac& mac, bool create, int64_t now);
  void SendSolicit(Nic& nic, const Ip& target);
  // MLD: a version 2 report of `groups` with records of `type` (none with
  // sources), or a version 1 report of one group (to a querier of
  // version 1).
  void SendMldReport(Nic& nic, const std::vector<Ip>& groups, uint8_t type);
  void SendMldV1Report(Nic& nic, const Ip& group);
  void InputMldQuery(Nic& nic, const Ipv6Header& ip, Bytes b, int64_t now);
  // IGMP: a version 3 report of `groups` (records of `type`), a version 1
  // or 2 report of one group, the IPv4 packet either goes in (TTL 1,
  // router alert), and a query.
  void SendIgmpReport(Nic& nic, const std::vector<Ip>& groups, uint8_t type);
  void SendIgmpOldReport(Nic& nic, uint32_t group, uint8_t type);
  void SendIgmp(Nic& nic, uint32_t dst, Bytes msg);
  void InputIgmp(Nic& nic, const Ipv4Header& ip, Bytes b, int64_t now);
  // An address of the interface of the family of `like` (IPv6: a global
  // one first), or the zero address.
  Ip NicAddress(const Nic& nic, const Ip& like) const;
  // IPv4 or IPv6 by the addresses' family; nic as SendIpv6's.
  int SendIp(const Ip& src, const Ip& dst, uint8_t proto, uint8_t tos, uint8_t ttl, bool df,
             Bytes l4, int64_t now, int nic = 0);
  // Sends an IPv6 packet (l4: the transport header and data, checksum
  // made), in fragments when it is larger than the MTU and frag_ok; 0 or
  // an errno. One to a group leaves by interface `nic` (0: the first).
  int SendIpv6(const Ip& src, const Ip& dst, uint8_t proto, uint8_t tclass, uint8_t hop_limit,
               Bytes l4, bool frag_ok, int64_t now, int nic = 0);
  // Answers a segment no connection takes with a reset.
  void SendReset(const Ip& src, const Ip& dst, const TcpHeader& h, size_t payload_len, int64_t now);
  // Sends an IPv4 packet (l4: the transport header and data, checksum
  // made), fragmenting it when it is larger than the MTU and allowed to;
  // 0 or an errno.
  int SendIpv4(uint32_t src, uint32_t dst, uint8_t proto, uint8_t tos, uint8_t ttl, bool df,
               Bytes l4, int64_t now);
  void SendIcmpError(const Ipv4Header& ip, Bytes whole, uint8_t type, uint8_t code, int64_t now);
  // ICMPv6's (RFC 4443 2.4): about the packet `whole` (its IPv6 header
  // on) that ip describes, which is not an ICMPv6 error; none for a packet
  // to a group or in a frame to one, or from no one in particular.
  void SendIcmp6Error(const IpMeta& ip, Bytes whole, uint8_t type, uint8_t code, int64_t now);
  void Resolve(Nic& nic, const Ip& next_hop, std::string packet, int64_t now);
  void SendArp(Nic& nic, uint16_t op, const Mac& tha, uint32_t tpa, const Mac& dst_mac);
  void Transmit(Nic& nic, const Mac& dst, uint16_t type, Bytes packet, const GsoInfo& gso = {});

  // SYN cookies (RFC 4987): the initial sequence number of a SYN-ACK sent
  // without keeping state, when the listener's queue of half-open
  // connections is full; and the check of the ACK that comes back (its
  // peer MSS, or 0 if it is no cookie of ours from the last two minutes).
  uint32_t SynCookie(const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
                     uint32_t peer_isn, uint16_t peer_mss, int64_t now) const;
  uint16_t CheckSynCookie(const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
                          uint32_t peer_isn, uint32_t cookie, int64_t now) const;
  uint32_t CookieHash(const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
                      uint32_t peer_isn, uint32_t count, uint32_t mss_index) const;
  void SendCookie(const Ip& local, const Ip& remote, const TcpHeader& syn, int64_t now);

  Upcalls* up_;
  uint64_t rng_;
  uint64_t cookie_key_[2];
  uint16_t ip_id_;
  std::vector<Nic> nics_;
  std::vector<Route> routes_;
  std::map<Ip, Neighbor> neighbors_;
  std::map<ConnKey, std::shared_ptr<TcpEndpoint>> conns_;
  bool batching_ = false;
  std::vector<std::shared_ptr<TcpEndpoint>> deferred_acks_;
  void (*output_kick_)() = nullptr;
  // The connections' timers: Tick walks them all only when the earliest
  // deadline armed since (timer_hint_, which every TcpEndpoint::Arm
  // lowers) is due, or every kWalkEvery as a safety net; with few
  // connections, at every Tick.
  int64_t timer_hint_ = INT64_MIN;
  int64_t last_walk_ = INT64_MIN;
  uint64_t timer_walks_ = 0;
  void NoteDeadline(int64_t when) { timer_hint_ = std::min(timer_hint_, when); }
  uint64_t syncookies_sent_ = 0, syncookies_recv_ = 0, syncookies_failed_ = 0;
  // When the last cookie went out: an ACK is taken as one only for two
  // cookie periods after (tcp_synq_no_recent_overflow).
  int64_t last_cookie_at_ = INT64_MIN;
  Counters counters_;
  // What every connection holds received and unread (in order or past a
  // hole): past rx_limit_, windows close (as Linux's tcp_mem does), so
  // peers cannot make the sentry hold without bound.
  size_t rx_limit_ = size_t{256} << 20;
  size_t rx_buffered_ = 0;
  size_t pending_bytes_ = 0;  // in all neighbours' pending queues
  uint32_t isn_for_test_ = 0;
  bool isn_set_ = false;
  std::map<ReasmKey, Reassembly> reasm_;
  size_t reasm_bytes_ = 0;
  std::string frame_;  // scratch for outgoing frames
  friend class TcpEndpoint;
};

}  // namespace husk::netstack

#endif  // HUSK_SENTRY_NET_STACK_STACK_H_
