#include "ledger/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <zlib.h>

#include "absl/container/inlined_vector.h"
#include "ledger/background_thread.h"
#include "ledger/codec.h"

namespace pointledger::ledger {

namespace {

constexpr uint32_t kMagic = 0x31574c50;         // "PLW1" little-endian
constexpr uint32_t kSegmentMagic = 0x53574c50;  // "PLWS"
constexpr size_t kSegmentHeaderBytes = 64;      // frames start here
constexpr uint32_t kFirst = 1;
constexpr uint32_t kLast = 2;
constexpr size_t kHeaderBytes = 32;
constexpr size_t kCrcOffset = 28;
constexpr uint64_t kFirstSegmentBytes = uint64_t{256} << 10;  // small ledgers (and tests) write little
constexpr size_t kZeroBlock = size_t{1} << 20;
// Append writes whole blocks of this size, at offsets that are multiples of
// it, from a buffer aligned to it: what O_DIRECT asks of any device with
// logical blocks up to 4 KiB.
constexpr uint64_t kBlock = 4096;

uint64_t AlignDown(uint64_t n) { return n & ~(kBlock - 1); }
uint64_t AlignUp(uint64_t n) { return AlignDown(n + kBlock - 1); }
constexpr uint64_t kMinSegmentBytes = 4 * kBlock;

absl::Status Errno(int err, std::string_view what) {
  const std::string message = StrCat("write-ahead log: ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// The salt is the segment's, drawn when it was last prepared: a frame that
// a client planted inside a payload (metadata is theirs to choose) cannot
// check, since the salt is in no frame.
// CRC-32 (ISO-HDLC, the polynomial of zlib and Boost.CRC's crc_32_type) of
// bytes, continuing from `crc` (0 to start). zlib's is word-at-a-time:
// Boost's byte table cost 3% of the writer's time at batch 8190.
uint32_t Crc32(uint32_t crc, const void* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), size));
}

uint32_t Crc(uint64_t salt, std::string_view header, std::string_view payload) {
  uint32_t crc = Crc32(0, &salt, sizeof(salt));
  crc = Crc32(crc, header.data(), header.size());
  return Crc32(crc, payload.data(), payload.size());
}

std::string Path(const std::string& dir, uint64_t number) {
  char name[32];
  std::snprintf(name, sizeof(name), "%016llu.wal", static_cast<unsigned long long>(number));
  return StrCat(dir, "/", name);
}

// U32 magic "PLWS" | U32 version 1 | U64 number | U64 salt | U32 CRC-32 of
// the 24 bytes before it, then zeros up to kSegmentHeaderBytes.
std::string SegmentHeader(uint64_t number, uint64_t salt) {
  std::string out;
  ByteWriter w(&out);
  w.U32(kSegmentMagic);
  w.U32(1);
  w.U64(number);
  w.U64(salt);
  w.U32(Crc32(0, out.data(), out.size()));
  out.resize(kSegmentHeaderBytes, '\0');
  return out;
}

// The salt of a segment header naming `number`; nullopt if it does not.
std::optional<uint64_t> SegmentSalt(std::string_view header, uint64_t number) {
  if (header.size() < 28) return std::nullopt;
  ByteReader r(header.substr(0, 28));
  const uint32_t magic = r.U32();
  const uint32_t version = r.U32();
  const uint64_t n = r.U64();
  const uint64_t salt = r.U64();
  const uint32_t crc = r.U32();
  if (magic != kSegmentMagic || version != 1 || n != number || crc != Crc32(0, header.data(), 24)) {
    return std::nullopt;
  }
  return salt;
}

// The two headers a segment that holds nothing can have: none yet (a new
// file, empty or zeros, whose first block a crash kept from the disk), or
// one that checks but names another number (renamed for reuse, and a crash
// kept the new header from the disk). Anything else is a header the disk
// changed, over frames that may be acknowledged.
bool HeaderOfNoSegment(std::string_view header) {
  if (header.find_first_not_of('\0') == std::string_view::npos) return true;
  if (header.size() < 28) return false;
  const uint64_t named = ByteReader(header.substr(8, 8)).U64();  // after magic and version
  return SegmentSalt(header, named).has_value();
}

uint64_t NewSalt() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// The segment files of a directory, by number. A directory with a
// segment's name is not ours: the preparer skipped its number, so no group
// spans it, and reading it would fail the open. Anything else is read (a
// symlink to a segment moved elsewhere holds acknowledged groups).
absl::StatusOr<std::vector<uint64_t>> ListSegments(const std::string& dir) {
  std::vector<uint64_t> numbers;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return numbers;
    return Errno(errno, StrCat("listing ", dir));
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.size() != 20 || !name.ends_with(".wal")) continue;
    uint64_t n = 0;
    bool digits = true;
    for (char c : name.substr(0, 16)) {
      digits = digits && c >= '0' && c <= '9';
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!digits) continue;
    bool dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {  // unknown to some file systems
      struct stat st {};
      dir = ::fstatat(::dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
    }
    if (!dir) numbers.push_back(n);
  }
  ::closedir(d);
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

// Commits write the segment with O_DIRECT where the file system has it
// (not tmpfs, say): the write skips the page cache, and the fdatasync
// after it has no dirty pages to find and write back. On this machine
// that took ~16 us (~8%) off a 4 KiB write and its sync, and batch 1 went
// from 78-80% to 82-83% of the fsync rate (BENCHMARKS.md, "Session 14").
// Buffered writes are the fallback, with the same bytes written.
void DirectIo(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags | O_DIRECT);
}

