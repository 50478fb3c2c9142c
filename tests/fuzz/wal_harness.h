// The input format of the wal fuzz target (tests/fuzz/wal_fuzz.cc): what
// it decodes into segment files, and what its seed writer
// (tests/fuzz/wal_seeds.cc) encodes.
//
// Why a format of its own: every frame's CRC covers its segment's salt
// (ledger/wal.h), so a frame whose bytes a fuzzer changed almost never
// checks, and the reader stops there. Here the harness writes the segment
// headers and computes each frame's CRC around the flags, seqs and payload
// that the input chooses (unless it asks for a CRC that does not check), so
// the fuzzer's bytes reach what lies behind the CRC: joining frames into
// groups across segments, LogChunk::Parse, the seqs' continuity, and the
// ledger's replay of the records. One mode writes the input as a segment
// file as it is, for the header and frame checks themselves.
//
//   byte 0  the log environment's last seq (after_seq), as Seq() decodes it
//   byte 1  bit 0: raw: the rest of the input is the first segment's file,
//           with no ops; bits 1-2: how the last segment ends (End); bits
//           3-4: the first segment's header (Header); bits 5-6: the first
//           segment's number, less 1; bit 7: a forged chain (below)
//   then ops to the end of the input, each a byte and its operands:
//     kind (op & 3) 0 or 3: a frame: flags (op >> 2) & 3 (1: first of its
//       group, 2: last); bit 4: its CRC does not check; bit 5: it names the
//       next segment's number, not its own. Operands: U8 first seq of the
//       group (Seq()), U16 payload size (cut to what is left), the payload.
//     kind 1: the segment ends ((op >> 2) & 3: End) and the next begins,
//       one number later (two if bit 4); bits 5-6: its header (Header).
//     kind 2: bytes as they are (a torn frame, garbage): U16 size (cut to
//       what is left), the bytes.
//
// A forged chain: each whole `log` entry of a frame's payload (U8 table 0 |
// U64 seq | U32 size | 32-byte hash | record) gets the hash the writer
// would have given it, SHA-256 of the hash before (zeros for the first)
// and its record, so that a changed record gets past the replay's hash
// checks to the engine: what a writer's bug, or someone who can write the
// disk, makes. Entries cut across frames are left as they are.
//
// The layout written is wal.h's, written out here rather than with the
// writer's code (as tests/ledger/wal_test.cc does), so that a change of
// the format shows as a change here.
#ifndef POINTLEDGER_TESTS_FUZZ_WAL_HARNESS_H_
#define POINTLEDGER_TESTS_FUZZ_WAL_HARNESS_H_

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/sha256.h"
#include "ledger/status.h"

