// Internal to ledger/: the write-ahead log, which makes a group commit
// durable with one fdatasync (docs/storage.md, "The write-ahead log").
//
// Why: LMDB syncs twice per commit (its data pages, then its meta page), and
// the log environment's file grew with every commit, which makes each sync
// journal the inode as well. A batch of one committed at under half this
// machine's fsync rate (BENCHMARKS.md). Instead a group commit writes the
// log entries it made (a LogChunk) as frames into segment files that were
// written full of zeros beforehand: the commit overwrites blocks the file
// already has, and one fdatasync makes it durable. The checkpointer copies
// the entries into the log environment later; segments whose entries are
// all there are then reused.
//
// A segment file, `DIR/wal/<number>.wal`, starts with a 64-byte header
// (U32 magic "PLWS" | U32 version 1 | U64 number | U64 salt | U32 CRC-32 of
// the 24 bytes before it), and then holds a sequence of frames:
//
//   U32 magic "PLW1" | U32 flags (1: first frame of its group, 2: last)
//   U64 segment number | U64 first seq of the group | U32 payload size
//   U32 CRC-32 of the salt, the 28 bytes before it and the payload | payload
//
// The salt is drawn whenever the segment is prepared, so no frame of the
// file's earlier life, and no frame planted in a payload, checks.
//
// A group commit's chunk bytes are cut into as many frames as the segments
// need. They are written as whole 4 KiB blocks, with O_DIRECT where the
// file system has it (wal.cc, DirectIo).
//
// Reading a segment stops at the first frame that does not check (a torn
// write, the zeros, or a frame of the file's earlier life under another
// number); a group counts only if its last frame was read.
#ifndef POINTLEDGER_LEDGER_WAL_H_
#define POINTLEDGER_LEDGER_WAL_H_

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ledger/log_sink.h"
#include "ledger/view.h"

namespace pointledger::ledger {

class GroupReader;

// Follows the write-ahead log of another process (for a read-only Ledger):
// each Read reads only what was written since the one before.
class WalReader {
 public:
  explicit WalReader(std::string dir);
  ~WalReader();
  WalReader(const WalReader&) = delete;
  WalReader& operator=(const WalReader&) = delete;

  // The complete group commits past after_seq, as of now. Aborted when
  // they do not continue after_seq (the writer's checkpoint moved them to
  // the log environment after the caller read it) or a segment changed
  // under the read: read the log environment again, then this.
  // The list is shared and immutable: a read that finds nothing new costs
  // no copy.
  absl::StatusOr<std::shared_ptr<const LogChunks>> Read(uint64_t after_seq);

 private:
  absl::Status ReadNew();
  const std::string dir_;
  std::map<uint64_t, size_t> offsets_;  // segment number -> where its next frame starts
  std::unique_ptr<GroupReader> groups_;
  LogChunks chunks_;  // complete group commits read, in order
  std::shared_ptr<const LogChunks> shared_;  // chunks_ as last handed out
};

// What the writer's open checks of every segment: a header or an
// acknowledged frame the disk changed is DataLoss. A reader (audit verify
// --data) calls it, since following the writer it stops at the first frame
// that does not check, which beside a writer may be one being written.
// With no writer (the directory's lock taken shared, briefly) it checks
// every segment; beside one, those it no longer writes to (all but the
// last that holds frames, and the prepared ones after it).
// Damage to groups at or below `checked_seq` (the log environment's last
// seq: it has them) is not reported.
absl::Status CheckSegments(const std::string& dir, uint64_t checked_seq);

class Wal {
 public:
  struct Options {
    std::string dir;  // the segments' directory (created if missing)
    // Segments start at 256 KiB and double up to this size.
    uint64_t segment_bytes_max = uint64_t{16} << 20;
    // Tests only: called when Append has moved to a new segment in the
    // middle of a group, to run a checkpoint's Release() right there.
    std::function<void()> after_roll_in_group;
    // Tests only: called with each segment Open syncs (below).
    std::function<void(uint64_t number)> on_open_sync;
    // Where a segment that cannot be prepared is reported (log_sink.h).
    LogSink log;
  };