absl::Status WriteAll(int fd, const iovec* parts, int count, uint64_t offset) {
  absl::InlinedVector<iovec, 4> iov(parts, parts + count);  // no allocation per commit
  size_t at = 0;
  while (at < iov.size()) {
    const ssize_t n = ::pwritev(fd, &iov[at], static_cast<int>(iov.size() - at), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "write");
    }
    if (n == 0) return Errno(EIO, "write wrote nothing");
    offset += static_cast<uint64_t>(n);
    for (size_t left = static_cast<size_t>(n); left > 0 && at < iov.size();) {
      const size_t take = std::min(left, iov[at].iov_len);
      iov[at].iov_base = static_cast<char*>(iov[at].iov_base) + take;
      iov[at].iov_len -= take;
      left -= take;
      if (iov[at].iov_len == 0) ++at;
    }
    while (at < iov.size() && iov[at].iov_len == 0) ++at;
  }
  return absl::OkStatus();
}

}  // namespace

// Reads segments in number order and puts their frames back together into
// the group commits they came from. A segment may be read again from where
// the last read of it stopped (a follower of a live directory).
class GroupReader {
 public:
  struct Group {
    uint64_t first_seq = 0;
    std::string bytes;
    std::vector<size_t> segments;  // the caller's indexes of its segments
    uint64_t start_number = 0;     // the segment and offset of its first frame
    size_t start_offset = 0;
    uint64_t last_number = 0;      // the segment of its last part so far
  };
  // Where a follower must read again from: the first frame of a group it
  // had part of when the segment after that part had nothing more yet.
  struct Rewind {
    uint64_t number = 0;
    size_t offset = 0;
  };

  // `check_rest`: after the last frame that checks, read the rest of the
  // segment for frames of this life that check (DataLoss: see Frames).
  // Recovery does; a follower of a live directory, reading while frames
  // are written, does not. Frames of groups at or below `checked_seq` (in
  // the log environment already) are no loss there: only the damage a
  // crash could not explain, before a group past it, is DataLoss.
  explicit GroupReader(bool check_rest, uint64_t checked_seq = 0)
      : check_rest_(check_rest), checked_seq_(checked_seq) {}

