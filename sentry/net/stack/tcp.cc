#include "sentry/net/stack/tcp.h"

#include <errno.h>

#include <algorithm>
#include <cmath>

#include "sentry/net/stack/stack.h"

namespace husk::netstack {
namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kMinRto = 200 * kMs;  // Linux's TCP_RTO_MIN
constexpr int64_t kMaxRto = 120 * kSecond;
constexpr int64_t kInitialRto = kSecond;
constexpr int64_t kDelayedAck = 40 * kMs;
constexpr int64_t kTimeWaitLen = 60 * kSecond;
constexpr int64_t kFinTimeout = 60 * kSecond;
constexpr int kMaxRetries = 15;    // tcp_retries2
constexpr int kSynAckRetries = 5;  // tcp_synack_retries
// Without SO_SNDBUF/SO_RCVBUF, a connection's buffers may hold this much
// (Linux's autotuning grows them up to tcp_wmem[2] and tcp_rmem[2]).
constexpr size_t kDefaultCapacity = 4 << 20;
constexpr int kOurWscale = 7;
constexpr double kCubicC = 0.4, kCubicBeta = 0.7;

bool Lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
bool Le(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
bool Gt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }
bool Ge(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

}  // namespace

TcpEndpoint::TcpEndpoint(Stack* stack, const Ip& local, uint16_t lport, const Ip& remote,
                         uint16_t rport, const TcpSettings& s)
    : settings(s), stack_(stack), local_(local), remote_(remote), lport_(lport), rport_(rport) {
  adv_mss_ = stack_->MssFor(remote);
  if (settings.user_mss != 0) adv_mss_ = std::min(adv_mss_, settings.user_mss);
  ts_offset_ = stack_->Random();
}

TcpEndpoint::~TcpEndpoint() {
  if (stack_ != nullptr) stack_->rx_buffered_ -= std::min(stack_->rx_buffered_, Held());
}

void TcpEndpoint::AccountHeld(size_t before) {
  if (stack_ == nullptr) return;
  const size_t after = Held();
  if (after >= before) {
    stack_->rx_buffered_ += after - before;
  } else {
    stack_->rx_buffered_ -= std::min(stack_->rx_buffered_, before - after);
  }
}

size_t TcpEndpoint::SendCapacity() const {
  return settings.sndbuf != 0 ? settings.sndbuf : kDefaultCapacity;
}

size_t TcpEndpoint::ReceiveCapacity() const {
  return settings.rcvbuf != 0 ? settings.rcvbuf : kDefaultCapacity;
}

bool TcpEndpoint::Established() const {
  return state_ == kEstablished || state_ == kCloseWait || state_ == kFinWait1 ||
         state_ == kFinWait2 || state_ == kClosing || state_ == kLastAck || state_ == kTimeWait;
}

size_t TcpEndpoint::SendSpace() const {
  size_t cap = SendCapacity();
  return SendQueued() < cap ? cap - SendQueued() : 0;
}

uint32_t TcpEndpoint::ReceiveSpace() const {
  size_t used = Readable() + ooo_bytes_;
  size_t cap = ReceiveCapacity();
  size_t space = used < cap ? cap - used : 0;
  if (stack_ != nullptr) {
    const size_t all = stack_->rx_buffered_;
    space = std::min(space, all < stack_->rx_limit_ ? stack_->rx_limit_ - all : 0);
  }
  return static_cast<uint32_t>(space);
}

void TcpEndpoint::SetState(State s, int64_t now) {
  State old = state_;
  state_ = s;
  if (s == kTimeWait) {
    Arm(&timewait_at_, now + kTimeWaitLen);
    rto_at_ = delack_at_ = persist_at_ = keepalive_at_ = orphan_at_ = INT64_MAX;
  }
  if (s == kClosed) {
    rto_at_ = delack_at_ = persist_at_ = keepalive_at_ = timewait_at_ = orphan_at_ = INT64_MAX;
    if (std::shared_ptr<TcpListener> l = listener_.lock(); l != nullptr && old == kSynRecv) {
      l->half_open--;
    }
    listener_.reset();
  }
  if (s == kFinWait2 && orphan_) Arm(&orphan_at_, now + kFinTimeout);
}

void TcpEndpoint::Unreachable(int err) {
  if (state_ != kSynSent) return;
  if (stack_ != nullptr) stack_->mutable_counters().tcp_attempt_fails++;
  Fail(err);
}

bool TcpEndpoint::SentAndUnacked(uint32_t seq) const {
  return Le(snd_una_, seq) && Lt(seq, snd_max_);
}

void TcpEndpoint::PathMtu(uint16_t mtu, int64_t now) {
  const int header = (IsV4(remote_) ? 20 : 40) + 20 + (ts_ok_ ? 12 : 0);
  const int fit = std::max<int>(mtu, IsV4(remote_) ? 552 : kIpv6MinMtu) - header;
  if (fit <= 0 || fit >= mss_) return;
  mss_ = static_cast<uint16_t>(std::max(fit, 64));
  // What went at the old size is lost past the smaller hop: again, now.
  if (Lt(snd_una_, snd_max_) && state_ != kSynSent && state_ != kSynRecv) {
    snd_nxt_ = snd_una_;
    if (fin_sent_ && !fin_acked_) fin_sent_ = false;
    Output(now);
  }
}

void TcpEndpoint::Fail(int err) {
  error_ = err;
  reset_ = true;
  if (state_ != kClosed) {
    if (stack_ != nullptr && (state_ == kEstablished || state_ == kCloseWait)) {
      stack_->mutable_counters().tcp_estab_resets++;
    }
    SetState(kClosed, 0);
  }
  Notify();
}

void TcpEndpoint::StartConnect(int64_t now) {
  iss_ = stack_->NewIsn(now);
  snd_una_ = iss_;
  snd_nxt_ = snd_max_ = iss_ + 1;
  sbuf_seq_ = iss_ + 1;
  rto_ = kInitialRto;
  state_ = kSynSent;
  SendSyn(now);
  ArmRto(now);
}

void TcpEndpoint::StartPassive(const TcpHeader& syn, std::weak_ptr<TcpListener> listener,
                               int64_t now) {
  listener_ = std::move(listener);
  passive_ = true;
  irs_ = syn.seq;
  rcv_nxt_ = syn.seq + 1;
  Negotiate(syn.opts);
  snd_wnd_ = syn.window;  // a SYN's window is never scaled
  snd_wl1_ = syn.seq;
  iss_ = stack_->NewIsn(now);
  snd_una_ = iss_;
  snd_nxt_ = snd_max_ = iss_ + 1;
  sbuf_seq_ = iss_ + 1;
  snd_wl2_ = iss_;
  rto_ = kInitialRto;
  state_ = kSynRecv;
  last_recv_ = now;
  SendSyn(now);
  ArmRto(now);
}

void TcpEndpoint::StartFromCookie(const TcpHeader& ack, uint16_t peer_mss, int64_t now) {
  passive_ = true;
  irs_ = ack.seq - 1;
  rcv_nxt_ = ack.seq;
  TcpOptions o;
  o.mss = peer_mss;
  Negotiate(o);
  iss_ = ack.ack - 1;
  snd_una_ = snd_nxt_ = snd_max_ = ack.ack;
  sbuf_seq_ = ack.ack;
  snd_wnd_ = ack.window;  // unscaled: the cookie's SYN-ACK offered no scaling
  snd_wl1_ = ack.seq;
  snd_wl2_ = ack.ack;
  rto_ = kInitialRto;
  state_ = kEstablished;
  last_recv_ = now;
  rcv_adv_ = rcv_nxt_ + 65535;  // what the cookie's SYN-ACK offered
  if (settings.keepalive) Arm(&keepalive_at_, now + int64_t{settings.keepidle} * kSecond);
}

void TcpEndpoint::Negotiate(const TcpOptions& o) {
  peer_mss_ = o.mss != 0 ? o.mss : 536;
  if (o.wscale >= 0) {
    snd_wscale_ = o.wscale;
    rcv_wscale_ = kOurWscale;
  } else {
    snd_wscale_ = rcv_wscale_ = 0;
  }
  sack_ok_ = o.sack_ok;
  ts_ok_ = o.has_ts;
  if (ts_ok_) ts_recent_ = o.tsval;
  // At least 64 bytes of payload whatever the peer says, the timestamp
  // option's 12 bytes taken out of the segment first.
  int mss = std::min<int>(peer_mss_, adv_mss_) - (ts_ok_ ? 12 : 0);
  mss_ = static_cast<uint16_t>(std::max(mss, 64));
  cwnd_ = 10 * uint32_t{mss_};  // RFC 6928
}

void TcpEndpoint::SendSyn(int64_t now) {
  TcpHeader h;
  h.sport = lport_;
  h.dport = rport_;
  h.seq = iss_;
  h.flags = kSyn;
  h.opts.mss = adv_mss_;
  uint32_t space = ReceiveSpace();
  h.window = static_cast<uint16_t>(std::min<uint32_t>(space, 65535));
  if (state_ == kSynSent) {
    h.opts.wscale = kOurWscale;
    h.opts.sack_ok = true;
    h.opts.has_ts = true;
    h.opts.tsval = TsNow(now);
  } else {
    h.flags |= kAck;
    h.ack = rcv_nxt_;
    h.opts.wscale = snd_wscale_ > 0 || rcv_wscale_ > 0 ? rcv_wscale_ : -1;
    h.opts.sack_ok = sack_ok_;
    h.opts.has_ts = ts_ok_;
    h.opts.tsval = TsNow(now);
    h.opts.tsecr = ts_recent_;
    last_ack_sent_ = rcv_nxt_;
  }
  rcv_adv_ = rcv_nxt_ + h.window;
  segs_out_++;
  stack_->SendTcp(local_, remote_, h, {}, settings.tos, now);
}

uint16_t TcpEndpoint::WindowField() {
  uint32_t space = ReceiveSpace();
  // Never shrink what was offered (RFC 9293 3.8.6.2.2).
  uint32_t offered = OfferedWindow();
  uint32_t wnd = std::max(space, offered);
  uint32_t field = std::min<uint32_t>(wnd >> rcv_wscale_, 65535);
  // Rounding down to the scale must not shrink it either.
  if ((field << rcv_wscale_) < offered && field < 65535) field++;
  rcv_adv_ = rcv_nxt_ + (field << rcv_wscale_);
  return static_cast<uint16_t>(field);
}

void TcpEndpoint::SendSegment(uint32_t seq, uint8_t flags, Bytes data, int64_t now) {
  if (stack_ == nullptr) return;
  TcpHeader h;
  h.sport = lport_;
  h.dport = rport_;
  h.seq = seq;
  h.flags = flags;
  if (flags & kAck) h.ack = rcv_nxt_;
  h.window = WindowField();
  if (urg_mode_ && !Lt(snd_una_, snd_up_)) urg_mode_ = false;  // all acknowledged
  if (urg_mode_ && Lt(seq, snd_up_)) {
    // tcp_transmit_skb: segments before the pointer carry it (past 64 KiB
    // ahead, as far as it reaches).
    if (Lt(snd_up_, seq + 0x10000)) {
      h.urgent = static_cast<uint16_t>(snd_up_ - seq);
      h.flags |= kUrg;
    } else if (Gt(seq + 0xffff, snd_nxt_)) {
      h.urgent = 0xffff;
      h.flags |= kUrg;
    }
  }
  if (ts_ok_) {
    h.opts.has_ts = true;
    h.opts.tsval = TsNow(now);
    h.opts.tsecr = ts_recent_;
  }
  // SACK blocks ride on segments with room for them within the MSS (pure
  // ACKs, short segments): a full one stays within the path's MTU.
  if (sack_ok_ && dsack_pending_ && (flags & kAck) && data.size() + 36 <= mss_) {
    // A duplicate's range first (RFC 2883): the sender learns its
    // retransmission was needless, undoes its reaction, and allows for
    // the reordering that fooled it.
    h.opts.sack[h.opts.nsack++] = {dsack_start_, dsack_end_};
    dsack_pending_ = false;
  }
  if (sack_ok_ && !ooo_.empty() && data.size() + 36 <= mss_) {
    // The blocks past the hole, merged, lowest first.
    const int first = h.opts.nsack;  // after a D-SACK block, which merges with none
    for (const auto& [pos, bytes] : ooo_) {
      uint32_t start = rcv_nxt_ + static_cast<uint32_t>(pos - rcv_pos_);
      uint32_t end = start + static_cast<uint32_t>(bytes.size());
      if (h.opts.nsack > first && Le(start, h.opts.sack[h.opts.nsack - 1][1])) {
        if (Gt(end, h.opts.sack[h.opts.nsack - 1][1])) h.opts.sack[h.opts.nsack - 1][1] = end;
        continue;
      }
      if (h.opts.nsack == 4) break;
      h.opts.sack[h.opts.nsack++] = {start, end};
    }
  }
  if (flags & kAck) {
    last_ack_sent_ = rcv_nxt_;
    unacked_segs_ = 0;
    delack_at_ = INT64_MAX;
  }
  segs_out_++;
  stack_->SendTcp(local_, remote_, h, data, settings.tos, now,
                  data.size() > mss_ ? mss_ : uint16_t{0});
}

void TcpEndpoint::NoteDuplicate(uint32_t start, uint32_t end) {
  if (!sack_ok_ || start == end) return;
  dsack_start_ = start;
  dsack_end_ = end;
  dsack_pending_ = true;
}

void TcpEndpoint::AckData(int64_t now) {
  if (!stack_->batching_) {
    SendAck(now);
    return;
  }
  // Many frames of a connection in one batch (a busy link) earn one ACK,
  // as GRO's merged segments do on Linux; the sender's window and clock
  // move on from the batch's last.
  DeferAck();
}

uint32_t TcpEndpoint::OfferedWindow() const {
  return Gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
}

void TcpEndpoint::DeferAck() {
  if (ack_deferred_) return;
  ack_deferred_ = true;
  stack_->deferred_acks_.push_back(shared_from_this());
}

void TcpEndpoint::FlushDeferredAck(int64_t now) {
  ack_deferred_ = false;
  // A window update another segment has carried since is not sent again
  // (a pure ACK with nothing new would count as a duplicate ACK).
  const uint32_t offered = OfferedWindow();
  const bool update = window_update_ && ReceiveSpace() > offered;
  window_update_ = false;
  if (stack_ == nullptr || (last_ack_sent_ == rcv_nxt_ && !update)) return;
  if (state_ == kClosed || state_ == kSynSent || state_ == kListen) return;
  SendAck(now);
}

void TcpEndpoint::SendRst(uint32_t seq, int64_t now) { SendSegment(seq, kRst | kAck, {}, now); }

size_t TcpEndpoint::Write(Bytes data, int64_t now, bool urgent) {
  if (fin_queued_ || state_ == kClosed) return 0;
  size_t n = std::min(data.size(), SendSpace());
  if (n == 0) return 0;
  if (sbuf_off_ > 0 && sbuf_off_ >= sbuf_.size() / 2) {
    sbuf_.erase(0, sbuf_off_);
    sbuf_off_ = 0;
  }
  sbuf_.append(reinterpret_cast<const char*>(data.data()), n);
  if (urgent) {
    // tcp_mark_urg: the pointer follows what this send queued.
    snd_up_ = sbuf_seq_ + static_cast<uint32_t>(SendQueued());
    urg_mode_ = true;
  }
  Output(now);
  return n;
}

void TcpEndpoint::CheckUrgent(uint32_t seq, uint16_t pointer) {
  // The pointer names the byte after the urgent one (tcp_stdurg off).
  const uint32_t at = seq + (pointer != 0 ? pointer - 1u : 0u);
  // Already received (a segment sent again, or one of the many that carry
  // the pointer while the sender is in urgent mode), or not newer than
  // the pointer in hand: nothing new.
  if (Lt(at, rcv_nxt_)) return;
  const uint64_t pos = rcv_pos_ + (at - rcv_nxt_);
  if ((urg_state_ == Urgent::kPending || urg_state_ == Urgent::kValid) && pos <= urg_pos_) return;
  urg_state_ = Urgent::kPending;
  urg_pos_ = pos;
  if (on_urgent) on_urgent();
}

bool TcpEndpoint::UrgentMode() const { return urg_mode_ && Lt(snd_una_, snd_up_); }

void TcpEndpoint::AppendInOrder(const char* p, size_t n) {
  if (UrgentByteWithin(n)) {
    const size_t k = static_cast<size_t>(urg_pos_ - rcv_pos_);
    urg_byte_ = static_cast<uint8_t>(p[k]);
    urg_state_ = Urgent::kValid;
    if (settings.oobinline) {
      urg_mark_ = rbuf_in_ + k;  // the byte stays, and is the mark
    } else {
      // Out of the stream: the mark is where it was (tcp_urg's TCP_URG_VALID).
      rbuf_.Append(p, k);
      rbuf_in_ += k;
      urg_mark_ = rbuf_in_;
      rcv_pos_ += k + 1;
      p += k + 1;
      n -= k + 1;
    }
  }
  rbuf_.Append(p, n);
  rbuf_in_ += n;
  rcv_pos_ += n;
}

void TcpEndpoint::AppendInOrder(std::string&& s) {
  if (UrgentByteWithin(s.size())) {
    AppendInOrder(s.data(), s.size());
    return;
  }
  rbuf_in_ += s.size();
  rcv_pos_ += s.size();
  rbuf_.Append(std::move(s));
}

void ReceiveQueue::Append(const char* p, size_t n) {
  if (n == 0) return;
  constexpr size_t kSmall = 4096;
  if (!chunks_.empty() && chunks_.back().size() < kSmall) {
    chunks_.back().append(p, n);
  } else {
    chunks_.emplace_back(p, n);
  }
  size_ += n;
}

void ReceiveQueue::Append(std::string&& s) {
  if (s.size() < 4096) {
    Append(s.data(), s.size());
    return;
  }
  size_ += s.size();
  chunks_.push_back(std::move(s));
}

size_t ReceiveQueue::CopyTo(std::string* out, size_t n, bool peek) {
  n = std::min(n, size_);
  out->reserve(out->size() + n);
  size_t done = 0, off = front_off_;
  auto it = chunks_.begin();
  while (done < n) {
    const size_t k = std::min(n - done, it->size() - off);
    out->append(*it, off, k);
    done += k;
    off += k;
    if (off == it->size()) {
      ++it;
      off = 0;
    }
  }
  if (peek) return n;
  chunks_.erase(chunks_.begin(), it);
  front_off_ = off;
  size_ -= n;
  return n;
}

std::string TcpEndpoint::Read(size_t n, bool peek, int64_t now) {
  std::string out;
  ReadAppend(&out, n, peek, now);
  return out;
}

size_t TcpEndpoint::ReadAppend(std::string* out, size_t n, bool peek, int64_t now) {
  n = std::min(n, Readable());
  // tcp_recvmsg: a read stops short of the urgent mark (and reads on from
  // it when it starts there).
  if (HasMark() && rbuf_out_ < urg_mark_) n = std::min<size_t>(n, urg_mark_ - rbuf_out_);
  if (peek || n == 0) return rbuf_.CopyTo(out, n, /*peek=*/true);
  const size_t held = Held();
  uint32_t offered = OfferedWindow();
  rbuf_.CopyTo(out, n, /*peek=*/false);
  rbuf_out_ += n;
  // Read past the mark: the urgent data is forgotten.
  if (HasMark() && rbuf_out_ > urg_mark_) urg_state_ = Urgent::kNone;
  AccountHeld(held);
  // A window update when the window grew enough to matter (receiver-side
  // silly window avoidance), when it at least doubles one down to half
  // the buffer or less (as tcp_cleanup_rbuf does: a sender that filled
  // most of the window is not left waiting for a quarter of the buffer to
  // be read), or when it reopens from below one segment.
  uint32_t space = ReceiveSpace();
  bool can_send = state_ == kEstablished || state_ == kFinWait1 || state_ == kFinWait2;
  const bool doubles = uint64_t{offered} * 2 <= ReceiveCapacity() &&
                       space >= uint64_t{offered} * 2 && space - offered >= adv_mss_;
  if (can_send && space > offered &&
      (doubles || space - offered >= std::max<uint32_t>(2u * adv_mss_, ReceiveCapacity() / 4) ||
       (offered < adv_mss_ && space >= adv_mss_))) {
    if (stack_->output_kick_ == nullptr) {
      SendAck(now);
    } else {
      // From the stack's thread (Stack::SetOutputThread).
      window_update_ = true;
      DeferAck();
      stack_->output_kick_();
    }
  }
  return n;
}

void TcpEndpoint::ShutdownWrite(int64_t now) {
  switch (state_) {
    case kSynSent:
      SetState(kClosed, now);
      return;
    case kSynRecv:
    case kEstablished:
      fin_queued_ = true;
      state_ = kFinWait1;
      break;
    case kCloseWait:
      fin_queued_ = true;
      state_ = kLastAck;
      break;
    default:
      return;
  }
  Output(now);
}

void TcpEndpoint::Close(bool linger_zero, int64_t now) {
  orphan_ = true;
  notify = nullptr;
  on_urgent = nullptr;
  if (state_ == kClosed || state_ == kTimeWait) return;
  if (state_ == kSynSent) {
    SetState(kClosed, now);
    return;
  }
  // Data nobody will read, or SO_LINGER {1, 0}: a reset (RFC 2525 2.17).
  if (linger_zero || Readable() > 0 || ooo_bytes_ > 0) {
    if (state_ != kSynRecv || !linger_zero) SendRst(snd_nxt_, now);
    SetState(kClosed, now);
    return;
  }
  if (state_ == kFinWait2) Arm(&orphan_at_, now + kFinTimeout);
  ShutdownWrite(now);
}

void TcpListener::Close(int64_t now) {
  closed = true;
  notify = nullptr;
  for (auto& ep : ready) ep->Close(/*linger_zero=*/true, now);
  ready.clear();
}

bool TcpEndpoint::InSacked(uint32_t seq, uint32_t* end) const {
  for (const auto& b : sacked_) {
    if (Le(b[0], seq) && Lt(seq, b[1])) {
      *end = b[1];
      return true;
    }
  }
  return false;
}

void TcpEndpoint::MergeSack(uint32_t start, uint32_t end) {
  if (!Lt(start, end) || Le(end, snd_una_) || Gt(end, snd_max_)) return;
  if (Lt(start, snd_una_)) start = snd_una_;
  std::vector<std::array<uint32_t, 2>> out;
  for (const auto& b : sacked_) {
    if (Lt(b[1], start) || Gt(b[0], end)) {
      out.push_back(b);
    } else {
      if (Lt(b[0], start)) start = b[0];
      if (Gt(b[1], end)) end = b[1];
    }
  }
  out.push_back({start, end});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return Lt(a[0], b[0]); });
  if (out.size() > 32) out.erase(out.begin(), out.end() - 32);
  sacked_ = std::move(out);
}

