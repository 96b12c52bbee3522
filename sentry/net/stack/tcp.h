// TCP (RFC 9293) for the sandbox's stack: the state machine, sequence
// space and windows with window scaling (RFC 7323), timestamps and RTT
// estimation (RFC 6298), retransmission with exponential backoff, fast
// retransmit and NewReno recovery (RFC 6582) guided by SACK (RFC 2018),
// CUBIC congestion avoidance (RFC 9438), Nagle, corking, delayed ACKs,
// zero-window probes, keepalive, TIME_WAIT, and resets checked as
// RFC 5961 asks.
//
// An endpoint is one connection. The socket layer writes to its send
// buffer and reads its receive buffer; the Stack gives it segments and
// time. Like the Stack, it takes no lock: its owner serialises every call.
#ifndef HUSK_SENTRY_NET_STACK_TCP_H_
#define HUSK_SENTRY_NET_STACK_TCP_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sentry/net/stack/wire.h"

namespace husk::netstack {

class Stack;
class TcpListener;

// What a socket's options ask of its connection.
struct TcpSettings {
  bool nodelay = false;
  bool cork = false;
  size_t sndbuf = 0;  // 0: the default (grows as Linux's autotuning would let it)
  size_t rcvbuf = 0;
  bool keepalive = false;
  int keepidle = 7200, keepintvl = 75, keepcnt = 9;  // seconds, seconds, probes
  int syn_retries = 6;
  uint32_t user_timeout_ms = 0;
  uint16_t user_mss = 0;  // TCP_MAXSEG
  uint8_t tos = 0;
  bool oobinline = false;  // SO_OOBINLINE: the urgent byte stays in the stream
};

// TCP_INFO's figures.
struct TcpInfoData {
  uint8_t state = 0, retransmits = 0, backoff = 0, options = 0, wscale = 0;
  uint32_t rto_us = 0, snd_mss = 0, rcv_mss = 0, unacked = 0, sacked = 0, lost = 0, retrans = 0;
  uint32_t rtt_us = 0, rttvar_us = 0, snd_ssthresh = 0, snd_cwnd = 0, advmss = 0, rcv_space = 0,
           total_retrans = 0;
  uint64_t bytes_acked = 0, bytes_received = 0;
  uint32_t segs_out = 0, segs_in = 0;
};

// What arrived in order and was not read: a queue of chunks, so a read
// moves none of what stays. Small segments share a chunk (so a peer's
// tiny segments cost no chunk each); large ones have their own.
class ReceiveQueue {
 public:
  size_t size() const { return size_; }
  void Append(const char* p, size_t n);
  void Append(std::string&& s);
  // Appends up to n bytes from the front to *out, and takes them unless
  // peek; returns how many.
  size_t CopyTo(std::string* out, size_t n, bool peek);

 private:
  std::deque<std::string> chunks_;
  size_t front_off_ = 0;  // what of chunks_.front() was read
  size_t size_ = 0;
};

class TcpEndpoint : public std::enable_shared_from_this<TcpEndpoint> {
 public:
  // Linux's numbering (TCP_ESTABLISHED is 1), as /proc/net/tcp and
  // TCP_INFO show it.
  enum State : uint8_t {
    kEstablished = 1,
    kSynSent,
    kSynRecv,
    kFinWait1,
    kFinWait2,
    kTimeWait,
    kClosed,
    kCloseWait,
    kLastAck,
    kListen,
    kClosing,
  };

  TcpEndpoint(Stack* stack, const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
              const TcpSettings& s);
  ~TcpEndpoint();

  // ---- the socket's side ----
  // Takes what fits of data into the send buffer and sends what the
  // windows allow; returns the bytes taken. urgent (send's MSG_OOB): the
  // last byte taken is urgent data (the urgent pointer follows it, as
  // Linux's tcp_mark_urg sets it).
  size_t Write(Bytes data, int64_t now, bool urgent = false);
  size_t SendSpace() const;
  size_t SendQueued() const { return sbuf_.size() - sbuf_off_; }
  size_t Readable() const { return rbuf_.size(); }
  // Takes (or with peek copies) at most n bytes of what arrived in order;
  // a read stops short of the urgent mark (tcp_recvmsg's urg_offset).
  std::string Read(size_t n, bool peek, int64_t now);
  // The same, appended to *out; returns how many.
  size_t ReadAppend(std::string* out, size_t n, bool peek, int64_t now);
  // The peer's FIN arrived and everything before it was read.
  bool ReadEof() const { return fin_received_ && Readable() == 0; }