  // Reads one segment file from *offset on, and moves *offset past the
  // last frame that checks. A file that is gone (renamed for reuse since
  // it was listed) holds nothing.
  absl::Status ReadSegment(const std::string& path, uint64_t number, size_t index, size_t* offset) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return Errno(errno, StrCat("opening ", path));
    }
    absl::Status status = ReadFrames(fd, path, number, index, offset);
    ::close(fd);
    return status;
  }

  std::vector<Group>& complete() { return complete_; }

 private:
  // Reads [at, at + n) of the file, or fewer bytes at its end.
  static absl::Status ReadAt(int fd, const std::string& path, uint64_t at, size_t n, std::string* out) {
    out->resize(n);
    size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(at + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Errno(errno, StrCat("reading ", path));
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    out->resize(done);
    return absl::OkStatus();
  }

  // Whether a frame of segment `number` starts at `at` and checks; if so,
  // *flags, *first_seq and *payload describe it.
  static bool FrameAt(std::string_view data, size_t at, uint64_t number, uint64_t salt,
                      uint32_t* flags, uint64_t* first_seq, std::string_view* payload) {
    if (data.size() - at < kHeaderBytes) return false;
    ByteReader r(data.substr(at, kHeaderBytes));
    const uint32_t magic = r.U32();
    *flags = r.U32();
    const uint64_t segment = r.U64();
    *first_seq = r.U64();
    const uint32_t size = r.U32();
    const uint32_t crc = r.U32();
    if (magic != kMagic || segment != number || size > data.size() - at - kHeaderBytes) return false;
    *payload = data.substr(at + kHeaderBytes, size);
    return Crc(salt, data.substr(at, kCrcOffset), *payload) == crc;
  }

  // Frame by frame (two reads each): a follower reads only what is new,
  // not the zeros after it.
  absl::Status ReadFrames(int fd, const std::string& path, uint64_t number, size_t index,
                          size_t* offset) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Errno(errno, StrCat("stat ", path));
    const size_t file_size = static_cast<size_t>(st.st_size);
    std::string frame;
    PL_RETURN_IF_ERROR(ReadAt(fd, path, 0, kSegmentHeaderBytes, &frame));
    const std::optional<uint64_t> salt = SegmentSalt(frame, number);
    if (!salt) {
      // Not (yet) a segment of this number: being prepared, or renamed
      // whose new header a crash kept from the disk. It holds nothing.
      // The writer's open (nothing prepares beside it) tells those from a
      // damaged header: skipping that segment would drop its acknowledged
      // groups without a word, and reuse the file.
      if (check_rest_ && !HeaderOfNoSegment(frame)) {
        return absl::DataLossError(StrCat("write-ahead log: segment ", number, " (", path,
                                          ") has a header that does not check"));
      }
      DropPartial();
      return absl::OkStatus();
    }
    *offset = std::max(*offset, kSegmentHeaderBytes);
    for (;;) {
      if (file_size < *offset + kHeaderBytes) break;
      PL_RETURN_IF_ERROR(ReadAt(fd, path, *offset, kHeaderBytes, &frame));
      if (frame.size() < kHeaderBytes) break;
      ByteReader r(frame);
      const uint32_t magic = r.U32();
      r.U32();
      const uint64_t segment = r.U64();
      r.U64();
      const uint32_t size = r.U32();
      if (magic != kMagic || segment != number || size > file_size - *offset - kHeaderBytes) break;
      PL_RETURN_IF_ERROR(ReadAt(fd, path, *offset, kHeaderBytes + size, &frame));
      uint32_t flags = 0;
      uint64_t first_seq = 0;
      std::string_view payload;
      if (!FrameAt(frame, 0, number, *salt, &flags, &first_seq, &payload)) break;
      const size_t frame_offset = *offset;
      *offset += kHeaderBytes + size;
      Take(flags, first_seq, payload, index, number, frame_offset);
    }
    // A group goes on in the next segment only from a frame that filled
    // this one (the writer moves on when fewer than a header's bytes are
    // left). Past a frame that does not check, a part found later belongs
    // to no group we have the start of.
    // The writer uses whole 4 KiB blocks only (Append), so a file whose
    // size is not a multiple of them is full short of its end.
    const uint64_t usable = AlignDown(file_size);
    const bool filled = file_size - *offset < kHeaderBytes + 1 ||
                        (*offset <= usable && usable - *offset < kHeaderBytes + 1);
    if (!filled) DropPartial();
    if (!check_rest_ || file_size <= *offset + 1) return absl::OkStatus();
    // Here the segment ends: zeros, frames of the file's earlier life, or
    // the one frame a crash tore. Each commit is synced before the next is
    // written, so a frame of this life that checks past this point means
    // the disk changed a frame that was acknowledged: not to be skipped.
    std::string rest;
    PL_RETURN_IF_ERROR(ReadAt(fd, path, *offset, file_size - *offset, &rest));
    const std::string_view data = rest;
    const std::string_view magic("PLW1", 4);
    uint32_t flags = 0;
    uint64_t first_seq = 0;
    std::string_view payload;
    for (size_t i = data.find(magic, 1); i != std::string_view::npos; i = data.find(magic, i + 1)) {
      if (FrameAt(data, i, number, *salt, &flags, &first_seq, &payload) && first_seq > checked_seq_) {
        return absl::DataLossError(StrCat("write-ahead log: segment ", number, " has a frame at byte ",
                                          *offset, " that does not check, and one at byte ",
                                          *offset + i, " (group commit at seq ", first_seq,
                                          ") after it that does"));
      }
    }
    return absl::OkStatus();
  }

  // One frame that checks, into the group it belongs to.
  void Take(uint32_t flags, uint64_t first_seq, std::string_view payload, size_t index,
            uint64_t number, size_t frame_offset) {
    if ((flags & kFirst) != 0) {
      // A new group: the one dropped before it can never continue, so
      // there is nothing to read again (after a crash, or later in the
      // same pass); rewinding anyway would read the groups after it twice.
      rewind_.reset();
      partial_ = Group{first_seq, {}, {}, number, frame_offset, number};
    } else if (!partial_ || partial_->first_seq != first_seq || number != partial_->last_number + 1) {
      // The rest of a group whose start was lost, or a part of another
      // group with the same first seq: after a crash the seqs of the group
      // it tore go to the next writer's groups, and the segment between
      // the two (reused since) may be gone from the listing. Parts join
      // only across consecutive segment numbers (found in review, session
      // 16: a backup beside a restarted server met such a join).
      partial_.reset();
      return;
    }
    partial_->last_number = number;
    partial_->bytes.append(payload);
    if (partial_->segments.empty() || partial_->segments.back() != index) {
      partial_->segments.push_back(index);
    }
    if ((flags & kLast) != 0) {
      complete_.push_back(std::move(*partial_));
      partial_.reset();
    }
  }

  // A group's start is dropped where its next part cannot follow. After a
  // crash (recovery) that part is gone for good. A follower of a live
  // writer may simply have read between the group's two writes (Append
  // fills a segment, then moves on): it reads the group again next time
  // from its first frame instead (found in review, session 16: the group
  // was lost to the follower until a checkpoint or a gap made it start
  // over). A part is never joined across a segment that did not fill.
  void DropPartial() {
    if (partial_ && !check_rest_) rewind_ = Rewind{partial_->start_number, partial_->start_offset};
    partial_.reset();
  }

 public:
  // Where to read again from (follower only), once; see DropPartial.
  std::optional<Rewind> TakeRewind() { return std::exchange(rewind_, std::nullopt); }

 private:
  const bool check_rest_;
  const uint64_t checked_seq_;
  std::optional<Group> partial_;
  std::vector<Group> complete_;
  std::optional<Rewind> rewind_;
};

