#include "net/connection.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/strip.h"
#include "boost/asio/post.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "ledger/status.h"
#include "net/limits.h"
#include "net/log.h"
#include "net/wire.h"

namespace pointledger::net {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using TlsStream = asio::ssl::stream<tcp::socket>;

template <typename Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

// All state is touched only by the connection's own I/O thread (one thread
// per io_context), except OnCommitted/Shutdown/Abort, which post to it.
template <typename Stream>
class ConnectionImpl final : public Connection,
                             public std::enable_shared_from_this<ConnectionImpl<Stream>> {
 public:
  template <typename... StreamArgs>
  ConnectionImpl(uint64_t id, const ConnectionEnv* env, StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...),
        id_(id),
        env_(*env),
        limits_(env->config->limits),
        timer_(stream_.get_executor()) {
    ErrorCode ec;
    const tcp::endpoint peer = stream_.lowest_layer().remote_endpoint(ec);
    peer_ = ec ? std::string("unknown peer") : StrCat(peer.address().to_string(), ":", peer.port());
  }

  void Start() override {
    served_ = true;  // before the post: the connection's thread sees it
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->DoStart(); });
  }

  void StartRefused(std::string message) override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this(), m = std::move(message)] {
      // A refused connection only answers server_busy and discards input
      // while it lingers: small buffers, since nothing bounds how many are
      // refused (connections_max bounds the served ones).
      self->in_.resize(kRefusedReadBufferBytes);
      self->slots_.resize(1);
      if constexpr (kIsTls<Stream>) {
        // The handshake first, or the client could not read why. It gets
        // as long as a refusal lingers, not idle_timeout_s: a refused
        // connection counts as open, and clients that never say hello must
        // not keep the server refusing for minutes.
        self->refusing_ = true;
        self->ArmTimer(SteadyClock::now() + std::chrono::milliseconds(kLingerMs));
        self->state_ = State::kHandshake;
        self->stream_.async_handshake(
            asio::ssl::stream_base::server, [self, m](const ErrorCode& ec) {
              if (self->state_ == State::kClosed) return;
              if (ec) {
                self->Close(StrCat("TLS handshake failed: ", ec.message(), " (refusing: ", m, ")"));
                return;
              }
              self->refusing_ = false;  // the answer goes out like a plain refusal's
              self->ArmTimer(SteadyClock::now() + std::chrono::seconds(self->limits_.idle_timeout_s));
              self->state_ = State::kOpen;
              self->Refuse(0, wire::ConnError::server_busy, m);
            });
        return;
      }
      self->ArmTimer(SteadyClock::now() + std::chrono::seconds(self->limits_.idle_timeout_s));
      self->state_ = State::kOpen;
      self->Refuse(0, wire::ConnError::server_busy, m);
    });
  }

  void Shutdown() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->state_ == State::kHandshake) {
        // Nothing in flight yet, and a drain would linger: a read on the TLS
        // stream while its handshake is under way, which Asio does not
        // allow (found in review, session 30).
        self->Close("server shutting down (during the TLS handshake)");
      } else if (self->state_ == State::kOpen) {
        self->Drain("server shutting down");
      }
    });
  }

  void Abort() override {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this()] { self->Close("aborted at shutdown"); });
  }

  void OnCommitted(std::unique_ptr<CommitJob> job) override {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this(), job = std::move(job)]() mutable {
                 self->OnJobDone(std::move(job));
               });
  }

 private:
  enum class State { kHandshake, kOpen, kDraining, kLingering, kClosed };

  // One answer slot per request, in request order.
  struct Slot {
    uint64_t request_id = 0;
    bool ready = false;
    bool close_after = false;  // a refusal: the connection closes after it
    // A batch at the committer: reads after it wait (read your writes). A
    // report still running is not ready either, but nothing waits for it.
    bool at_committer = false;
    std::vector<uint8_t> bytes;
    std::vector<uint8_t> deferred_request;  // a read waiting for earlier batches
    std::shared_ptr<const ApiKey> deferred_key;  // the key it was accepted with
  };

  // ---- Start, timers, close.

  void DoStart() {
    // Allocated here, on this connection's thread, not at accept.
    in_.resize(kReadBufferBytesInitial);
    slots_.resize(limits_.inflight_requests_max);
    last_progress_ = SteadyClock::now();
    hello_deadline_ = last_progress_ + std::chrono::seconds(HelloTimeoutSeconds());
    ArmTimer(hello_deadline_);
    if constexpr (kIsTls<Stream>) {
      state_ = State::kHandshake;
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](const ErrorCode& ec) {
                                self->OnHandshake(ec);
                              });
    } else {
      state_ = State::kOpen;
      ReadMore();
    }
  }

  void OnHandshake(const ErrorCode& ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      Close(StrCat("TLS handshake failed: ", ec.message()));
      return;
    }
    if (state_ == State::kHandshake) state_ = State::kOpen;
    last_progress_ = SteadyClock::now();
    Pump();
    MaybeFinishDrain();
  }

  uint32_t HelloTimeoutSeconds() const { return std::min(limits_.idle_timeout_s, kHelloTimeoutSeconds); }

  // Re-arming cancels the wait before, but a wait that has already expired
  // has its handler queued, and it then runs with success, not
  // operation_aborted: a stale idle timeout would end a linger armed just
  // after it at once. The generation tells the handler it is stale.
  void ArmTimer(SteadyClock::time_point at) {
    timer_.expires_at(at);
    timer_.async_wait([self = this->shared_from_this(), generation = ++timer_generation_](
                          const ErrorCode& ec) { self->OnTimer(ec, generation); });
  }

  void OnTimer(const ErrorCode& ec, uint64_t generation) {
    if (ec == asio::error::operation_aborted || generation != timer_generation_ ||
        state_ == State::kClosed) {
      return;
    }
    const SteadyClock::time_point now = SteadyClock::now();
    if (state_ == State::kLingering) {
      Close(close_reason_);
      return;
    }
    if (refusing_ && state_ == State::kHandshake) {
      Close("refused (connections_max) and no TLS handshake within the linger time");
      return;
    }
    const auto idle = std::chrono::seconds(limits_.idle_timeout_s);
    if (key_ == nullptr && state_ != State::kDraining) {
      if (now >= hello_deadline_) {
        Close(StrCat("no Hello within ", HelloTimeoutSeconds(), " s"));
      } else {
        ArmTimer(hello_deadline_);
      }
      return;
    }
    if (now < last_progress_ + idle) {
      ArmTimer(last_progress_ + idle);
    } else if (jobs_pending_ > 0 || reports_pending_ > 0) {
      ArmTimer(now + idle);  // waiting for the disk or a report, not for the client
    } else if (writing_) {
      Close("answers not read within idle_timeout_s");
    } else if (in_end_ > in_begin_) {
      Close("a request not completed within idle_timeout_s");
    } else {
      Close("idle timeout");
    }
  }

  // No more requests; close once everything in flight is answered.
  void Drain(std::string reason) {
    state_ = State::kDraining;
    close_reason_ = std::move(reason);
    MaybeFinishDrain();
  }

  // Lingers rather than closes: a client that pipelines has requests we
  // will not read in the socket, and a close with unread input sends a
  // reset, which makes the client's kernel drop answers it has not read
  // yet (found in review, session 20: a SIGTERM under load committed
  // batches whose answers never arrived).
  void MaybeFinishDrain() {
    if (state_ == State::kDraining && slot_count_ == 0 && jobs_pending_ == 0 &&
        reports_pending_ == 0 && !writing_) {
      Linger();
    }
  }

  // After the last answer (of a refused connection, or a drained one):
  // half-close and discard input for a moment, so that the client reads
  // our answers, not a reset; its EOF or the timer ends it.
  void Linger() {
    state_ = State::kLingering;
    ErrorCode ec;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ec);
    ArmTimer(SteadyClock::now() + std::chrono::milliseconds(kLingerMs));
    in_begin_ = in_end_ = 0;
    ReadMore();
  }

  void Close(const std::string& reason) {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    closed_.store(true, std::memory_order_release);
    timer_.cancel();
    ErrorCode ec;
    stream_.lowest_layer().close(ec);
    // The counts first: once the line is out, its slot is free.
    env_.counters->open.fetch_sub(1, std::memory_order_relaxed);
    if (served_) env_.counters->served.fetch_sub(1, std::memory_order_relaxed);
    LogLine(StrCat("connection ", id_, " closed: ", reason, " (", requests_, " requests)"));
    env_.registry->Remove(id_);
  }

  // ---- Reading and framing.

  bool CanTakeRequest() const {
    return slot_count_ < slots_.size() && queued_bytes_ < limits_.output_bytes_max;
  }

  // Until a good Hello, only a frame a Hello can fill: an unauthenticated
  // connection never grows its read buffer.
  uint32_t FrameBytesMax() const {
    return key_ == nullptr ? std::min(limits_.frame_bytes_max, kHelloFrameBytesMax)
                           : limits_.frame_bytes_max;
  }

  // Room to read more of a frame of `frame_bytes` that starts at in_begin_.
  // The buffer grows, doubling, only once the bytes that have arrived fill
  // it, never straight to the length the prefix claims: a 4-byte prefix
  // must not make the server allocate frame_bytes_max.
  // REQUIRES: no read pending (it reads into the buffer in place).
  void MakeRoom(size_t frame_bytes) {
    PL_CHECK(!reading_);
    if (in_.size() - in_begin_ >= frame_bytes) return;  // fits where it is
    Compact();
    if (in_end_ < in_.size()) return;  // room to read more
    in_.resize(std::min(frame_bytes, 2 * in_.size()));
  }

  void Compact() {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }

  // Frames wait in the buffer until the next turn; ReadMore reads no more
  // meanwhile (the buffer may be full of them).
  void YieldTurn() {
    if (turn_posted_) return;
    turn_posted_ = true;
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->turn_posted_ = false;
      if (self->state_ == State::kOpen) {
        self->Pump();
      } else if (self->state_ == State::kLingering) {
        self->ReadMore();  // Linger's own ReadMore found the turn posted
      }
    });
  }

  void ReadMore() {
    if (reading_ || turn_posted_) return;
    if (state_ == State::kLingering) {
      in_begin_ = in_end_ = 0;  // discarding
    } else if (state_ != State::kOpen || !CanTakeRequest() || input_ended_) {
      return;  // backpressure: the socket is read again when answers go out
    }
    if (in_end_ == in_.size()) Compact();
    PL_CHECK(in_end_ < in_.size());
    reading_ = true;
    stream_.async_read_some(
        asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
        [self = this->shared_from_this()](const ErrorCode& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const ErrorCode& ec, size_t n) {
    reading_ = false;
    if (state_ == State::kClosed) return;
    if (state_ == State::kLingering) {
      if (ec) {
        Close(close_reason_);
      } else {
        ReadMore();
      }
      return;
    }
    if (ec) {
      if (ec != asio::error::eof && ec != asio::ssl::error::stream_truncated) {
        Close(StrCat("read error: ", ec.message()));
        return;
      }
      // The client finished sending; answer every request it sent, then
      // close. Frames past inflight_requests_max wait in the buffer for
      // slots, as they would with the socket open (until session 30 they
      // were dropped unanswered: a client that pipelined and half-closed
      // lost all but the first 64).
      input_ended_ = true;
      Pump();
      MaybeFinishDrain();
      return;
    }
    // Progress is a request begun or completed, not a byte: a client that
    // trickles a frame (slowloris) must finish it within idle_timeout_s.
    if (in_end_ == in_begin_) last_progress_ = SteadyClock::now();
    in_end_ += n;
    if (state_ == State::kOpen) Pump();
  }

  void Pump() {
    ProcessInput();
    if (input_ended_ && state_ == State::kOpen && !FrameBuffered()) {
      Drain(in_end_ == in_begin_ ? std::string("closed by client")
                                 : StrCat("closed by client in the middle of a frame (",
                                          in_end_ - in_begin_, " bytes of it)"));
    }
    Flush();
    ReadMore();
  }

  // A whole frame waits in the buffer (ProcessInput stopped at a limit).
  bool FrameBuffered() const {
    const size_t available = in_end_ - in_begin_;
    return available >= kFrameHeaderBytes &&
           available >= kFrameHeaderBytes + DecodeFrameLength(in_.data() + in_begin_);
  }

  // Takes every complete frame in the buffer, as far as the limits allow,
  // or (`may_yield`) until this turn's answers reach kAnswerBytesPerTurn:
  // then it yields the thread to the other connections and carries on in
  // a posted turn. A read may be pending into in_[in_end_, size): while it
  // is, the buffer's layout (in_end_, its size, its place) must not change.
  void ProcessInput(bool may_yield = true) {
    const uint64_t queued_at_start = queued_bytes_;
    while (state_ == State::kOpen && CanTakeRequest()) {
      if (may_yield && queued_bytes_ >= queued_at_start + kAnswerBytesPerTurn) {
        YieldTurn();
        break;
      }
      const size_t available = in_end_ - in_begin_;
      if (available < kFrameHeaderBytes) break;
      const uint32_t length = DecodeFrameLength(in_.data() + in_begin_);
      if (length > FrameBytesMax()) {
        Refuse(0, wire::ConnError::request_too_large,
               StrCat("a frame of ", length, " bytes; ",
                      key_ == nullptr ? "before Hello the limit is " : "frame_bytes_max is ",
                      FrameBytesMax()));
        break;
      }
      const size_t frame_bytes = kFrameHeaderBytes + length;
      if (available < frame_bytes) {
        if (!reading_) MakeRoom(frame_bytes);
        break;
      }
      ++requests_;
      last_progress_ = SteadyClock::now();
      const uint8_t* start = in_.data() + in_begin_;
      if (reinterpret_cast<uintptr_t>(start) % 8 != 0) {
        // FlatBuffers reads scalars in place: give it an 8-aligned copy.
        // Well-behaved clients send 8-byte multiples, so this is rare.
        aligned_.resize((frame_bytes + 7) / 8);
        std::memcpy(aligned_.data(), start, frame_bytes);
        start = reinterpret_cast<const uint8_t*>(aligned_.data());
      }
      HandleFrame(std::span<const uint8_t>(start, frame_bytes));
      in_begin_ += frame_bytes;
    }
    if (in_begin_ == in_end_ && !reading_) {
      in_begin_ = in_end_ = 0;
      // Give back a buffer grown for one big frame.
      if (in_.size() > 4 * kReadBufferBytesInitial) {
        std::vector<uint8_t>(kReadBufferBytesInitial).swap(in_);
      }
    }
  }

  void HandleFrame(std::span<const uint8_t> frame) {
    absl::StatusOr<const wire::Request*> verified = VerifyRequestFrame(frame);
    if (!verified.ok()) {
      // The status names the SPEC word already; Refuse adds it (the log
      // read "malformed_request: malformed_request: ..." until session 30).
      Refuse(0, wire::ConnError::malformed_request,
             std::string(absl::StripPrefix(verified.status().message(), "malformed_request: ")));
      return;
    }
    const wire::Request& request = **verified;
    if (request.version() != 1) {
      Refuse(request.request_id(), wire::ConnError::unsupported_version,
             StrCat("request version ", request.version(), "; this server speaks 1"));
      return;
    }
    if (key_ == nullptr) {
      HandleHello(request);
      return;
    }
    if (!KeyStillValid()) {
      Refuse(request.request_id(), wire::ConnError::unauthorized,
             StrCat("the API key of '", key_->principal,
                    "' was revoked (the server reloaded its keys)"));
      return;
    }
    switch (request.body_type()) {
      case wire::RequestBody::Hello:
        Refuse(request.request_id(), wire::ConnError::malformed_request, "a second Hello");
        return;
      case wire::RequestBody::Batch:
        HandleBatch(request);
        return;
      default: {
        if (frame.size() > kFrameHeaderBytes + kReadFrameBytesMax) {
          Refuse(request.request_id(), wire::ConnError::request_too_large,
                 StrCat("a read request of ", frame.size() - kFrameHeaderBytes,
                        " bytes; the limit is ", kReadFrameBytesMax));
          return;
        }
        const size_t slot = AddSlot(request.request_id());
        if (jobs_pending_ > 0) {
          // Read your writes: a read after a batch on this connection is
          // answered once that batch is committed (RunDeferredReads).
          slots_[slot].deferred_request.assign(frame.begin(), frame.end());
          slots_[slot].deferred_key = key_;
          ++deferred_reads_;
          return;
        }
        AnswerRead(slot, frame, key_);
      }
    }
  }

  // `frame`: a verified request frame, length prefix included; `key`: the
  // key it was accepted with (a reload since may have changed key_).
  void AnswerRead(size_t slot, std::span<const uint8_t> frame, const std::shared_ptr<const ApiKey>& key) {
    const wire::Request& request = *wire::GetSizePrefixedRequest(frame.data());
    if (env_.reports != nullptr && Service::IsReport(request.body_type())) {
      RunReport(slot, frame, key);
      return;
    }
    fbb_.Clear();
    env_.service->Read(request, *key, &fbb_);
    SetReady(slot);
  }

  // A report runs on the report thread with its own copy of the request
  // (8-aligned: operator new) and builder; its answer comes back to this
  // thread and takes its slot, so answers stay in request order.
  void RunReport(size_t slot, std::span<const uint8_t> frame, const std::shared_ptr<const ApiKey>& key) {
    if (reports_pending_ >= kReportsPendingMax) {
      // One report thread serves every connection: a queue of audits from
      // one client would hold up everyone's (found by a hostile-client
      // review, session 19).
      fbb_.Clear();
      const wire::Request& request = *wire::GetSizePrefixedRequest(frame.data());
      FinishResponse(fbb_, request.request_id(), wire::ConnError::server_busy,
                     StrCat("at most ", kReportsPendingMax, " reports in flight on a connection; retry"),
                     wire::ResponseBody::NONE, 0);
      SetReady(slot);
      return;
    }
    ++reports_pending_;
    env_.counters->reports_running.fetch_add(1, std::memory_order_relaxed);
    // The key by value: this connection may look its key up again (a
    // reload) while the report runs on the report thread.
    asio::post(*env_.reports, [self = this->shared_from_this(), slot, key,
                               request = std::vector<uint8_t>(frame.begin(), frame.end())] {
      // A connection closed meanwhile gets no answer: not run for nobody
      // (the server's stop would wait for it).
      std::vector<uint8_t> answer;
      if (!self->closed_.load(std::memory_order_acquire)) {
        flatbuffers::FlatBufferBuilder fbb;
        self->env_.service->Read(*wire::GetSizePrefixedRequest(request.data()), *key, &fbb);
        answer.assign(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
      }
      self->env_.counters->reports_running.fetch_sub(1, std::memory_order_relaxed);
      asio::post(self->stream_.get_executor(), [self, slot, answer = std::move(answer)]() mutable {
        self->OnReportDone(slot, std::move(answer));
      });
    });
  }

  void OnReportDone(size_t slot, std::vector<uint8_t> answer) {
    PL_CHECK(reports_pending_ > 0);
    --reports_pending_;
    if (state_ == State::kClosed) return;
    SetReady(slot, std::move(answer));
    if (state_ == State::kOpen) {
      Pump();
    } else {
      Flush();
    }
    MaybeFinishDrain();
  }

  // Answers the deferred reads that no longer have a batch of this
  // connection at the committer before them, while its unsent answers stay
  // under output_bytes_max and this turn's under kAnswerBytesPerTurn; the
  // rest wait for answers to go out (OnWrite calls again). Found in review,
  // session 30: all 63 reads taken behind a batch were answered at once, so
  // a client that never read held ~40 MB a connection past a 16 MiB cap
  // (the reads were taken while nothing was queued), and one turn built
  // them all while the thread's other connections waited.
  void RunDeferredReads() {
    // The read at the head of the ring is always answered: the answers
    // counted may all be behind it (batches after it, committed in the same
    // group), and nothing could be written until it is.
    const uint64_t queued_at_start = queued_bytes_;
    for (size_t k = 0; k < slot_count_ && deferred_reads_ > 0; ++k) {
      if (k > 0 && (queued_bytes_ >= limits_.output_bytes_max ||
                    queued_bytes_ >= queued_at_start + kAnswerBytesPerTurn)) {
        break;
      }
      Slot& slot = slots_[(slot_head_ + k) % slots_.size()];
      if (!slot.deferred_request.empty()) {
        // Verified when it arrived; the copy is 8-aligned (operator new).
        const std::vector<uint8_t> frame = std::move(slot.deferred_request);
        slot.deferred_request.clear();
        const std::shared_ptr<const ApiKey> key = std::move(slot.deferred_key);
        slot.deferred_key.reset();
        AnswerRead((slot_head_ + k) % slots_.size(), frame, key);
        --deferred_reads_;
        continue;
      }
      // Stop at a batch still at the committer. A report still running is
      // passed over: stopping there left the reads behind it unanswered
      // until another batch of this connection happened to finish.
      if (slot.at_committer) break;
    }
  }

  void HandleHello(const wire::Request& request) {
    if (request.body_type() != wire::RequestBody::Hello) {
      Refuse(request.request_id(), wire::ConnError::unauthorized,
             "the first request must be Hello");
      return;
    }
    const wire::Hello& hello = *request.body_as_Hello();
    fbb_.Clear();
    std::string why;
    key_generation_ = env_.service->keys_generation();
    key_ = env_.service->Hello(hello, request.request_id(), &fbb_, &why);
    const size_t slot = AddSlot(request.request_id());
    SetReady(slot);
    // Escaped: a name with a newline or an escape sequence could forge
    // log lines (found by a hostile-client review, session 19).
    const flatbuffers::String* name = hello.client_name();
    const std::string client = absl::CHexEscape(
        name == nullptr ? absl::string_view()
                        : absl::string_view(name->c_str(), std::min<size_t>(name->size(), kClientNameBytesMax)));
    if (key_ == nullptr) {
      slots_[slot].close_after = true;
      LogLine(StrCat("connection ", id_, ": hello from \"", client,
                     "\" refused: ", why));
      state_ = State::kDraining;
      close_reason_ = why;
      return;
    }
    LogLine(StrCat("connection ", id_, ": hello from \"", client,
                   "\" as ", key_->principal));
  }

  // After the server's keys were replaced (SIGHUP), this connection's key
  // is looked up again by its hash: its new scopes and programs apply from
  // this request on; false if it is gone. key_ stays as it was then, for
  // the requests accepted before (answered as they were accepted).
  bool KeyStillValid() {
    const uint64_t generation = env_.service->keys_generation();
    if (generation == key_generation_) return true;
    std::shared_ptr<const ApiKey> current = env_.service->CurrentKey(key_->sha256);
    if (current == nullptr) return false;
    key_generation_ = generation;
    key_ = std::move(current);
    return true;
  }

  void HandleBatch(const wire::Request& request) {
    const auto* transactions = request.body_as_Batch()->transactions();
    const size_t n = transactions == nullptr ? 0 : transactions->size();
    if (n == 0) {
      Refuse(request.request_id(), wire::ConnError::malformed_request, "an empty batch");
      return;
    }
    if (n > limits_.batch_transactions_max) {
      Refuse(request.request_id(), wire::ConnError::batch_too_large,
             StrCat("a batch of ", n, " transactions; the limit is ",
                    limits_.batch_transactions_max));
      return;
    }
    std::unique_ptr<CommitJob> job = TakeJob();
    job->transactions.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const absl::Status s = TransactionFromWire(
          *transactions->Get(static_cast<flatbuffers::uoffset_t>(i)), &job->transactions[i]);
      if (!s.ok()) {
        ReturnJob(std::move(job));
        // The code is the answer's; the message says what, once.
        Refuse(request.request_id(), wire::ConnError::malformed_request,
               StrCat("transaction ", i, ": ", std::string(absl::StripPrefix(s.message(), "malformed_request: "))));
        return;
      }
    }
    const size_t slot = AddSlot(request.request_id());
    job->auth = std::shared_ptr<const ledger::Auth>(key_, &key_->auth);
    job->sink = this->shared_from_this();
    job->tag = slot;
    if (!env_.committer->Submit(&job)) {
      job->sink.reset();
      ReturnJob(std::move(job));
      fbb_.Clear();
      FinishResponse(fbb_, request.request_id(), wire::ConnError::server_busy,
                     "the commit queue is full; retry with the same ids",
                     wire::ResponseBody::NONE, 0);
      SetReady(slot);
      return;
    }
    slots_[slot].at_committer = true;
    ++jobs_pending_;
  }

  std::unique_ptr<CommitJob> TakeJob() {
    if (job_pool_.empty()) return std::make_unique<CommitJob>();
    std::unique_ptr<CommitJob> job = std::move(job_pool_.back());
    job_pool_.pop_back();
    return job;
  }

  // A job keeps its vectors (and their strings) for the next batch, but
  // only kJobPoolMax of them: a pool as deep as the most batches ever in
  // flight kept ~150 MB per idle connection after a burst of 64 full
  // batches (found by a hostile-client review, session 19).
  void ReturnJob(std::unique_ptr<CommitJob> job) {
    job->auth.reset();  // a pooled job must not keep a replaced key table alive
    if (job_pool_.size() < kJobPoolMax) job_pool_.push_back(std::move(job));
  }

  void OnJobDone(std::unique_ptr<CommitJob> job) {
    PL_CHECK(jobs_pending_ > 0);
    --jobs_pending_;
    Slot& slot = slots_[job->tag];
    slot.at_committer = false;
    fbb_.Clear();
    if (job->status.ok()) {
      PL_CHECK(job->results.size() == job->transactions.size());
      result_offsets_.clear();
      for (const ledger::Result& r : job->results) result_offsets_.push_back(ResultToWire(fbb_, r));
      const auto results = fbb_.CreateVector(result_offsets_);
      const auto body = wire::CreateBatchResult(fbb_, results);
      FinishResponse(fbb_, slot.request_id, wire::ConnError::none, "",
                     wire::ResponseBody::BatchResult, body.Union());
    } else {
      FinishResponse(fbb_, slot.request_id, wire::ConnError::server_busy,
                     StrCat("not committed (", std::string(job->status.message()),
                            "); retry with the same ids"),
                     wire::ResponseBody::NONE, 0);
    }
    SetReady(job->tag);
    job->sink.reset();
    ReturnJob(std::move(job));
    // Nothing left at the committer: keep one job, not a burst's worth
    // (4 full batches are ~9 MB) for a connection that may now idle.
    if (jobs_pending_ == 0 && job_pool_.size() > 1) job_pool_.resize(1);
    if (state_ == State::kClosed) return;
    if (deferred_reads_ > 0) RunDeferredReads();
    if (state_ == State::kOpen) {
      Pump();
    } else {
      Flush();
    }
    MaybeFinishDrain();
  }

  // ---- Answers, in request order.

  size_t AddSlot(uint64_t request_id) {
    PL_CHECK(slot_count_ < slots_.size());
    const size_t index = (slot_head_ + slot_count_) % slots_.size();
    ++slot_count_;
    Slot& slot = slots_[index];
    slot.request_id = request_id;
    slot.ready = false;
    slot.close_after = false;
    slot.at_committer = false;
    return index;
  }

  // The answer in fbb_ goes into slot `index`.
  void SetReady(size_t index) {
    Slot& slot = slots_[index];
    slot.bytes.assign(fbb_.GetBufferPointer(), fbb_.GetBufferPointer() + fbb_.GetSize());
    MarkReady(slot);
  }
  // A report's answer, built on the report thread.
  void SetReady(size_t index, std::vector<uint8_t> answer) {
    Slot& slot = slots_[index];
    slot.bytes = std::move(answer);
    MarkReady(slot);
  }
  // Past output_bytes_max, reading stops (CanTakeRequest), but the answers
  // of requests already taken still arrive, and each is kept: the client
  // asked for them, and may well be reading (until session 30, an answer
  // that found others unsent past the cap closed the connection, which cut
  // off clients that pipelined big reads or batches while reading them). A
  // client that does not read is closed by the idle timeout ("answers not
  // read"). What a connection's unsent answers can reach: the cap, plus one
  // read's answer (a read is answered at once, or, behind a batch, by
  // RunDeferredReads, which also stops at the cap), plus the answers of the
  // batches and reports (kReportsPendingMax) it took below the cap: at most
  // inflight_requests_max batch answers, ~20 bytes a transaction each.
  void MarkReady(Slot& slot) {
    slot.ready = true;
    queued_bytes_ += slot.bytes.size();
  }

  // Refuses the connection: answers `error` after everything before it,
  // then closes. One log line.
  void Refuse(uint64_t request_id, wire::ConnError error, const std::string& message) {
    LogLine(StrCat("connection ", id_, ": ", ConnErrorName(error), ": ", message, " (closing)"));
    fbb_.Clear();
    FinishResponse(fbb_, request_id, error, message, wire::ResponseBody::NONE, 0);
    if (slot_count_ == slots_.size()) {
      // Only the over-limit path can get here with every slot taken;
      // the refusal then replaces nothing and the connection just closes.
      Close(StrCat(ConnErrorName(error), ": ", message));
      return;
    }
    const size_t slot = AddSlot(request_id);
    SetReady(slot);
    slots_[slot].close_after = true;
    state_ = State::kDraining;
    close_reason_ = std::string(ConnErrorName(error));
    Flush();
  }

  void Flush() {
    if (state_ == State::kClosed) return;
    if (writing_ || state_ == State::kLingering) return;
    out_.clear();
    while (slot_count_ > 0 && slots_[slot_head_].ready && out_.size() < kWriteCoalesceBytesMax) {
      Slot& slot = slots_[slot_head_];
      if (out_.empty()) {
        out_.swap(slot.bytes);  // the common case: no copy
      } else {
        out_.insert(out_.end(), slot.bytes.begin(), slot.bytes.end());
      }
      // A slot keeps a small buffer for the next answer, not the largest it
      // ever held: 64 slots of big pages (or of 2 MiB write buffers, which
      // the swap above hands them) stayed with an idle connection until it
      // closed (found in review, session 30).
      if (slot.bytes.capacity() > kSlotBytesKeptMax) {
        std::vector<uint8_t>().swap(slot.bytes);
      } else {
        slot.bytes.clear();
      }
      slot.ready = false;
      slot_head_ = (slot_head_ + 1) % slots_.size();
      --slot_count_;
      if (slot.close_after) {
        close_after_write_ = true;
        break;
      }
    }
    if (out_.empty()) return;
    writing_ = true;
    asio::async_write(stream_, asio::buffer(out_),
                      [self = this->shared_from_this()](const ErrorCode& ec, size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(const ErrorCode& ec) {
    writing_ = false;
    queued_bytes_ -= out_.size();
    if (out_.capacity() > kWriteCoalesceBytesMax * 2) std::vector<uint8_t>().swap(out_);
    if (state_ == State::kClosed) return;
    if (ec) {
      Close(StrCat("write error: ", ec.message()));
      return;
    }
    last_progress_ = SteadyClock::now();
    if (close_after_write_) {
      Linger();
      return;
    }
    if (deferred_reads_ > 0) RunDeferredReads();  // those held back by the cap or the turn
    if (state_ == State::kOpen) {
      Pump();
    } else {
      Flush();
    }
    MaybeFinishDrain();
  }

  Stream stream_;
  const uint64_t id_;
  const ConnectionEnv& env_;
  const Limits& limits_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;  // of the last ArmTimer: see there
  std::string peer_;
  State state_ = State::kHandshake;
  std::string close_reason_;
  SteadyClock::time_point last_progress_;
  uint64_t requests_ = 0;

  std::shared_ptr<const ApiKey> key_;  // set by a good Hello
  uint64_t key_generation_ = 0;       // Service::keys_generation when key_ was looked up
  std::atomic<bool> closed_{false};  // state_ == kClosed, for the report thread
  SteadyClock::time_point hello_deadline_;

  std::vector<uint8_t> in_;
  std::vector<uint64_t> aligned_;  // a misaligned frame's copy
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
  bool reading_ = false;
  bool turn_posted_ = false;  // see YieldTurn
  bool input_ended_ = false;  // the client half-closed: what is buffered is all

  std::vector<Slot> slots_;  // a ring of inflight_requests_max (1 if refused)
  size_t slot_head_ = 0;
  size_t slot_count_ = 0;
  uint64_t queued_bytes_ = 0;  // answers ready or being written
  std::vector<uint8_t> out_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool refusing_ = false;  // a TLS connection refused: its handshake is bounded (StartRefused)
  bool served_ = false;    // Start, not StartRefused: counted in counters->served

  size_t jobs_pending_ = 0;  // batches at the committer
  size_t deferred_reads_ = 0;  // reads waiting behind them
  size_t reports_pending_ = 0;  // reports on the report thread
  std::vector<std::unique_ptr<CommitJob>> job_pool_;
  flatbuffers::FlatBufferBuilder fbb_;
  std::vector<flatbuffers::Offset<wire::Result>> result_offsets_;

 public:
  const std::string& peer() const { return peer_; }
};

}  // namespace

std::shared_ptr<Connection> NewConnection(tcp::socket socket, uint64_t id,
                                          const ConnectionEnv* env) {
  auto c = std::make_shared<ConnectionImpl<tcp::socket>>(id, env, std::move(socket));
  LogLine(StrCat("connection ", id, " from ", c->peer()));
  return c;
}

std::shared_ptr<Connection> NewTlsConnection(tcp::socket socket, asio::ssl::context* tls,
                                             uint64_t id, const ConnectionEnv* env) {
  auto c = std::make_shared<ConnectionImpl<TlsStream>>(id, env, std::move(socket), *tls);
  LogLine(StrCat("connection ", id, " from ", c->peer(), " (TLS)"));
  return c;
}

}  // namespace pointledger::net