void TcpEndpoint::Output(int64_t now) {
  if (stack_ == nullptr) return;
  if (state_ != kEstablished && state_ != kCloseWait && state_ != kFinWait1 && state_ != kClosing &&
      state_ != kLastAck) {
    return;
  }
  for (;;) {
    uint32_t end;
    if (Lt(snd_nxt_, snd_max_) && InSacked(snd_nxt_, &end)) {
      snd_nxt_ = Gt(end, snd_max_) ? snd_max_ : end;
      continue;
    }
    uint32_t data_end = sbuf_seq_ + static_cast<uint32_t>(SendQueued());
    uint32_t avail = Lt(snd_nxt_, data_end) ? data_end - snd_nxt_ : 0;
    uint32_t wnd = std::min(snd_wnd_, cwnd_);
    uint32_t flight = Flight();
    uint32_t usable = wnd > flight ? wnd - flight : 0;
    // Many segments in one frame where the link takes them (GSO), in
    // whole segments but for the last.
    uint32_t max_seg = mss_;
    // Urgent data goes in single segments: a GSO frame's segments would
    // all carry the first one's urgent pointer.
    const bool urgent = UrgentMode() && Lt(snd_nxt_, snd_up_);
    if (uint32_t g = stack_->GsoMax(remote_, now); g > mss_ && !urgent) max_seg = g / mss_ * mss_;
    uint32_t len = std::min({avail, max_seg, usable});
    if (len > mss_ && len < avail) len = len / mss_ * mss_;
    bool fin_now = fin_queued_ && !fin_sent_ && !fin_acked_ && len == avail;
    if (len == 0) {
      if (fin_now && avail == 0) {
        SendSegment(snd_nxt_, kFin | kAck, {}, now);
        fin_sent_ = fin_ever_ = true;
        fin_seq_ = snd_nxt_;
        snd_nxt_++;
        if (Gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
        if (rto_at_ == INT64_MAX) ArmRto(now);
      } else if (avail > 0 && snd_wnd_ == 0 && Flight() == 0 && persist_at_ == INT64_MAX) {
        Arm(&persist_at_, now + std::max(rto_, kMinRto));
      }
      return;
    }
    bool retransmit = Lt(snd_nxt_, snd_max_);
    // tcp_nagle_test: neither Nagle nor the cork holds urgent data back.
    if (len < mss_ && !fin_now && !retransmit && !urgent) {
      if (settings.cork) return;
      // Nagle: a small tail waits while anything is unacked.
      if (len == avail && !settings.nodelay && flight > 0) return;
      // Sender-side silly window avoidance: wait for the window to open.
      if (len < avail && flight > 0) return;
    }
    size_t off = sbuf_off_ + (snd_nxt_ - sbuf_seq_);
    Bytes data(reinterpret_cast<const uint8_t*>(sbuf_.data()) + off, len);
    uint8_t flags = kAck | (len == avail ? kPsh : 0) | (fin_now ? kFin : 0);
    SendSegment(snd_nxt_, flags, data, now);
    if (retransmit) {
      total_retrans_++;
      stack_->mutable_counters().tcp_retrans_segs++;
    } else if (!timing_) {
      timing_ = true;
      timed_seq_ = snd_nxt_ + len;
      timed_at_ = now;
    }
    snd_nxt_ += len;
    if (fin_now) {
      fin_sent_ = fin_ever_ = true;
      fin_seq_ = snd_nxt_;
      snd_nxt_++;
    }
    if (Gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
    if (rto_at_ == INT64_MAX) ArmRto(now);
    persist_at_ = INT64_MAX;
    if (fin_now) return;
  }
}

void TcpEndpoint::RetransmitFrom(uint32_t seq, int64_t now) {
  uint32_t end;
  while (Lt(seq, snd_max_) && InSacked(seq, &end)) seq = end;
  if (!Lt(seq, snd_max_)) return;
  uint32_t data_end = sbuf_seq_ + static_cast<uint32_t>(SendQueued());
  if (fin_sent_ && seq == fin_seq_) {
    SendSegment(seq, kFin | kAck, {}, now);
  } else if (Lt(seq, data_end) && Ge(seq, sbuf_seq_)) {
    uint32_t len = std::min<uint32_t>(mss_, data_end - seq);
    for (const auto& b : sacked_) {
      if (Gt(b[0], seq) && Lt(b[0], seq + len)) len = b[0] - seq;
    }
    size_t off = sbuf_off_ + (seq - sbuf_seq_);
    bool fin = fin_sent_ && seq + len == fin_seq_;
    SendSegment(seq, kAck | (fin ? kFin : 0),
                Bytes(reinterpret_cast<const uint8_t*>(sbuf_.data()) + off, len), now);
    seq += len + (fin ? 1 : 0);
  } else {
    return;
  }
  high_rxt_ = seq;
  total_retrans_++;
  if (stack_ != nullptr) stack_->mutable_counters().tcp_retrans_segs++;
  timing_ = false;  // Karn: no sample from a retransmitted range
}

void TcpEndpoint::SampleRtt(int64_t rtt) {
  if (rtt <= 0) rtt = 1;
  if (srtt_ == 0) {
    srtt_ = rtt;
    rttvar_ = rtt / 2;
  } else {
    int64_t err = rtt - srtt_;
    srtt_ += err / 8;
    rttvar_ += ((err < 0 ? -err : err) - rttvar_) / 4;
  }
  rto_ = std::clamp(srtt_ + std::max<int64_t>(4 * rttvar_, kMinRto / 4) + kMinRto / 4 * 3, kMinRto,
                    kMaxRto);
}

void TcpEndpoint::EnterRecovery(int64_t now) {
  uint32_t flight = snd_max_ - snd_una_;
  // CUBIC's multiplicative decrease, remembering where the window was.
  double w = static_cast<double>(cwnd_) / mss_;
  w_max_ = w;
  cubic_k_ = std::cbrt(w_max_ * (1 - kCubicBeta) / kCubicC);
  epoch_start_ = 0;
  ssthresh_ = std::max<uint32_t>(
      static_cast<uint32_t>(std::min<double>(flight, static_cast<double>(cwnd_)) * kCubicBeta),
      2u * mss_);
  cwnd_ = ssthresh_;
  in_recovery_ = true;
  recover_ = snd_max_;
  high_rxt_ = snd_una_;
  RetransmitFrom(snd_una_, now);
  (void)now;
}

void TcpEndpoint::GrowWindow(uint32_t acked, int64_t now) {
  if (cwnd_ < ssthresh_) {
    cwnd_ += std::min<uint32_t>(acked, 2u * mss_);  // slow start, RFC 3465's L = 2
    return;
  }
  // CUBIC: W(t) = C (t - K)^3 + W_max, and never below what Reno would
  // reach (the TCP-friendly region).
  if (epoch_start_ == 0) {
    epoch_start_ = now;
    double w = static_cast<double>(cwnd_) / mss_;
    if (w_max_ < w) {
      w_max_ = w;
      cubic_k_ = 0;
    }
    ack_count_ = 0;
  }
  double t = static_cast<double>(now - epoch_start_ + srtt_) / kSecond;
  double target = kCubicC * std::pow(t - cubic_k_, 3) + w_max_;
  double rtt = srtt_ > 0 ? static_cast<double>(srtt_) / kSecond : 0.1;
  double reno =
      w_max_ * kCubicBeta + 3 * (1 - kCubicBeta) / (1 + kCubicBeta) * (t / std::max(rtt, 1e-4));
  target = std::max(target, reno);
  double w = static_cast<double>(cwnd_) / mss_;
  if (target > w) {
    // (target - w) / w segments per acked segment, at most one and a half.
    double inc = std::min((target - w) / w, 1.5) * mss_ * (static_cast<double>(acked) / mss_);
    cwnd_ += std::max<uint32_t>(static_cast<uint32_t>(inc), 1);
  } else {
    ack_count_ += acked;  // a slow climb near the plateau
    if (ack_count_ >= 100u * cwnd_ / mss_) {
      cwnd_ += mss_;
      ack_count_ = 0;
    }
  }
  cwnd_ = std::min<uint32_t>(cwnd_, 1u << 30);
}

bool TcpEndpoint::ProcessAck(const TcpHeader& h, size_t data_len, int64_t now) {
  uint32_t ack = h.ack;
  if (Gt(ack, snd_max_)) {
    SendAck(now);  // acks what was never sent
    return false;
  }
  uint32_t wnd = uint32_t{h.window} << snd_wscale_;
  bool window_changed = wnd != snd_wnd_;
  if (Lt(snd_wl1_, h.seq) || (snd_wl1_ == h.seq && Le(snd_wl2_, ack))) {
    snd_wnd_ = wnd;
    snd_wl1_ = h.seq;
    snd_wl2_ = ack;
    if (snd_wnd_ > 0) {
      persist_at_ = INT64_MAX;
      persist_probes_ = 0;
    }
  }
  if (sack_ok_) {
    for (int i = 0; i < h.opts.nsack; i++) MergeSack(h.opts.sack[i][0], h.opts.sack[i][1]);
  }
  if (Lt(ack, snd_una_)) return true;  // old
  if (ack == snd_una_) {
    // A duplicate: it carries nothing else and data is outstanding.
    if (data_len == 0 && !window_changed && (h.flags & (kSyn | kFin)) == 0 &&
        Lt(snd_una_, snd_max_)) {
      dupacks_++;
      if (!in_recovery_ && dupacks_ == 3) {
        EnterRecovery(now);
        cwnd_ += 3u * mss_;
      } else if (in_recovery_) {
        cwnd_ += mss_;  // each duplicate: a segment left the network
        if (sack_ok_ && !sacked_.empty() && Lt(high_rxt_, sacked_.back()[0])) {
          RetransmitFrom(high_rxt_, now);
        }
      }
      Output(now);
    }
    return true;
  }
  // New data acknowledged.
  uint32_t acked = ack - snd_una_;
  if (ts_ok_ && h.opts.has_ts && h.opts.tsecr != 0) {
    SampleRtt((static_cast<int64_t>(TsNow(now) - h.opts.tsecr)) * kMs);
  } else if (timing_ && Ge(ack, timed_seq_)) {
    SampleRtt(now - timed_at_);
  }
  if (timing_ && Ge(ack, timed_seq_)) timing_ = false;
  uint32_t data_start = sbuf_seq_;
  uint32_t data_end = sbuf_seq_ + static_cast<uint32_t>(SendQueued());
  // In sequence space (a buffer may straddle 2^32): the bytes up to the
  // ACK or the end of what is queued, whichever comes first.
  const uint32_t upto = Lt(ack, data_end) ? ack : data_end;
  uint32_t data_acked = Gt(upto, data_start) ? upto - data_start : 0;
  sbuf_off_ += data_acked;
  sbuf_seq_ += data_acked;
  if (sbuf_off_ == sbuf_.size()) {
    sbuf_.clear();
    sbuf_off_ = 0;
  } else if (sbuf_off_ >= 65536 && sbuf_off_ >= sbuf_.size() / 2) {
    sbuf_.erase(0, sbuf_off_);
    sbuf_off_ = 0;
  }
  bytes_acked_ += data_acked;
  snd_una_ = ack;
  if (Lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
  // (fin_seq_ stays once a FIN went, even while an RTO means to send it again.)
  if ((fin_sent_ || fin_ever_) && Gt(ack, fin_seq_)) fin_acked_ = true;
  while (!sacked_.empty() && Le(sacked_.front()[1], snd_una_)) sacked_.erase(sacked_.begin());
  if (!sacked_.empty() && Lt(sacked_.front()[0], snd_una_)) sacked_.front()[0] = snd_una_;
  retries_ = 0;
  backoff_ = 0;
  first_rto_at_ = 0;
  if (in_recovery_) {
    if (Ge(ack, recover_)) {
      in_recovery_ = false;
      cwnd_ = ssthresh_;
    } else {
      // A partial ACK: the next hole goes at once (NewReno).
      cwnd_ = cwnd_ > acked ? cwnd_ - acked + mss_ : mss_;
      RetransmitFrom(snd_una_, now);
    }
  } else {
    GrowWindow(acked, now);
  }
  dupacks_ = 0;
  if (Lt(snd_una_, snd_max_)) {
    Arm(&rto_at_, now + rto_);
  } else {
    rto_at_ = INT64_MAX;
  }
  Notify();
  return true;
}

void TcpEndpoint::QueueData(uint32_t seq, Bytes data, int64_t now) {
  const size_t held = Held();
  QueueDataHeld(seq, data, now);
  AccountHeld(held);
}

void TcpEndpoint::QueueDataHeld(uint32_t seq, Bytes data, int64_t now) {
  if (Lt(seq, rcv_nxt_)) {
    uint32_t skip = rcv_nxt_ - seq;
    NoteDuplicate(seq, skip >= data.size() ? seq + static_cast<uint32_t>(data.size()) : rcv_nxt_);
    if (skip >= data.size()) return;
    data = data.subspan(skip);
    seq = rcv_nxt_;
  }
  // Room for what the window offered, even where the buffer has less
  // (each window is rounded up to its scale rather than taken back, RFC
  // 9293 3.8.6.2.2): data dropped inside the offer makes a hole the
  // sender must recover from. Only the stack-wide limit (memory pressure)
  // drops it, as Linux's tcp_mem does.
  const uint32_t offered = OfferedWindow();
  uint32_t space = ReceiveSpace();
  if (offered > space) {
    const size_t all = stack_->rx_buffered_;
    const size_t room = all < stack_->rx_limit_ ? stack_->rx_limit_ - all : 0;
    space = std::max<uint32_t>(space, static_cast<uint32_t>(std::min<size_t>(offered, room)));
  }
  uint32_t offset = seq - rcv_nxt_;
  Counters& c = stack_->mutable_counters();
  if (offset >= space) {  // nowhere to keep it: it comes again
    (offset != 0 ? c.tcp_ofo_drop : space == 0 ? c.tcp_zero_window_drop : c.tcp_rcvq_drop)++;
    return;
  }
  if (data.size() > space - offset) {
    (offset == 0 ? c.tcp_rcvq_drop : c.tcp_ofo_drop)++;
    data = data.first(space - offset);
  }
  if (data.empty()) return;
  if (offset == 0) {
    AppendInOrder(reinterpret_cast<const char*>(data.data()), data.size());
    rcv_nxt_ += static_cast<uint32_t>(data.size());
    bytes_received_ += data.size();
    // What waited past the hole may follow now.
    while (!ooo_.empty() && ooo_.begin()->first <= rcv_pos_) {
      auto it = ooo_.begin();
      const size_t piece = it->second.size();
      uint64_t end = it->first + piece;
      if (end > rcv_pos_) {
        size_t from = static_cast<size_t>(rcv_pos_ - it->first);
        rcv_nxt_ += static_cast<uint32_t>(end - rcv_pos_);
        bytes_received_ += end - rcv_pos_;
        if (from == 0) {
          AppendInOrder(std::move(it->second));
        } else {
          AppendInOrder(it->second.data() + from, piece - from);
        }
      }
      ooo_bytes_ -= piece;  // (it->second may be moved from)
      ooo_.erase(it);
    }
    unacked_segs_++;
    // Every second full segment, or at once when a hole just closed.
    if (!ooo_.empty()) {
      SendAck(now);
    } else if (unacked_segs_ >= 2 || data.size() >= 2u * adv_mss_) {
      AckData(now);
    } else if (delack_at_ == INT64_MAX) {
      Arm(&delack_at_, now + kDelayedAck);
    }
    Notify();
    return;
  }
  uint64_t pos = rcv_pos_ + offset;
  // A segment that continues the last piece past the hole joins it (one
  // entry per run of data, not per segment), and the pieces are few: a
  // peer sending tiny segments past a hole cannot make many, and each
  // costs a segment's worth of the window.
  if (!ooo_.empty()) {
    auto last = std::prev(ooo_.end());
    if (last->first + last->second.size() == pos) {
      last->second.append(reinterpret_cast<const char*>(data.data()), data.size());
      ooo_bytes_ += data.size();
      c.tcp_ofo_queue++;
      SendAck(now);
      return;
    }
  }
  constexpr size_t kMaxPieces = 64;
  if (ooo_.size() >= kMaxPieces && ooo_.find(pos) == ooo_.end()) {
    c.tcp_ofo_drop++;
    SendAck(now);  // dropped: it comes again
    return;
  }
  auto [it, inserted] = ooo_.emplace(pos, std::string());
  if (!inserted && it->second.size() >= data.size()) {
    NoteDuplicate(seq, seq + static_cast<uint32_t>(data.size()));
  }
  if (inserted || it->second.size() < data.size()) {
    c.tcp_ofo_queue++;
    ooo_bytes_ += data.size() - it->second.size();
    it->second.assign(reinterpret_cast<const char*>(data.data()), data.size());
  }
  SendAck(now);  // a duplicate ACK with SACK blocks, at once
}

void TcpEndpoint::ReceiveFin(int64_t now) {
  rcv_nxt_++;
  fin_received_ = true;
  switch (state_) {
    case kSynRecv:
    case kEstablished:
      state_ = kCloseWait;
      break;
    case kFinWait1:
      if (fin_acked_) {
        SetState(kTimeWait, now);
      } else {
        state_ = kClosing;
      }
      break;
    case kFinWait2:
      SetState(kTimeWait, now);
      break;
    default:
      break;
  }
  SendAck(now);
  Notify();
}

void TcpEndpoint::InputSynSent(const TcpHeader& h, int64_t now) {
  bool ack_ok = false;
  if (h.flags & kAck) {
    if (Le(h.ack, iss_) || Gt(h.ack, snd_max_)) {
      if (!(h.flags & kRst)) stack_->SendReset(local_, remote_, h, 0, now);
      return;
    }
    ack_ok = true;
  }
  if (h.flags & kRst) {
    if (ack_ok) {
      stack_->mutable_counters().tcp_attempt_fails++;
      Fail(ECONNREFUSED);
    }
    return;
  }
  if (!(h.flags & kSyn)) return;
  irs_ = h.seq;
  rcv_nxt_ = h.seq + 1;
  Negotiate(h.opts);
  last_recv_ = now;
  if (ack_ok) {
    snd_una_ = h.ack;
    snd_wnd_ = uint32_t{h.window} << snd_wscale_;
    snd_wl1_ = h.seq;
    snd_wl2_ = h.ack;
    if (timing_ || backoff_ == 0) SampleRtt(now - (rto_at_ - (rto_ << backoff_)));
    timing_ = false;
    retries_ = backoff_ = 0;
    rto_at_ = INT64_MAX;
    state_ = kEstablished;
    if (settings.keepalive) Arm(&keepalive_at_, now + int64_t{settings.keepidle} * kSecond);
    SendAck(now);
    Output(now);
    Notify();
    return;
  }
  // Simultaneous open.
  state_ = kSynRecv;
  SendSyn(now);
  ArmRto(now);
}

void TcpEndpoint::Input(const TcpHeader& h, Bytes data, int64_t now) {
  if (stack_ == nullptr || state_ == kClosed) return;
  segs_in_++;
  if (state_ == kSynSent) {
    InputSynSent(h, now);
    return;
  }
  uint32_t seg_len =
      static_cast<uint32_t>(data.size()) + ((h.flags & kSyn) ? 1 : 0) + ((h.flags & kFin) ? 1 : 0);
  uint32_t wnd = OfferedWindow();
  auto in_window = [&](uint32_t s) { return Le(rcv_nxt_, s) && Lt(s, rcv_nxt_ + wnd); };
  bool acceptable;
  if (seg_len == 0) {
    acceptable = wnd == 0 ? h.seq == rcv_nxt_ : in_window(h.seq);
  } else {
    acceptable = wnd != 0 && (in_window(h.seq) || in_window(h.seq + seg_len - 1));
  }
  bool zero_window_data = !acceptable && wnd == 0 && h.seq == rcv_nxt_;
  if (!acceptable && !zero_window_data) {
    if (!(h.flags & kRst)) {
      // A FIN sent again restarts TIME_WAIT (its ACK was lost); nothing
      // else may keep it.
      if (state_ == kTimeWait && (h.flags & kFin) && h.seq + seg_len == rcv_nxt_) {
        Arm(&timewait_at_, now + kTimeWaitLen);
      }
      if (state_ == kSynRecv && !passive_ && (h.flags & (kSyn | kAck)) == (kSyn | kAck) &&
          h.seq == irs_ && Lt(snd_una_, h.ack) && Le(h.ack, snd_max_)) {
        // A simultaneous open completes with the peer's SYN-ACK.
        snd_una_ = h.ack;
        snd_wnd_ = uint32_t{h.window} << snd_wscale_;
        snd_wl1_ = h.seq;
        snd_wl2_ = h.ack;
        rto_at_ = INT64_MAX;
        retries_ = backoff_ = 0;
        state_ = kEstablished;
        SendAck(now);
        Notify();
      } else if (state_ == kSynRecv && (h.flags & kSyn) && h.seq == irs_) {
        SendSyn(now);  // our SYN-ACK was lost
      } else {
        // Data wholly received before: reported as a duplicate.
        if (!data.empty() && Le(h.seq + static_cast<uint32_t>(data.size()), rcv_nxt_)) {
          NoteDuplicate(h.seq, h.seq + static_cast<uint32_t>(data.size()));
        }
        SendAck(now);
      }
    }
    return;
  }
  // tcp_urg for every acceptable segment of a connection that takes data
  // (a pure ACK or a closed window's probe announces urgent data too),
  // before the data is trimmed; its byte is taken when it arrives in order.
  if ((h.flags & kUrg) && !(h.flags & (kSyn | kRst)) &&
      (state_ == kEstablished || state_ == kFinWait1 || state_ == kFinWait2) && !orphan_) {
    CheckUrgent(h.seq, h.urgent);
  }
  if (zero_window_data) data = {};
  last_recv_ = now;
  probes_ = 0;
  if (settings.keepalive && keepalive_at_ != INT64_MAX) {
    Arm(&keepalive_at_, now + int64_t{settings.keepidle} * kSecond);
  }
  if (ts_ok_ && h.opts.has_ts && Le(h.seq, last_ack_sent_)) ts_recent_ = h.opts.tsval;

  if (h.flags & kRst) {
    // RFC 5961 3.2: only the exact sequence number resets; the rest of
    // the window gets a challenge ACK.
    if (h.seq != rcv_nxt_) {
      SendAck(now);
      return;
    }
    if (state_ == kSynRecv) {
      // A passive open just goes; an active one (a simultaneous open) is
      // refused.
      if (passive_) {
        SetState(kClosed, now);
      } else {
        Fail(ECONNREFUSED);
      }
      return;
    }
    bool closing = state_ == kClosing || state_ == kLastAck || state_ == kTimeWait;
    if (closing) {
      SetState(kClosed, now);
      Notify();
    } else {
      Fail(state_ == kCloseWait ? EPIPE : ECONNRESET);  // as tcp_reset reports it
    }
    return;
  }
  if (h.flags & kSyn) {
    SendAck(now);  // RFC 5961 4.2: a challenge ACK
    return;
  }
  if (!(h.flags & kAck)) return;
  if (state_ == kSynRecv) {
    if (!Lt(snd_una_, h.ack) || Gt(h.ack, snd_max_)) {
      stack_->SendReset(local_, remote_, h, data.size(), now);
      return;
    }
    std::shared_ptr<TcpListener> l = listener_.lock();
    if (passive_ && (l == nullptr || l->closed)) {
      // Its listener is gone: nobody would ever accept it.
      SendRst(h.ack, now);
      SetState(kClosed, now);
      return;
    }
    snd_una_ = h.ack;
    snd_wnd_ = uint32_t{h.window} << snd_wscale_;
    snd_wl1_ = h.seq;
    snd_wl2_ = h.ack;
    if (backoff_ == 0) SampleRtt(now - (rto_at_ - rto_));
    rto_at_ = INT64_MAX;
    retries_ = backoff_ = 0;
    state_ = kEstablished;
    if (l != nullptr) {
      l->half_open--;
      listener_.reset();
      if (l->closed || static_cast<int>(l->ready.size()) > l->backlog) {
        SendRst(snd_nxt_, now);
        SetState(kClosed, now);
        return;
      }
      l->ready.push_back(shared_from_this());
      if (l->notify) l->notify();
    }
    if (settings.keepalive) Arm(&keepalive_at_, now + int64_t{settings.keepidle} * kSecond);
    if (!passive_) Notify();  // a simultaneous open's connect() is done
  } else if (!ProcessAck(h, data.size(), now)) {
    return;
  }
  if (state_ == kFinWait1 && fin_acked_) SetState(kFinWait2, now);
  if (state_ == kClosing && fin_acked_) SetState(kTimeWait, now);
  if (state_ == kLastAck && fin_acked_) {
    SetState(kClosed, now);
    Notify();
    return;
  }
  if (!data.empty()) {
    if (state_ == kEstablished || state_ == kFinWait1 || state_ == kFinWait2) {
      if (orphan_) {
        // Data for a socket that is gone (RFC 9293 3.10.7.4's reset).
        SendRst(snd_nxt_, now);
        Fail(ECONNRESET);
        return;
      }
      QueueData(h.seq, data, now);
    }
  }
  if ((h.flags & kFin) && !fin_received_ &&
      h.seq + static_cast<uint32_t>(data.size()) == rcv_nxt_ && ooo_.empty()) {
    ReceiveFin(now);
  } else if ((h.flags & kFin) && !fin_received_) {
    SendAck(now);  // the FIN came past a hole: it comes again
  }
  Output(now);
}

void TcpEndpoint::OnRto(int64_t now) {
  if (state_ == kSynSent || state_ == kSynRecv) {
    int limit = state_ == kSynSent ? settings.syn_retries : kSynAckRetries;
    if (++retries_ > limit) {
      if (state_ == kSynSent) stack_->mutable_counters().tcp_attempt_fails++;
      Fail(ETIMEDOUT);
      return;
    }
    backoff_++;
    total_retrans_++;
    stack_->mutable_counters().tcp_retrans_segs++;
    SendSyn(now);
    ArmRto(now);
    return;
  }
  if (first_rto_at_ == 0) first_rto_at_ = now;
  bool expired = settings.user_timeout_ms != 0
                     ? now - first_rto_at_ >= int64_t{settings.user_timeout_ms} * kMs
                     : retries_ >= kMaxRetries;
  if (expired) {
    SendRst(snd_nxt_, now);
    Fail(ETIMEDOUT);
    return;
  }
  retries_++;
  if (backoff_ < 16 && (rto_ << (backoff_ + 1)) <= kMaxRto) backoff_++;
  // Everything in flight is presumed lost: the window starts again from
  // one segment, CUBIC remembers where it was, and sending resumes from
  // the first unacknowledged byte (skipping what the peer SACKed).
  if (!in_recovery_ || dupacks_ == 0) {
    double w = static_cast<double>(cwnd_) / mss_;
    w_max_ = w;
    cubic_k_ = std::cbrt(w_max_ * (1 - kCubicBeta) / kCubicC);
    ssthresh_ =
        std::max<uint32_t>(static_cast<uint32_t>((snd_max_ - snd_una_) * kCubicBeta), 2u * mss_);
  }
  epoch_start_ = 0;
  cwnd_ = mss_;
  in_recovery_ = false;
  dupacks_ = 0;
  timing_ = false;
  snd_nxt_ = snd_una_;
  if (fin_sent_ && !fin_acked_) fin_sent_ = false;
  rto_at_ = INT64_MAX;
  Output(now);
  if (rto_at_ == INT64_MAX && Lt(snd_una_, snd_max_)) ArmRto(now);
}

void TcpEndpoint::OnTimer(int64_t now) {
  if (stack_ == nullptr) return;
  if (timewait_at_ <= now) {
    SetState(kClosed, now);
    return;
  }
  if (orphan_at_ <= now) {
    SendRst(snd_nxt_, now);
    SetState(kClosed, now);
    return;
  }
  if (rto_at_ <= now) {
    rto_at_ = INT64_MAX;
    OnRto(now);
    if (state_ == kClosed) return;
  }
  if (delack_at_ <= now) SendAck(now);
  if (persist_at_ <= now) {
    // A zero-window probe: an old byte's sequence, answered with the
    // window as it is.
    // An orphan whose peer keeps its window shut gives up (as
    // tcp_orphan_retries' 8 probes), and so does one past TCP_USER_TIMEOUT.
    if ((orphan_ && persist_probes_ >= 8) ||
        (settings.user_timeout_ms != 0 && persist_probes_ > 0 &&
         now - persist_since_ >= int64_t{settings.user_timeout_ms} * kMs)) {
      SendRst(snd_nxt_, now);
      Fail(ETIMEDOUT);
      return;
    }
    if (persist_probes_ == 0) persist_since_ = now;
    // tcp_write_wakeup: urgent data within reach goes first as a probe the
    // peer takes (at snd_una_, carrying the pointer).
    if (UrgentMode() && Gt(snd_up_, snd_una_) && Lt(snd_up_, snd_una_ + 0xffff)) {
      SendSegment(snd_una_, kAck, {}, now);
    }
    SendSegment(snd_una_ - 1, kAck, {}, now);
    if (persist_probes_ < 16) persist_probes_++;
    Arm(&persist_at_, now + std::min(std::max(rto_, kMinRto) << persist_probes_, kMaxRto));
  }
  if (keepalive_at_ <= now) {
    if (!settings.keepalive || !Established()) {
      keepalive_at_ = INT64_MAX;
    } else if (Lt(snd_una_, snd_max_) || SendQueued() != 0) {
      // tcp_keepalive_timer: alive without keepalive while data is out or
      // queued (the retransmission timer watches the peer).
      Arm(&keepalive_at_, now + int64_t{settings.keepidle} * kSecond);
    } else if (probes_ >= settings.keepcnt) {
      SendRst(snd_nxt_, now);
      Fail(ETIMEDOUT);
      return;
    } else {
      SendSegment(snd_una_ - 1, kAck, {}, now);
      probes_++;
      Arm(&keepalive_at_, now + int64_t{settings.keepintvl} * kSecond);
    }
  }
}

void TcpEndpoint::ApplySettings(const TcpSettings& before, int64_t now) {
  const int64_t idle = int64_t{settings.keepidle} * kSecond;
  if (!settings.keepalive) {
    keepalive_at_ = INT64_MAX;
    probes_ = 0;
  } else if (Established() && state_ != kTimeWait) {
    if (!before.keepalive) {
      Arm(&keepalive_at_, now + idle);  // tcp_set_keepalive
    } else if (before.keepidle != settings.keepidle) {
      // tcp_sock_set_keepidle_locked: idle since the last segment.
      Arm(&keepalive_at_, std::max(now, last_recv_ + idle));
    }
  }
  Output(now);
}

int64_t TcpEndpoint::Deadline() const {
  return std::min({rto_at_, delack_at_, persist_at_, keepalive_at_, timewait_at_, orphan_at_});
}

TcpInfoData TcpEndpoint::Info(int64_t now) const {
  TcpInfoData i;
  i.state = state_;
  i.retransmits = static_cast<uint8_t>(std::min(retries_, 255));
  i.backoff = static_cast<uint8_t>(backoff_);
  i.options = (ts_ok_ ? 1 : 0) | (sack_ok_ ? 2 : 0) | (snd_wscale_ || rcv_wscale_ ? 4 : 0);
  i.wscale = static_cast<uint8_t>(snd_wscale_ | (rcv_wscale_ << 4));
  i.rto_us = static_cast<uint32_t>((rto_ << backoff_) / 1000);
  i.snd_mss = mss_;
  i.rcv_mss = adv_mss_;
  i.unacked = (snd_max_ - snd_una_ + mss_ - 1) / mss_;
  i.rtt_us = static_cast<uint32_t>(srtt_ / 1000);
  i.rttvar_us = static_cast<uint32_t>(rttvar_ / 1000);
  i.snd_ssthresh = ssthresh_ == UINT32_MAX ? 0x7fffffff : ssthresh_ / mss_;
  i.snd_cwnd = cwnd_ / mss_;
  i.advmss = adv_mss_;
  i.rcv_space = ReceiveSpace();
  i.total_retrans = total_retrans_;
  i.bytes_acked = bytes_acked_;
  i.bytes_received = bytes_received_;
  i.segs_in = segs_in_;
  i.segs_out = segs_out_;
  (void)now;
  return i;
}

}  // namespace husk::netstack