namespace {

// Parses complete groups into chunks (appended to *chunks), raising each
// group's segments' last seq in *segment_last_seq if given.
absl::Status ParseGroups(std::vector<GroupReader::Group>& groups, LogChunks* chunks,
                         std::vector<uint64_t>* segment_last_seq) {
  for (GroupReader::Group& g : groups) {
    auto chunk = std::make_shared<LogChunk>();
    if (!LogChunk::Parse(std::move(g.bytes), chunk.get()) || chunk->refs(Dbs().log).empty() ||
        chunk->first_seq() != g.first_seq) {
      return absl::DataLossError(StrCat("write-ahead log: the group commit at seq ", g.first_seq,
                                        " checks but does not parse"));
    }
    if (segment_last_seq != nullptr) {
      for (size_t i : g.segments) {
        (*segment_last_seq)[i] = std::max((*segment_last_seq)[i], chunk->last_seq());
      }
    }
    chunks->push_back(std::move(chunk));
  }
  groups.clear();
  return absl::OkStatus();
}

// Drops the chunks up to after_seq; those left must follow it and each
// other without a gap (`gap` is the error otherwise).
absl::Status KeepAfter(LogChunks* chunks, uint64_t after_seq, absl::StatusCode gap) {
  std::erase_if(*chunks, [&](const auto& c) { return c->last_seq() <= after_seq; });
  uint64_t expected = after_seq + 1;
  for (const auto& c : *chunks) {
    if (c->first_seq() != expected) {
      return absl::Status(gap, StrCat("write-ahead log: seq ", expected, " is missing (the next "
                                      "group commit found starts at seq ", c->first_seq(), ")"));
    }
    expected = c->last_seq() + 1;
  }
  return absl::OkStatus();
}

}  // namespace