  // Urgent data the peer sent (RFC 9293 3.8.5, as Linux reads it: the
  // urgent pointer follows the urgent byte). The byte leaves the stream
  // unless settings.oobinline; its place is the urgent mark, where reads
  // stop, until reading passes it.
  enum class Urgent : uint8_t {
    kNone,     // none, or read past
    kPending,  // the pointer came, the byte not yet (TCP_URG_NOTYET)
    kValid,    // the byte came and waits for recv(MSG_OOB)
    kRead,     // the byte was taken with MSG_OOB (TCP_URG_READ)
  };
  Urgent urgent() const { return urg_state_; }
  // recv(MSG_OOB) without MSG_PEEK took the byte.
  uint8_t TakeUrgentByte() {
    urg_state_ = Urgent::kRead;
    return urg_byte_;
  }
  uint8_t urgent_byte() const { return urg_byte_; }
  // The next byte read is the one at the mark (SIOCATMARK).
  bool AtUrgentMark() const { return HasMark() && rbuf_out_ == urg_mark_; }
  // Called when a new urgent pointer arrives (the socket's owner then
  // hears SIGURG, as sk_send_sigurg sends it).
  std::function<void()> on_urgent;
  // What FIONREAD counts (tcp_inq): what can be read before the mark, or
  // all of it inline or when no mark is ahead.
  size_t ReadableBeforeMark() const {
    if (HasMark() && !settings.oobinline && rbuf_out_ <= urg_mark_) {
      return std::min<size_t>(Readable(), urg_mark_ - rbuf_out_);
    }
    return Readable();
  }
  // A connection that failed (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...): its
  // error until taken (SO_ERROR, or the call that reports it).
  int error() const { return error_; }
  int TakeError() {
    int e = error_;
    error_ = 0;
    return e;
  }
  bool reset() const { return reset_; }  // ended by a reset or a timeout
  State state() const { return state_; }
  bool Established() const;
  // shutdown(SHUT_WR): a FIN after what is queued.
  void ShutdownWrite(int64_t now);
  // The socket's last close: a FIN after the queued data, or a reset if
  // data arrived that nobody read (or linger_zero, SO_LINGER {1, 0}).
  void Close(bool linger_zero, int64_t now);
  // Sends what is queued now (TCP_NODELAY set, TCP_CORK cleared).
  void Push(int64_t now) { Output(now); }
  // settings changed (from `before`) on an open connection: the keepalive
  // timer follows SO_KEEPALIVE (tcp_set_keepalive: keepidle from now) and
  // TCP_KEEPIDLE (keepidle after the last segment), and what waited for
  // TCP_NODELAY or the cork goes.
  void ApplySettings(const TcpSettings& before, int64_t now);
  TcpInfoData Info(int64_t now) const;
  // The way to the peer is gone (its address never resolved, or an ICMP
  // error said so): a connection still opening fails with err; an open
  // one carries on.
  void Unreachable(int err);
  // ICMP "fragmentation needed" or ICMPv6 "packet too big" with the next
  // hop's MTU: segments shrink to fit (at least 552 bytes of path over
  // IPv4, as Linux's min_pmtu, and 1280 over IPv6, its least MTU), and
  // what was in flight goes again.
  void PathMtu(uint16_t mtu, int64_t now);
  // Whether seq lies in what was sent and not acknowledged.
  bool SentAndUnacked(uint32_t seq) const;

  // Called (by the owner's lock) when the endpoint becomes readable,
  // writable, connected or failed.
  std::function<void()> notify;
  TcpSettings settings;

  const Ip& local() const { return local_; }
  const Ip& remote() const { return remote_; }
  uint16_t lport() const { return lport_; }
  uint16_t rport() const { return rport_; }
  // For /proc/net/tcp: the queues and the timer.
  uint32_t rx_queue() const { return static_cast<uint32_t>(Readable()); }
  uint32_t tx_queue() const { return snd_max_ - snd_una_; }

  // ---- the stack's side ----
  void StartConnect(int64_t now);
  // A SYN to a listener made this endpoint: it answers SYN-ACK.
  void StartPassive(const TcpHeader& syn, std::weak_ptr<TcpListener> listener, int64_t now);
  // The ACK of a SYN cookie made this endpoint (the handshake is over, no
  // state was kept for it): established at once with the MSS the cookie
  // kept, without window scaling, SACK or timestamps. ack: the ACK's.
  void StartFromCookie(const TcpHeader& ack, uint16_t peer_mss, int64_t now);
  void Input(const TcpHeader& h, Bytes data, int64_t now);
  void OnTimer(int64_t now);
  int64_t Deadline() const;
  bool Dead() const { return state_ == kClosed; }
  // The stack is going away.
  void Detach() { stack_ = nullptr; }
  // The end of a batch: the ACK AckData put off, unless a segment since
  // carried it.
  void FlushDeferredAck(int64_t now);

