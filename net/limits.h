// Every bound of the network layer, each with the reason for it. The
// engine's bounds (batch size, field lengths) are in ledger/limits.h; the
// ones an operator may change are defaults here and keys in the config file
// (docs/operations.md), checked against the hard caps below at load time.
#ifndef POINTLEDGER_NET_LIMITS_H_
#define POINTLEDGER_NET_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "ledger/limits.h"

namespace pointledger::net {

// ---------------------------------------------------------------------------
// Frames (SPEC §6): a 4-byte little-endian length, then a FlatBuffers buffer.

inline constexpr size_t kFrameHeaderBytes = 4;

// SPEC §6 default. A full batch of 8,190 transactions with every string at
// its limit is ~4.5 MiB on the wire, but a realistic one (short keys, no
// metadata) is ~1 MiB; an operator who posts fat batches raises this.
inline constexpr uint32_t kFrameBytesMaxDefault = uint32_t{4} << 20;
// The largest value the config may set: one frame is buffered whole in
// memory per connection, and FlatBuffers offsets are 32-bit signed.
inline constexpr uint32_t kFrameBytesMaxCap = uint32_t{64} << 20;
// The smallest: a Hello with a 64-byte key and name must always fit.
inline constexpr uint32_t kFrameBytesMinCap = 1024;
static_assert(kFrameBytesMaxCap < (uint32_t{1} << 31));

// Responses are built by the server, never sent by clients, so their only
// bound is what a client is willing to buffer: the largest response is a
// full batch's results (8,190 × ~40 bytes) or a page of history/due
// transactions, far below this.
inline constexpr uint32_t kResponseBytesMax = uint32_t{64} << 20;

// The FlatBuffers Verifier's limits. Our deepest path is
// Request -> body -> transactions vector -> Transaction -> string: 5 levels;
// 8 leaves room for fields added at the end of tables. Tables: as many as
// the largest frame can hold (a table is at least 4 bytes), so the bound
// on the verifier's work is the frame size alone. A bound by batch size
// (it was 2 × 8,190 + 16) refused a batch of 16,395 small transactions as
// malformed_request before the server could answer it batch_too_large.
inline constexpr uint32_t kVerifierDepthMax = 8;
inline constexpr uint32_t kVerifierTablesMax = kFrameBytesMaxCap / 4;

// ---------------------------------------------------------------------------
// Connections. Each default is a config key; the caps keep a typo in the
// config from turning into an out-of-memory.

// SPEC §6 default; each connection costs a socket, a read buffer and at most
// inflight_requests_max batches in memory.
inline constexpr uint32_t kConnectionsMaxDefault = 1024;
inline constexpr uint32_t kConnectionsMaxCap = 65536;

// Requests one connection may have unanswered; at the limit the server stops
// reading that socket (backpressure) until answers go out. 64 pipelined
// requests keep a client's link busy across a group commit (~1 ms).
inline constexpr uint32_t kInflightRequestsMaxDefault = 64;
inline constexpr uint32_t kInflightRequestsMaxCap = 4096;

// A connection that sends nothing (and has nothing in flight) for this long
// is closed; so is one whose answers make no progress for this long, and
// one that began a request this long ago and has not completed it: bytes
// trickled into a frame (slowloris) do not count as progress.
inline constexpr uint32_t kIdleTimeoutSecondsDefault = 300;
inline constexpr uint32_t kIdleTimeoutSecondsCap = 7 * 24 * 3600;
// A connection must be through its TLS handshake and a good Hello within
// this (or idle_timeout_s, if shorter): sockets that never log in would
// otherwise hold connections_max slots for the whole idle timeout and lock
// every client out (found by a hostile-client review, session 19).
inline constexpr uint32_t kHelloTimeoutSeconds = 10;

// Reports (audit, statements, trial balance) queued or running for one
// connection; more are answered server_busy (one report thread serves all).
inline constexpr uint32_t kReportsPendingMax = 4;

// Finished batch jobs a connection keeps for reuse (with their vectors):
// as many as the load generator's --in-flight 4 needs; one once nothing is
// at the committer.
inline constexpr size_t kJobPoolMax = 4;

// Answers waiting to be written to one connection. At it the server stops
// reading that socket; when answers to requests already taken push the
// unsent total past it, the client is not reading them and the connection
// is closed (with a log line): a client that does not read its answers
// cannot make the server buffer without bound. One answer alone may exceed
// it (it is written whole). Keep it above inflight_requests_max times the
// largest answer a client pipelines without reading: a full batch's
// results are 28 bytes a transaction (36 with points or duplicate, 60 for
// id_conflict), so 64 such batches are 15-19 MB; the CLI and the load
// generator keep 4 in flight by default and read as they go.
inline constexpr uint64_t kOutputBytesMaxDefault = uint64_t{16} << 20;
inline constexpr uint64_t kOutputBytesMaxCap = uint64_t{1} << 30;

// Default I/O threads: this machine has 2 cores; the committer thread and
// the fsync wait take the rest.
inline constexpr uint32_t kIoThreadsDefault = 2;
inline constexpr uint32_t kIoThreadsCap = 64;

// LMDB map size default (ledger::Options) and cap, in MiB.
inline constexpr uint64_t kMapSizeMbDefault = uint64_t{64} << 10;  // 64 GiB
inline constexpr uint64_t kMapSizeMbCap = uint64_t{1} << 24;       // 16 TiB

// How old the state kept in memory since the last checkpoint may grow
// (ledger::Options::checkpoint_interval_ms): BENCHMARKS.md, "Session 15",
// measured the trade. Longer: fewer, bigger checkpoints, a lower p99 but a
// longer p99.9 and max, and more log for a crash or a `--data` tool to
// replay. Shorter: the reverse, and more CPU per transaction.
inline constexpr uint64_t kCheckpointIntervalMsDefault = 1000;
inline constexpr uint64_t kCheckpointIntervalMsMin = 50;
inline constexpr uint64_t kCheckpointIntervalMsCap = 600'000;

// State rows an audit's rebuild (or a past liability's) holds in memory
// before it moves them to a scratch environment under $TMPDIR
// (ledger::Options::rebuild_memory_entries, ~200-300 bytes a row). The cap
// only refuses a typo's worth: 2^40 rows would never fit anyway.
inline constexpr uint64_t kRebuildMemoryRowsDefault = uint64_t{1} << 23;
inline constexpr uint64_t kRebuildMemoryRowsCap = uint64_t{1} << 40;

// The read buffer starts at this size and grows only for a frame that does
// not fit, doubling as that frame's bytes arrive (never to the length its
// prefix merely claims), at most to the frame limit.
inline constexpr size_t kReadBufferBytesInitial = 64 * 1024;

// A connection refused over connections_max answers server_busy and then
// only discards what its client sends while it lingers (kLingerMs). Nothing
// bounds how many are refused at once but the accept rate and the
// descriptor limit, so each gets this small read buffer, not the 64 KiB of
// a served connection: a flood of 12,000 held connections made the server
// hold ~8,500 refused ones at ~70 KiB each (600 MiB).
inline constexpr size_t kRefusedReadBufferBytes = 4096;
// And at most this many are being refused at once: with connections_max
// plus this many open, the server stops accepting (it looks again every
// kAcceptRetryMs) and leaves new connections in the kernel's listen
// backlog, so a connection flood costs at most this many more descriptors,
// at ~8 KiB each.
inline constexpr uint64_t kRefusedConnectionsMax = 1024;

// One connection's turn on its I/O thread ends once the reads it answered
// in that turn built this many bytes of answers; it then goes to the back
// of the thread's queue. Without it, a client pipelining 64 big reads
// (1,000-entry history pages) kept its thread for all 64 while the other
// connections on that thread waited.
inline constexpr uint64_t kAnswerBytesPerTurn = 64 * 1024;

// Answers are coalesced into one write of at most about this many bytes
// (fewer syscalls for pipelined small answers, bounded copies for big ones).
inline constexpr size_t kWriteCoalesceBytesMax = 1 << 20;
// An answer slot keeps a buffer up to this size for the next answer; a
// bigger one is freed once written (net/connection.cc, Flush).
inline constexpr size_t kSlotBytesKeptMax = 16 * 1024;

// After the answer to a refused request (malformed, too large ...) the
// server half-closes and reads and discards what the client still sends for
// at most this long before closing, so that the client reads the answer
// instead of a connection reset.
inline constexpr int kLingerMs = 2000;

// At SIGINT/SIGTERM, connections get this long to have their in-flight
// requests answered (a group commit takes milliseconds; a client that does
// not read its answers must not hold the shutdown forever). Then they are
// closed; their batches are still committed before the ledger closes.
inline constexpr int kShutdownGraceMs = 10'000;

// After an accept error (out of file descriptors ...), wait this long
// before accepting again instead of spinning.
inline constexpr int kAcceptRetryMs = 100;

// ---------------------------------------------------------------------------
// The committer.

// Batches waiting for the committer, from all connections. A full queue
// answers server_busy (the client retries): it bounds the memory queued
// batches take. Reaching it means the disk cannot keep up with what is sent,
// or one client pipelines more than it should: 32 full batches (a single
// connection may have 64 in flight) fill the transactions' bound. Each is
// bounded because a batch may hold 1 or 8,190 (~350 bytes each in memory).
inline constexpr size_t kCommitQueueBatchesMax = 16384;
inline constexpr size_t kCommitQueueTransactionsMax = 32 * ledger::kBatchTransactionsMax;

// How often an idle committer looks for a checkpoint that came due since
// its last commit (Ledger::CheckpointIfDue).
inline constexpr int kIdleCheckpointCheckMs = 200;

// One group commit takes at most this many transactions (whole batches; the
// first batch is always taken). A larger group amortises the fsync further
// but delays every answer in it, and a write transaction that dirties too
// many pages fails with MDB_TXN_FULL (the committer then commits what it has
// and retries the batch in a fresh group).
inline constexpr size_t kGroupTransactionsMax = 4 * ledger::kBatchTransactionsMax;

// ---------------------------------------------------------------------------
// The sweep (expiries and hold timeouts).

inline constexpr uint32_t kSweepIntervalMs = 1000;
// Due transactions applied per sweep: one full batch; the rest wait a second.
inline constexpr size_t kSweepTransactionsMax = ledger::kBatchTransactionsMax;

// A CollectDue request may ask for at most this many (one batch's worth, so
// that `pointledger expire` can post what it gets in one request).
inline constexpr uint32_t kCollectDueLimitMax =
    static_cast<uint32_t>(ledger::kBatchTransactionsMax);

// ---------------------------------------------------------------------------
// Hello and keys.

inline constexpr size_t kApiKeyBytesMax = 256;
inline constexpr size_t kClientNameBytesMax = 64;
// Before a good Hello, a frame may be at most this long (request_too_large
// otherwise): a Hello is a key of at most kApiKeyBytesMax, a client name
// and ~100 bytes of FlatBuffers framing, so this is ample, and a connection
// that has not authenticated never grows its read buffer beyond the initial
// one.
inline constexpr uint32_t kHelloFrameBytesMax = 4096;
static_assert(kHelloFrameBytesMax >= kApiKeyBytesMax + 4 * kClientNameBytesMax + 256);
static_assert(kHelloFrameBytesMax <= kReadBufferBytesInitial);
static_assert(kHelloFrameBytesMax <= kFrameBytesMaxDefault);
// Every request but a Batch (Hello and the reads) is at most this long
// (request_too_large otherwise): the longest carries two names of at most
// 64 bytes. A read waiting behind its connection's own batch is kept as a
// copy of its frame, so this also bounds those copies: 63 x 4 KiB.
inline constexpr uint32_t kReadFrameBytesMax = 4096;
static_assert(kReadFrameBytesMax >= kHelloFrameBytesMax);
// The protocol version this build speaks (docs/protocol.md).
inline constexpr uint32_t kProtocolVersion = 1;
// A generated admin key: 32 random bytes, written as 64 hex digits.
inline constexpr size_t kGeneratedKeyBytes = 32;

// ---------------------------------------------------------------------------
// The client library.

inline constexpr int kClientTimeoutMsDefault = 30'000;

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_LIMITS_H_