std::string Wal::PathOf(uint64_t number) const { return Path(options_.dir, number); }

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(const Options& options, uint64_t after_seq,
                                               LogChunks* recovered) {
  if (::mkdir(options.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(errno, StrCat("creating ", options.dir));
  }
  // Whole blocks, and room in each segment for a header and frames: a
  // smaller segment would be full as soon as it was made.
  Options normalized = options;
  normalized.segment_bytes_max = std::max(AlignUp(options.segment_bytes_max), kMinSegmentBytes);
  std::unique_ptr<Wal> wal(new Wal(normalized));
  wal->dir_fd_ = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (wal->dir_fd_ < 0) return Errno(errno, StrCat("opening ", options.dir));
  // One writer: a second would number, reuse and delete segments under
  // the first. The lock goes with the descriptor, so a killed process
  // leaves none behind.
  // A reader's CheckSegments holds it shared for the length of one read of
  // the segments: waited for, where a writer's lock is refused at once.
  for (int tries = 0; ::flock(wal->dir_fd_, LOCK_EX | LOCK_NB) != 0; ++tries) {
    if (errno != EWOULDBLOCK) return Errno(errno, StrCat("locking ", options.dir));
    const bool shared = ::flock(wal->dir_fd_, LOCK_SH | LOCK_NB) == 0;
    if (shared) ::flock(wal->dir_fd_, LOCK_UN);
    if (!shared) {
      return absl::FailedPreconditionError(
          StrCat(options.dir, " is in use: another process has this ledger open for writing"));
    }
    if (tries == 3000) {
      return absl::UnavailableError(StrCat(options.dir, " is being checked by audit verify (a shared lock "
                                           "held for 30 s); start again when it is done"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  PL_ASSIGN_OR_RETURN(const std::vector<uint64_t> numbers, ListSegments(options.dir));
  // A directory or segment this process may not write (another user's, a
  // read-only mount) fails the open: found later, by the thread that
  // readies segments, it read as a full disk, retried every second, and
  // the server started and answered every batch server_busy (found by an
  // operator review, session 31).
  // AT_EACCESS: the effective ids (and capabilities), as the writes use.
  if (::faccessat(AT_FDCWD, options.dir.c_str(), W_OK, AT_EACCESS) != 0) {
    return Errno(errno, StrCat("cannot write in ", options.dir));
  }
  for (const uint64_t number : numbers) {
    const std::string path = wal->PathOf(number);
    if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0 && errno != ENOENT) {
      return Errno(errno, StrCat("cannot write ", path));
    }
  }
  // What is read back must be on the disk before anything builds on it
  // (wal.h), so every segment is synced first (a failed sync leaves it
  // unknown: refuse to open), then dropped from the page cache so that
  // the reading below sees the disk: a page whose write-back failed in an
  // earlier life can stay cached, clean, with bytes the disk never got,
  // and a sync now would not report that old failure again.
  for (const uint64_t number : numbers) {
    const std::string path = wal->PathOf(number);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) return Errno(errno, StrCat("opening ", path));
    int rc = ::fdatasync(fd);
    int err = errno;
    if (rc == 0) {
      rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // advice; it returns the error
      err = rc;
      if (rc == EINVAL || rc == ESPIPE) rc = 0;  // not a regular file: the reading below says so
    }
    ::close(fd);
    if (rc != 0) return Errno(err, StrCat("syncing ", path));
    if (options.on_open_sync) options.on_open_sync(number);
  }
  GroupReader reader(/*check_rest=*/true, after_seq);
  for (size_t i = 0; i < numbers.size(); ++i) {
    size_t offset = 0;
    PL_RETURN_IF_ERROR(reader.ReadSegment(wal->PathOf(numbers[i]), numbers[i], i, &offset));
  }
  std::vector<uint64_t> last_seq(numbers.size(), 0);
  recovered->clear();
  PL_RETURN_IF_ERROR(ParseGroups(reader.complete(), recovered, &last_seq));
  PL_RETURN_IF_ERROR(KeepAfter(recovered, after_seq, absl::StatusCode::kDataLoss));
  {
    absl::MutexLock lock(&wal->mu_);
    for (size_t i = 0; i < numbers.size(); ++i) {
      struct stat st {};
      const uint64_t size =
          ::stat(wal->PathOf(numbers[i]).c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
      Segment s{numbers[i], -1, size, last_seq[i]};
      if (last_seq[i] <= after_seq) {
        wal->released_.push_back(s);
      } else {
        wal->live_.push_back(s);
      }
      wal->next_size_ = std::max(wal->next_size_, std::min(size, normalized.segment_bytes_max));
    }
    wal->next_size_ = std::min(std::max(wal->next_size_, kFirstSegmentBytes), normalized.segment_bytes_max);
    wal->next_number_ = numbers.empty() ? 1 : numbers.back() + 1;
  }
  Wal* w = wal.get();
  wal->preparer_ = BackgroundThread("pl-wal-prepare", [w] { w->PrepareLoop(); });
  return wal;
}

WalReader::WalReader(std::string dir) : dir_(std::move(dir)) {}
WalReader::~WalReader() = default;

absl::StatusOr<std::shared_ptr<const LogChunks>> WalReader::Read(uint64_t after_seq) {
  absl::Status status = ReadNew();
  if (status.ok()) {
    std::erase_if(chunks_, [&](const auto& c) { return c->last_seq() <= after_seq; });
    // Entries we no longer have (or never read, their segment reused
    // first) are in the log environment by now: the caller reads it again.
    if (!chunks_.empty() && chunks_.front()->first_seq() != after_seq + 1) {
      return absl::AbortedError(StrCat("write-ahead log: seq ", after_seq + 1,
                                       " is no longer here; read the log environment again"));
    }
    status = KeepAfter(&chunks_, after_seq, absl::StatusCode::kAborted);
  }
  if (!status.ok()) {
    // Start over next time: a segment reused between our listing and our
    // reading it, or a frame read while it was being written.
    offsets_.clear();
    groups_.reset();
    chunks_.clear();
    return status;
  }
  // chunks_ only grows at the back and shrinks at the front: the same
  // size and ends mean the same list.
  const bool same = shared_ != nullptr && shared_->size() == chunks_.size() &&
                    (chunks_.empty() || (shared_->front() == chunks_.front() &&
                                         shared_->back() == chunks_.back()));
  if (!same) shared_ = std::make_shared<const LogChunks>(chunks_);
  return shared_;
}

absl::Status CheckSegments(const std::string& dir, uint64_t checked_seq) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? absl::OkStatus() : Errno(errno, StrCat("opening ", dir));
  const bool at_rest = ::flock(fd, LOCK_SH | LOCK_NB) == 0;
  auto check = [&dir, at_rest, checked_seq]() -> absl::Status {
    PL_ASSIGN_OR_RETURN(const std::vector<uint64_t> numbers, ListSegments(dir));
    GroupReader probe(/*check_rest=*/false);
    size_t sealed = at_rest ? numbers.size() : 0;  // the segments to check
    for (size_t i = 0; !at_rest && i < numbers.size(); ++i) {
      size_t offset = 0;
      PL_RETURN_IF_ERROR(probe.ReadSegment(Path(dir, numbers[i]), numbers[i], i, &offset));
      if (offset > kSegmentHeaderBytes) sealed = i;
    }
    GroupReader strict(/*check_rest=*/true, checked_seq);
    for (size_t i = 0; i < sealed; ++i) {
      size_t offset = 0;
      PL_RETURN_IF_ERROR(strict.ReadSegment(Path(dir, numbers[i]), numbers[i], i, &offset));
    }
    return absl::OkStatus();
  };
  // A segment the writer renames for reuse while it is read can show a
  // header half written: beside a writer, a finding must be the same on
  // two looks in a row (a busy writer can race one look after another, so
  // up to five).
  absl::Status status = check();
  if (absl::IsDataLoss(status) && !at_rest) {
    absl::Status confirmed = absl::OkStatus();  // five looks, never the same twice: the writer's doing
    for (int look = 1; look < 5; ++look) {
      absl::Status again = check();
      if (again == status || !absl::IsDataLoss(again)) {
        confirmed = again;
        break;
      }
      status = std::move(again);
    }
    status = std::move(confirmed);
  }
  ::close(fd);  // and with it the lock
  return status;
}

absl::Status WalReader::ReadNew() {
  if (groups_ == nullptr) groups_ = std::make_unique<GroupReader>(/*check_rest=*/false);
  PL_ASSIGN_OR_RETURN(const std::vector<uint64_t> numbers, ListSegments(dir_));
  std::map<uint64_t, size_t> offsets;
  for (const uint64_t n : numbers) {
    size_t offset = offsets_.contains(n) ? offsets_[n] : 0;
    PL_RETURN_IF_ERROR(groups_->ReadSegment(Path(dir_, n), n, 0, &offset));
    offsets[n] = offset;
  }
  if (const std::optional<GroupReader::Rewind> rewind = groups_->TakeRewind()) {
    // The group's first segment from its first frame; later segments hold
    // only its other parts (nothing after it is written yet), from their start.
    for (auto& [n, offset] : offsets) {
      if (n == rewind->number) offset = rewind->offset;
      if (n > rewind->number) offset = 0;
    }
  }
  offsets_ = std::move(offsets);
  return ParseGroups(groups_->complete(), &chunks_, nullptr);
}

Wal::~Wal() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (preparer_.joinable()) preparer_.join();
  if (current_.fd >= 0) ::close(current_.fd);
  if (spare_ && spare_->fd >= 0) ::close(spare_->fd);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

absl::StatusOr<Wal::Segment> Wal::Prepare(uint64_t number, uint64_t size) {
  std::optional<Segment> reuse;
  {
    absl::MutexLock lock(&mu_);
    if (!released_.empty()) {
      reuse = released_.front();
      released_.pop_front();
    }
  }
  const std::string path = PathOf(number);
  if (reuse && reuse->size < kMinSegmentBytes) {
    // Too small to hold a frame (a crash while it was being made left it
    // short): reused, a group would pass over it without a frame there,
    // and its parts would not be in consecutive segments. Made anew.
    if (::unlink(PathOf(reuse->number).c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      absl::MutexLock lock(&mu_);
      released_.push_front(*reuse);
      return Errno(err, StrCat("removing the short segment ", reuse->number));
    }
    reuse.reset();
  }
  struct stat taken {};
  if (reuse && reuse->number != number && ::lstat(path.c_str(), &taken) == 0) {
    // Something else has this name (rename would replace a file, or fail
    // on a directory, at every attempt): the preparer passes the number.
    absl::MutexLock lock(&mu_);
    released_.push_front(*reuse);
    return absl::AlreadyExistsError(StrCat("write-ahead log: ", path, ": something else has that name"));
  }
  if (reuse) {
    // Its old frames stay in it, but name the old number: a reader stops
    // at the first of them. The rename must be durable before a frame is
    // written, or after a crash the file would carry its old name and
    // those frames would not be read.
    // A new header (number, salt) too: if the rename is lost in a crash
    // the header no longer names the file, and it reads as empty.
    if (::rename(PathOf(reuse->number).c_str(), path.c_str()) != 0) {
      const int err = errno;
      absl::MutexLock lock(&mu_);
      released_.push_front(*reuse);
      return Errno(err, StrCat("renaming segment ", reuse->number, " for reuse"));
    }
    reuse->number = number;  // whatever happens next, that is its name
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    absl::Status status = fd < 0 ? Errno(errno, StrCat("opening ", path)) : absl::OkStatus();
    const uint64_t salt = NewSalt();
    if (status.ok()) {
      const std::string header = SegmentHeader(number, salt);
      const iovec part{const_cast<char*>(header.data()), header.size()};
      status = WriteAll(fd, &part, 1, 0);
    }
    if (status.ok() && ::fdatasync(fd) != 0) status = Errno(errno, StrCat("syncing ", path));
    if (status.ok() && ::fsync(dir_fd_) != 0) status = Errno(errno, StrCat("syncing ", options_.dir));
    if (!status.ok()) {
      if (fd >= 0) ::close(fd);
      absl::MutexLock lock(&mu_);
      released_.push_front(*reuse);
      return status;
    }
    DirectIo(fd);
    return Segment{number, fd, reuse->size, 0, salt};
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    return absl::AlreadyExistsError(StrCat("write-ahead log: creating ", path, ": something else has that name"));
  }
  if (fd < 0) return Errno(errno, StrCat("creating ", path));
  // Zeros written, not a hole or fallocate's unwritten extents: writing
  // into either changes the file's block map, which each fdatasync would
  // then journal.
  const uint64_t salt = NewSalt();
  std::string block(kZeroBlock, '\0');
  const std::string header = SegmentHeader(number, salt);
  block.replace(0, header.size(), header);  // the first block only
  absl::Status status;
  for (uint64_t at = 0; at < size && status.ok(); at += kZeroBlock) {
    const iovec part{block.data(), static_cast<size_t>(std::min<uint64_t>(kZeroBlock, size - at))};
    status = WriteAll(fd, &part, 1, at);
    if (at == 0) block.replace(0, header.size(), std::string(header.size(), '\0'));
  }
  if (status.ok() && ::fdatasync(fd) != 0) status = Errno(errno, StrCat("syncing ", path));
  if (status.ok() && ::fsync(dir_fd_) != 0) status = Errno(errno, StrCat("syncing ", options_.dir));
  if (!status.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return status;
  }
  DirectIo(fd);
  return Segment{number, fd, size, 0, salt};
}

void Wal::PrepareLoop() {
  bool reported = false;
  for (;;) {
    uint64_t number = 0, size = 0;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Wal* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->stop_ || !w->spare_; }, this));
      if (stop_) return;
      number = next_number_;
      size = next_size_;
    }
    absl::StatusOr<Segment> s = Prepare(number, size);
    absl::MutexLock lock(&mu_);
    ++attempts_;
    // The next attempt takes the same number: a group goes on only into
    // the next number (Append), and recovery joins nothing else. Only a
    // name taken by something else here is passed over, at once: that is
    // no reason to refuse commits.
    if (s.ok() || absl::IsAlreadyExists(s.status())) next_number_ = number + 1;
    if (absl::IsAlreadyExists(s.status())) {
      Log(options_.log, StrCat(std::string(s.status().message()), "; using the next number"));
      continue;
    }
    if (s.ok()) {
      spare_ = *s;
      prepare_error_ = absl::OkStatus();
      if (s->size == size) next_size_ = std::min(size * 2, options_.segment_bytes_max);
      if (reported) Log(options_.log, "write-ahead log segments can be prepared again");
      reported = false;
      continue;
    }
    // A full disk, most likely: commits are refused meanwhile (Roll), and
    // this retries every second until there is room.
    prepare_error_ = s.status();
    if (!reported) {
      Log(options_.log, StrCat(std::string(s.status().message()), "; retrying every second"));
    }
    reported = true;
    wake_ = false;
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](Wal* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->stop_ || w->wake_; },
                             this),
                         absl::Seconds(1));
  }
}