 private:
  void InputSynSent(const TcpHeader& h, int64_t now);
  bool ProcessAck(const TcpHeader& h, size_t data_len, int64_t now);
  void QueueData(uint32_t seq, Bytes data, int64_t now);
  void QueueDataHeld(uint32_t seq, Bytes data, int64_t now);
  // An urgent pointer in a segment that starts at seq (tcp_check_urg).
  void CheckUrgent(uint32_t seq, uint16_t pointer);
  // Appends in-order bytes (at stream position rcv_pos_) to rbuf_, taking
  // the urgent byte out if it is among them and not inline.
  void AppendInOrder(const char* p, size_t n);
  void AppendInOrder(std::string&& s);
  // The urgent byte arrived (read with MSG_OOB or not): its mark stands
  // until reading passes it.
  bool HasMark() const { return urg_state_ == Urgent::kValid || urg_state_ == Urgent::kRead; }
  // The pending urgent byte is among the next n bytes in order.
  bool UrgentByteWithin(size_t n) const {
    return urg_state_ == Urgent::kPending && urg_pos_ >= rcv_pos_ && urg_pos_ < rcv_pos_ + n;
  }
  // Whether unacknowledged urgent data remains (segments then may carry
  // the pointer).
  bool UrgentMode() const;
  // The received bytes this connection holds, and telling the stack how
  // that changed since `before`.
  size_t Held() const { return Readable() + ooo_bytes_; }
  void AccountHeld(size_t before);
  void ReceiveFin(int64_t now);
  void Negotiate(const TcpOptions& o);
  // Sends what the windows allow of the queued data (and the FIN).
  void Output(int64_t now);
  void SendSegment(uint32_t seq, uint8_t flags, Bytes data, int64_t now);
  void SendAck(int64_t now) { SendSegment(snd_nxt_, kAck, {}, now); }
  // The ACK in-order data earns: at once, or, within a batch of frames
  // (Stack::BeginBatch), once for the whole batch at its end.
  void AckData(int64_t now);
  // Puts this connection on the stack's list of ACKs for the batch's end.
  void DeferAck();
  // What the last window offered still leaves (rcv_adv_ past rcv_nxt_).
  uint32_t OfferedWindow() const;
  // Data that arrived twice: the next ACK reports it (a D-SACK block).
  void NoteDuplicate(uint32_t start, uint32_t end);
  void SendSyn(int64_t now);
  void SendRst(uint32_t seq, int64_t now);
  // Retransmits the first segment the peer lacks at or after seq.
  void RetransmitFrom(uint32_t seq, int64_t now);
  void EnterRecovery(int64_t now);
  void OnRto(int64_t now);
  void GrowWindow(uint32_t acked, int64_t now);
  void SampleRtt(int64_t rtt_ns);
  uint16_t WindowField();
  uint32_t ReceiveSpace() const;
  uint32_t Flight() const { return snd_nxt_ - snd_una_; }
  void ArmRto(int64_t now) { Arm(&rto_at_, now + (rto_ << backoff_)); }
  // Sets one of the timers, telling the stack when it is due.
  void Arm(int64_t* timer, int64_t when);
  void Fail(int err);
  // Moves to state s (kClosed: the connection is over).
  void SetState(State s, int64_t now);
  void Notify() {
    if (notify) notify();
  }
  size_t SendCapacity() const;
  size_t ReceiveCapacity() const;
  bool InSacked(uint32_t seq, uint32_t* end) const;
  void MergeSack(uint32_t start, uint32_t end);
  uint32_t TsNow(int64_t now) const { return static_cast<uint32_t>(now / 1000000) + ts_offset_; }

  Stack* stack_;
  Ip local_, remote_;
  uint16_t lport_, rport_;
  State state_ = kClosed;
  std::weak_ptr<TcpListener> listener_;  // a passive open until accepted