namespace pointledger::fuzz {

inline constexpr uint32_t kWalSegmentMagic = 0x53574c50;  // "PLWS"
inline constexpr uint32_t kWalFrameMagic = 0x31574c50;    // "PLW1"
inline constexpr size_t kWalSegmentHeaderBytes = 64;
inline constexpr size_t kWalFrameHeaderBytes = 32;
inline constexpr size_t kWalBlockBytes = 4096;
inline constexpr size_t kWalMinSegmentBytes = 4 * kWalBlockBytes;

// How a segment ends after what the ops wrote.
enum class End : uint8_t {
  kFilled = 0,   // right there: a segment the writer filled
  kBlock = 1,    // zeros up to a 4 KiB boundary
  kMinSize = 2,  // zeros up to at least 16 KiB, whole blocks: as the writer makes them
  kOddSize = 3,  // zeros up to a 4 KiB boundary and 100 bytes more (an older segment size)
};

// How a segment begins.
enum class Header : uint8_t {
  kChecks = 0,       // names the segment, with its salt
  kZeros = 1,        // a new file whose header a crash kept from the disk
  kOtherNumber = 2,  // checks but names another number (a rename a crash lost)
  kNone = 3,         // none: the ops write the file from byte 0
};

// Small seqs, where groups meet after_seq and each other, and the largest,
// where seq + 1 wraps around.
inline uint64_t Seq(uint8_t v) {
  return v < 0xf0 ? v : std::numeric_limits<uint64_t>::max() - (0xff - v);
}

// The salt of segment `number` (any value checks: the harness knows it).
inline uint64_t SaltOf(uint64_t number) { return 0x5a17000000000000 ^ number; }

inline uint32_t WalCrc(uint32_t crc, std::string_view s) {
  return static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

template <typename T>
void AppendLe(std::string* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// U32 magic | U32 version 1 | U64 number | U64 salt | U32 CRC-32 of the
// 24 bytes before it, then zeros to 64 bytes; the salt is `number`'s, the
// number written `named`.
inline std::string WalSegmentHeader(uint64_t number, uint64_t named) {
  std::string out;
  AppendLe(&out, kWalSegmentMagic);
  AppendLe(&out, uint32_t{1});
  AppendLe(&out, named);
  AppendLe(&out, SaltOf(number));
  AppendLe(&out, WalCrc(0, out));
  out.resize(kWalSegmentHeaderBytes, '\0');
  return out;
}

// U32 magic | U32 flags | U64 segment number | U64 first seq | U32 size |
// U32 CRC-32 of the salt, the 28 bytes before it and the payload | payload.
inline void AppendWalFrame(std::string* out, uint64_t number, uint64_t named, uint32_t flags,
                           uint64_t first_seq, std::string_view payload, bool checks) {
  PL_CHECK(payload.size() <= UINT32_MAX);
  std::string header;
  AppendLe(&header, kWalFrameMagic);
  AppendLe(&header, flags);
  AppendLe(&header, named);
  AppendLe(&header, first_seq);
  AppendLe(&header, static_cast<uint32_t>(payload.size()));
  std::string salt;
  AppendLe(&salt, SaltOf(number));
  uint32_t crc = WalCrc(WalCrc(WalCrc(0, salt), header), payload);
  if (!checks) crc ^= 1;
  AppendLe(&header, crc);
  *out += header;
  out->append(payload);
}

struct WalSegment {
  uint64_t number = 0;
  std::string bytes;
};

struct WalInput {
  uint64_t after_seq = 0;
  std::vector<WalSegment> segments;  // in number order
  bool forged = false;               // the records' hashes are the harness's
};

// Decodes an input (any bytes) into segment files.
class WalInputDecoder {
 public:
  static WalInput Decode(std::span<const uint8_t> input) {
    WalInputDecoder d(input);
    return d.Run();
  }

 private:
  explicit WalInputDecoder(std::span<const uint8_t> input) : in_(input) {}

  WalInput Run() {
    WalInput out;
    out.after_seq = Seq(U8());
    const uint8_t mode = U8();
    const uint64_t first_number = uint64_t{1} + ((mode >> 5) & 3);
    if ((mode & 1) != 0) {
      const std::span<const uint8_t> rest = in_.subspan(pos_);
      out.segments.push_back({first_number, std::string(rest.begin(), rest.end())});
      return out;
    }
    forge_ = out.forged = (mode & 0x80) != 0;
    out.segments.push_back(Begin(first_number, static_cast<Header>((mode >> 3) & 3)));
    while (pos_ < in_.size()) {
      const uint8_t op = U8();
      WalSegment& current = out.segments.back();
      switch (op & 3) {
        case 1: {
          Finish(&current, static_cast<End>((op >> 2) & 3));
          const uint64_t next = current.number + ((op & 0x10) != 0 ? 2 : 1);
          out.segments.push_back(Begin(next, static_cast<Header>((op >> 5) & 3)));
          break;
        }
        case 2:
          current.bytes += Bytes(U16());
          break;
        default: {
          const uint32_t flags = (op >> 2) & 3;
          const uint64_t first_seq = Seq(U8());
          std::string payload = Bytes(U16());
          if (forge_) Forge(&payload);
          const uint64_t named = current.number + ((op & 0x20) != 0 ? 1 : 0);
          AppendWalFrame(&current.bytes, current.number, named, flags, first_seq, payload,
                      /*checks=*/(op & 0x10) == 0);
          break;
        }
      }
    }
    Finish(&out.segments.back(), static_cast<End>((mode >> 1) & 3));
    return out;
  }

  static WalSegment Begin(uint64_t number, Header header) {
    WalSegment s{number, {}};
    switch (header) {
      case Header::kChecks: s.bytes = WalSegmentHeader(number, number); break;
      case Header::kZeros: s.bytes.assign(kWalSegmentHeaderBytes, '\0'); break;
      case Header::kOtherNumber: s.bytes = WalSegmentHeader(number, number + 1000); break;
      case Header::kNone: break;
    }
    return s;
  }

  static void Finish(WalSegment* s, End end) {
    const size_t size = s->bytes.size();
    const size_t block = (size + kWalBlockBytes - 1) / kWalBlockBytes * kWalBlockBytes;
    switch (end) {
      case End::kFilled: break;
      case End::kBlock: s->bytes.resize(block, '\0'); break;
      case End::kMinSize: s->bytes.resize(std::max(block, kWalMinSegmentBytes), '\0'); break;
      case End::kOddSize: s->bytes.resize(block + 100, '\0'); break;
    }
  }

 private:
  uint8_t U8() { return pos_ < in_.size() ? in_[pos_++] : 0; }
  uint16_t U16() {
    const uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (U8() << 8));
  }
  std::string Bytes(size_t n) {
    n = std::min(n, in_.size() - pos_);
    std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  // See "A forged chain" above.
  void Forge(std::string* payload) {
    size_t at = 0;
    while (payload->size() - at >= 13) {
      const auto table = static_cast<uint8_t>((*payload)[at]);
      uint32_t size = 0;
      for (size_t i = 0; i < 4; ++i) {
        size |= uint32_t{static_cast<uint8_t>((*payload)[at + 9 + i])} << (8 * i);
      }
      const size_t value = at + 13;
      if (size > payload->size() - value) return;
      if (table == 0 && size >= 32) {
        const std::string_view prev(reinterpret_cast<const char*>(prev_.data()), prev_.size());
        prev_ = ledger::Sha256({prev, std::string_view(*payload).substr(value + 32, size - 32)});
        std::memcpy(payload->data() + value, prev_.data(), prev_.size());
      }
      at = value + size;
    }
  }

  const std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool forge_ = false;
  ledger::Digest prev_{};
};

// Builds an input (for seeds): the calls say what the decoder is to write.
class WalInputWriter {
 public:
  WalInputWriter(uint8_t after_seq, uint8_t first_number, Header first_header, End last_end,
                 bool forged = false) {
    PL_CHECK(first_number >= 1 && first_number <= 4);
    out_.push_back(static_cast<char>(after_seq));
    out_.push_back(static_cast<char>(static_cast<uint8_t>(last_end) << 1 |
                                     static_cast<uint8_t>(first_header) << 3 |
                                     (first_number - 1) << 5 | (forged ? 0x80 : 0)));
  }

  // `first_seq` as Seq() decodes it. REQUIRES: payload.size() < 65536.
  WalInputWriter& Frame(uint32_t flags, uint8_t first_seq, std::string_view payload,
                        bool checks = true) {
    PL_CHECK(flags <= 3 && payload.size() <= UINT16_MAX);
    out_.push_back(static_cast<char>(flags << 2 | (checks ? 0 : 0x10)));
    out_.push_back(static_cast<char>(first_seq));
    U16(payload.size());
    out_.append(payload);
    return *this;
  }
  WalInputWriter& NextSegment(End end, bool skip_number, Header header) {
    out_.push_back(static_cast<char>(1 | static_cast<uint8_t>(end) << 2 | (skip_number ? 0x10 : 0) |
                                     static_cast<uint8_t>(header) << 5));
    return *this;
  }
  WalInputWriter& Raw(std::string_view bytes) {
    PL_CHECK(bytes.size() <= UINT16_MAX);
    out_.push_back(2);
    U16(bytes.size());
    out_.append(bytes);
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  void U16(size_t n) {
    out_.push_back(static_cast<char>(n & 0xff));
    out_.push_back(static_cast<char>(n >> 8));
  }
  std::string out_;
};

}  // namespace pointledger::fuzz

#endif  // POINTLEDGER_TESTS_FUZZ_WAL_HARNESS_H_