absl::Status Wal::Roll() {
  Segment next;
  {
    absl::MutexLock lock(&mu_);
    // After a failure, one more attempt now rather than at the next retry:
    // the room may be back (the disk grown, files deleted).
    const uint64_t seen = attempts_;
    const bool failing = !prepare_error_.ok();
    wake_ = true;
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return spare_.has_value() || (failing ? attempts_ > seen : !prepare_error_.ok());
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(10));
    if (!spare_) {
      return absl::ResourceExhaustedError(StrCat(
          "no write-ahead log segment ready",
          prepare_error_.ok() ? std::string(" after 10 s") : StrCat(": ", std::string(prepare_error_.message()))));
    }
    next = *spare_;
    spare_.reset();
    // The segment being left holds frames of the group being written; its
    // seqs are past any checkpoint, so this keeps Release() from handing
    // the file to the preparer before the group is synced (Append sets the
    // last seqs of every segment it wrote once it is).
    if (!live_.empty() && live_.back().number == current_.number) {
      live_.back().last_seq = std::max(live_.back().last_seq, group_last_seq_);
    }
    live_.push_back(next);
  }
  current_ = next;
  // The first block, header and all, is written again with the first
  // frames: stage the header as Prepare wrote it.
  stage_at_ = 0;
  offset_ = 0;
  const std::string header = SegmentHeader(next.number, next.salt);
  std::memcpy(Stage(header.size()), header.data(), header.size());
  offset_ = kSegmentHeaderBytes;
  staged_ = false;
  return absl::OkStatus();
}