  // Send sequence space. The send buffer holds the bytes from sbuf_seq_
  // (snd_una_, or one past it while the SYN is unacked).
  uint32_t iss_ = 0, snd_una_ = 0, snd_nxt_ = 0, snd_max_ = 0;
  uint32_t snd_wnd_ = 0, snd_wl1_ = 0, snd_wl2_ = 0;
  std::string sbuf_;
  size_t sbuf_off_ = 0;
  uint32_t sbuf_seq_ = 0;
  bool fin_queued_ = false, fin_sent_ = false, fin_acked_ = false;
  bool fin_ever_ = false;      // a FIN went out once (fin_seq_ is its sequence)
  bool passive_ = false;       // made by a SYN to a listener
  bool ack_deferred_ = false;  // on the stack's list of ACKs for the batch's end
  bool window_update_ = false;
  // A duplicate segment's range, for the next ACK's first SACK block.
  bool dsack_pending_ = false;
  uint32_t dsack_start_ = 0,
           dsack_end_ = 0;  // that ACK is a window update: it goes even if nothing arrived
  uint32_t fin_seq_ = 0;
  uint16_t mss_ = 536, peer_mss_ = 536, adv_mss_ = 1460;
  int snd_wscale_ = 0, rcv_wscale_ = 0;
  bool ts_ok_ = false, sack_ok_ = false;
  uint32_t ts_recent_ = 0, ts_offset_ = 0;

  // Receive sequence space. rbuf_ holds what arrived in order and was not
  // read; ooo_ what arrived past a hole.
  uint32_t irs_ = 0, rcv_nxt_ = 0, rcv_adv_ = 0, last_ack_sent_ = 0;
  ReceiveQueue rbuf_;
  // By position in the byte stream (rcv_pos_ is rcv_nxt_'s), which does
  // not wrap as sequence numbers do.
  std::map<uint64_t, std::string> ooo_;
  uint64_t rcv_pos_ = 0;
  size_t ooo_bytes_ = 0;
  bool fin_received_ = false;
  bool read_unread_on_close_ = false;
  // Urgent data: the urgent byte's stream position (rcv_pos_'s space)
  // while pending, the byte, and the mark in rbuf_'s own count of bytes
  // in (rbuf_in_) and out (rbuf_out_), which the byte taken out of the
  // stream leaves apart from the sequence space.
  Urgent urg_state_ = Urgent::kNone;
  uint64_t urg_pos_ = 0;
  uint8_t urg_byte_ = 0;
  uint64_t urg_mark_ = 0, rbuf_in_ = 0, rbuf_out_ = 0;
  // Sending urgent data: the urgent pointer (the sequence after the last
  // urgent byte), meaningful while urg_mode_.
  bool urg_mode_ = false;
  uint32_t snd_up_ = 0;
  int unacked_segs_ = 0;  // received, not acked yet (delayed ACK)

  // Congestion control and loss recovery (bytes).
  uint32_t cwnd_ = 0, ssthresh_ = UINT32_MAX;
  int dupacks_ = 0;
  bool in_recovery_ = false;
  uint32_t recover_ = 0, high_rxt_ = 0;
  std::vector<std::array<uint32_t, 2>> sacked_;  // the peer's SACK blocks above snd_una_
  // CUBIC: the window before the last reduction (segments), the epoch's
  // start, and K (seconds).
  double w_max_ = 0, cubic_k_ = 0;
  int64_t epoch_start_ = 0;
  uint32_t ack_count_ = 0;

  // RTT and timers (ns; INT64_MAX: not armed).
  int64_t srtt_ = 0, rttvar_ = 0, rto_ = 1000000000;
  int backoff_ = 0, retries_ = 0;
  bool timing_ = false;
  uint32_t timed_seq_ = 0;
  int64_t timed_at_ = 0;
  int64_t rto_at_ = INT64_MAX, delack_at_ = INT64_MAX, persist_at_ = INT64_MAX,
          keepalive_at_ = INT64_MAX, timewait_at_ = INT64_MAX, orphan_at_ = INT64_MAX;
  int64_t last_recv_ = 0, first_rto_at_ = 0;
  int probes_ = 0;  // keepalive's
  int persist_probes_ = 0;
  int64_t persist_since_ = 0;

  int error_ = 0;
  bool reset_ = false;
  bool orphan_ = false;  // its socket is closed
  uint32_t segs_in_ = 0, segs_out_ = 0, total_retrans_ = 0;
  uint64_t bytes_acked_ = 0, bytes_received_ = 0;

  friend class Stack;
};

// A listening socket's share of the stack: connections that completed
// their handshake wait here for accept(2).
class TcpListener {
 public:
  int backlog = 0;
  std::deque<std::shared_ptr<TcpEndpoint>> ready;
  int half_open = 0;
  TcpSettings settings;
  bool closed = false;
  std::function<void()> notify;
  // The socket closed: connections that wait are reset.
  void Close(int64_t now);
};

}  // namespace husk::netstack

#endif  // HUSK_SENTRY_NET_STACK_TCP_H_