  // Reads the directory and starts the thread that prepares segments.
  // *recovered gets the complete group commits past after_seq (those the
  // log environment, which holds every seq up to after_seq, lacks), in
  // order. DataLoss if they do not continue after_seq without a gap.
  // Every segment is synced and dropped from the page cache first: a group
  // written by a process killed before its fdatasync may be read back from
  // the page cache, and nothing would sync it later (the writer only appends
  // to new segments), yet the ledger builds on it and answers its retries;
  // and a page whose write-back failed in an earlier life may stay cached
  // with bytes the disk never got.
  static absl::StatusOr<std::unique_ptr<Wal>> Open(const Options& options, uint64_t after_seq,
                                                   LogChunks* recovered);

  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Writes the chunk and syncs it. ResourceExhausted (nothing of the group
  // will be read back) when no segment could be prepared, e.g. a full
  // disk. After a failed write or sync the disk's content is unknown, so
  // every later Append fails too, until a restart reads what is there.
  // REQUIRES: chunk has `log` entries, following the last chunk appended.
  absl::Status Append(const LogChunk& chunk);

  // Every seq <= seq is in the log environment now: segments holding only
  // such seqs may be reused.
  void Release(uint64_t seq);

 private:
  struct Segment {
    uint64_t number = 0;
    int fd = -1;
    uint64_t size = 0;
    uint64_t last_seq = 0;  // of the last group with a frame in it
    uint64_t salt = 0;      // in every frame's CRC (wal.cc)
  };
  explicit Wal(Options options) : options_(std::move(options)) {}
  std::string PathOf(uint64_t number) const;
  void PrepareLoop();
  // Prepares one segment: a released one renamed, or a new one of zeros.
  absl::StatusOr<Segment> Prepare(uint64_t number, uint64_t size);
  // Makes the spare segment current; waits for it a while.
  absl::Status Roll();
  // Room for n more bytes at offset_ in the staging buffer: where to put them.
  char* Stage(size_t n);
  // Writes what is staged as whole blocks, then keeps the last, partly
  // filled block staged: the next group's write starts with it. Rewriting
  // an acknowledged frame's block with the same bytes cannot tear it.
  absl::Status WriteStaged();

  const Options options_;
  int dir_fd_ = -1;

  // The writer's (Append's) state.
  Segment current_;  // fd < 0: none yet
  uint64_t offset_ = 0;
  absl::Status broken_;
  uint64_t group_last_seq_ = 0;  // of the group Append is writing
  std::string frame_;  // scratch for a frame header
  // The segment's bytes from stage_at_ (a block boundary) up to offset_,
  // in a block-aligned buffer: Append writes whole blocks (wal.cc, DirectIo).
  struct FreeStaging {
    void operator()(char* p) const { std::free(p); }
  };
  using Staging = std::unique_ptr<char[], FreeStaging>;
  Staging stage_;
  size_t stage_capacity_ = 0;
  uint64_t stage_at_ = 0;
  bool staged_ = false;  // frames staged since the last write

  absl::Mutex mu_;
  std::deque<Segment> live_ ABSL_GUARDED_BY(mu_);      // written to, oldest first (current last)
  std::deque<Segment> released_ ABSL_GUARDED_BY(mu_);  // reusable
  std::optional<Segment> spare_ ABSL_GUARDED_BY(mu_);
  absl::Status prepare_error_ ABSL_GUARDED_BY(mu_);
  uint64_t next_number_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_size_ ABSL_GUARDED_BY(mu_) = 0;  // set by Open
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;       // Roll wants another attempt now
  uint64_t attempts_ ABSL_GUARDED_BY(mu_) = 0;  // segments the preparer tried to make
  std::thread preparer_;
};

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_WAL_H_