char* Wal::Stage(size_t n) {
  const size_t used = static_cast<size_t>(offset_ - stage_at_);
  const size_t need = static_cast<size_t>(AlignUp(used + n));
  if (need > stage_capacity_) {
    const size_t capacity = std::max(need, 2 * stage_capacity_);
    Staging grown(static_cast<char*>(std::aligned_alloc(kBlock, capacity)));
    PL_CHECK(grown != nullptr);
    if (used > 0) std::memcpy(grown.get(), stage_.get(), used);
    stage_ = std::move(grown);
    stage_capacity_ = capacity;
  }
  staged_ = true;
  return stage_.get() + used;
}

absl::Status Wal::WriteStaged() {
  if (!staged_) return absl::OkStatus();
  const size_t used = static_cast<size_t>(offset_ - stage_at_);
  const size_t end = static_cast<size_t>(AlignUp(used));
  std::memset(stage_.get() + used, 0, end - used);
  const iovec part{stage_.get(), end};
  if (absl::Status s = WriteAll(current_.fd, &part, 1, stage_at_); !s.ok()) {
    // A device that refuses these direct writes (logical blocks over
    // 4 KiB, say) gets the same bytes through the page cache instead.
    const int flags = ::fcntl(current_.fd, F_GETFL);
    if (flags < 0 || (flags & O_DIRECT) == 0 || ::fcntl(current_.fd, F_SETFL, flags & ~O_DIRECT) != 0) {
      return s;
    }
    PL_RETURN_IF_ERROR(WriteAll(current_.fd, &part, 1, stage_at_));
  }
  staged_ = false;
  const uint64_t keep = AlignDown(offset_);
  std::memmove(stage_.get(), stage_.get() + (keep - stage_at_), static_cast<size_t>(offset_ - keep));
  stage_at_ = keep;
  return absl::OkStatus();
}

absl::Status Wal::Append(const LogChunk& chunk) {
  if (!broken_.ok()) return broken_;
  const std::string_view bytes = chunk.bytes();
  const uint64_t first_seq = chunk.first_seq();
  group_last_seq_ = chunk.last_seq();
  // To sync; all but the last are closed after. Two inline: a group that
  // spans more segments than that allocates, no other commit does.
  absl::InlinedVector<Segment, 2> touched;
  size_t done = 0;
  absl::Status status;
  while (done < bytes.size()) {
    // Whole blocks only: a file whose size is not a multiple of them (an
    // older segment, reused) loses its last, partial one.
    const uint64_t room = AlignDown(current_.size);
    if (current_.fd < 0 || room < offset_ + kHeaderBytes + 1) {
      if (current_.fd >= 0) {
        status = WriteStaged();  // this group's frames in the segment being left
        if (!status.ok()) {
          broken_ = status;
          break;
        }
        if (touched.empty() || touched.back().number != current_.number) {
          ::close(current_.fd);  // full before this group: synced already
        }
      }
      const uint64_t left = current_.number;
      current_.fd = -1;
      // Frames already written for this group have no last frame: a
      // reader drops them, so the group is simply not there.
      status = Roll();
      if (!status.ok()) break;
      if (done > 0 && (current_.number != left + 1 || AlignDown(current_.size) < offset_ + kHeaderBytes + 1)) {
        // Recovery joins a group's parts only across consecutive numbers
        // (GroupReader::Take). The group is refused whole; sent again, it
        // starts in this segment.
        status = absl::ResourceExhaustedError(
            StrCat("write-ahead log: a group commit cannot go on from segment ", left, " into segment ",
                   current_.number, "; not written, send it again"));
        break;
      }
      if (done > 0 && options_.after_roll_in_group) options_.after_roll_in_group();
      continue;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size() - done, room - offset_ - kHeaderBytes));
    const uint32_t flags = (done == 0 ? kFirst : 0) | (done + n == bytes.size() ? kLast : 0);
    frame_.clear();
    ByteWriter w(&frame_);
    w.U32(kMagic);
    w.U32(flags);
    w.U64(current_.number);
    w.U64(first_seq);
    w.U32(static_cast<uint32_t>(n));
    const std::string_view payload = bytes.substr(done, n);
    w.U32(Crc(current_.salt, frame_, payload));
    char* at = Stage(kHeaderBytes + n);
    std::memcpy(at, frame_.data(), kHeaderBytes);
    std::memcpy(at + kHeaderBytes, payload.data(), n);
    offset_ += kHeaderBytes + n;
    done += n;
    if (touched.empty() || touched.back().number != current_.number) touched.push_back(current_);
  }
  if (status.ok()) {
    status = WriteStaged();
    if (!status.ok()) broken_ = status;
  }
  for (const Segment& s : touched) {
    if (status.ok() && ::fdatasync(s.fd) != 0) {
      status = Errno(errno, StrCat("syncing segment ", s.number));
      broken_ = status;
    }
  }
  for (const Segment& s : touched) {
    if (s.fd != current_.fd) ::close(s.fd);
  }
  if (!status.ok()) {
    if (!broken_.ok()) {
      broken_ = absl::Status(broken_.code(), StrCat(std::string(broken_.message()),
                                                   "; no commit is accepted until a restart"));
    }
    return status;
  }
  absl::MutexLock lock(&mu_);
  for (Segment& s : live_) {
    for (const Segment& t : touched) {
      if (s.number == t.number) s.last_seq = chunk.last_seq();
    }
  }
  return absl::OkStatus();
}

void Wal::Release(uint64_t seq) {
  std::vector<std::string> doomed;
  {
    absl::MutexLock lock(&mu_);
    // The newest live segment may be the one being written.
    while (live_.size() > 1 && live_.front().last_seq <= seq) {
      released_.push_back(live_.front());
      live_.pop_front();
    }
    // A few are kept for reuse; the rest give their space back.
    while (released_.size() > 4) {
      doomed.push_back(PathOf(released_.back().number));
      released_.pop_back();
    }
  }
  for (const std::string& path : doomed) ::unlink(path.c_str());
}

}  // namespace pointledger::ledger
