// The input format of the state fuzz target (tests/fuzz/state_fuzz.cc):
// edits to the rows of a real ledger's state environment, then
// transactions applied over them. Its seed writer (tests/fuzz/state_seeds.cc)
// encodes with StateInputWriter.
//
// Why a format of its own: the state environment is an LMDB file, and a
// fuzzer's bytes written over its pages mostly break LMDB's own B+tree
// (MDB_CORRUPTED, or LMDB reading wild pointers: LMDB trusts its pages),
// which is not the engine's code. The threat here (issue 4) is a value or
// key changed inside LMDB's format: someone who edits a row with the LMDB
// API, or a bit flipped inside a value. So rows are chosen by table and
// index, and their bytes edited.
//
//   edits, at most kStateEditsMax, each 6 bytes and a payload:
//     U8  op: op % kOpCount (Op below); an op byte >= kEndOfEdits ends the
//         edits (and is not a menu item)
//     U8  table: % 15: 0-13 the state tables ids ... flows (Dbs 2-15), 14 meta
//     U16 row (big-endian): % the table's rows, in key order, as they are
//         when the edit runs
//     U8  a, U8 b: the op's operands
//     payload: b % 64 bytes, for the ops that take one (TakesPayload), cut
//         to what is left of the input (their b is its size, and kInsert's
//         xor)
//   then, to the end of the input, menu items: each byte % kMenuCount picks
//   one transaction (StateMenu in state_fuzz.cc), applied as a batch of its
//   own by a writer over the edited state; at most kStateMenuMax.
#ifndef POINTLEDGER_TESTS_FUZZ_STATE_INPUT_H_
#define POINTLEDGER_TESTS_FUZZ_STATE_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace pointledger::fuzz {

enum class Op : uint8_t {
  kOverwrite = 0,    // value bytes from a % (size + 1) on become the payload (may grow it)
  kFlipBit = 1,      // value byte a % size, bit b % 8
  kTruncate = 2,     // value cut to a % size bytes
  kAppend = 3,       // payload appended to the value (the byte a when empty)
  kSetWord = 4,      // a little-endian U64 at a % size (moved left to fit) := Interesting(b)
  kKeyOverwrite = 5,  // key bytes from a % size on become the payload (byte a ^ b when
                      // empty); the row moves there, replacing what that key held
  kKeyResize = 6,    // no payload: the key cut to a % size bytes (at least 1); else the
                     // payload appended; the row moves
  kDelete = 7,       // the row is deleted
  kInsert = 8,       // a row no transaction wrote: the row's key with byte a % size
                     // xor-ed with b (0x5a for 0), and the row's value (or the payload)
  kCopyValue = 9,    // the value of the row a + 1 rows further (cyclic) replaces this one's
  kReplace = 10,     // the value becomes the payload
};
inline constexpr uint8_t kOpCount = 11;
inline constexpr uint8_t kEndOfEdits = 0xf0;
inline constexpr size_t kStateEditsMax = 8;
inline constexpr size_t kStateMenuMax = 16;
inline constexpr uint8_t kStateTableChoices = 15;  // 14 state tables and meta
inline constexpr size_t kPayloadMax = 63;

inline bool TakesPayload(Op op) {
  return op == Op::kOverwrite || op == Op::kAppend || op == Op::kKeyOverwrite ||
         op == Op::kKeyResize || op == Op::kInsert || op == Op::kReplace;
}

// 64-bit values that sit on the edges of the engine's arithmetic: the
// amounts and times of the state's rows.
inline uint64_t Interesting(uint8_t b, uint64_t old) {
  switch (b % 12) {
    case 0: return 0;
    case 1: return 1;
    case 2: return UINT64_MAX;
    case 3: return uint64_t{INT64_MAX};
    case 4: return uint64_t{1} << 63;
    case 5: return old + 1;
    case 6: return old - 1;
    case 7: return old * 2;
    case 8: return old + 1'000'000;
    case 9: return old - 1'000'000'000'000;  // a time moved ~17 minutes earlier
    case 10: return uint64_t{INT64_MAX} - 1;
    default: return old ^ (uint64_t{1} << (b % 64));
  }
}

struct StateEdit {
  Op op = Op::kFlipBit;
  uint8_t table = 0;  // < kStateTableChoices
  uint16_t row = 0;
  uint8_t a = 0;
  uint8_t b = 0;
  std::string payload;
};

struct StateInput {
  std::vector<StateEdit> edits;
  std::vector<uint8_t> menu;  // indexes, not yet reduced
};

inline StateInput DecodeStateInput(std::span<const uint8_t> data) {
  StateInput in;
  size_t at = 0;
  while (in.edits.size() < kStateEditsMax && at < data.size()) {
    if (data[at] >= kEndOfEdits) {
      ++at;
      break;
    }
    if (data.size() - at < 6) {
      at = data.size();
      break;
    }
    StateEdit e;
    e.op = static_cast<Op>(data[at] % kOpCount);
    e.table = static_cast<uint8_t>(data[at + 1] % kStateTableChoices);
    e.row = static_cast<uint16_t>(data[at + 2] << 8 | data[at + 3]);
    e.a = data[at + 4];
    e.b = data[at + 5];
    at += 6;
    if (TakesPayload(e.op)) {
      const size_t n = std::min<size_t>(e.b % (kPayloadMax + 1), data.size() - at);
      e.payload.assign(reinterpret_cast<const char*>(data.data() + at), n);
      at += n;
    }
    in.edits.push_back(std::move(e));
  }
  for (; at < data.size() && in.menu.size() < kStateMenuMax; ++at) in.menu.push_back(data[at]);
  return in;
}

// For the seed writer.
class StateInputWriter {
 public:
  StateInputWriter& Edit(Op op, uint8_t table, uint16_t row, uint8_t a, uint8_t b,
                         const std::string& payload = "") {
    bytes_.push_back(static_cast<char>(op));
    bytes_.push_back(static_cast<char>(table));
    bytes_.push_back(static_cast<char>(row >> 8));
    bytes_.push_back(static_cast<char>(row & 0xff));
    bytes_.push_back(static_cast<char>(a));
    if (TakesPayload(op)) {
      bytes_.push_back(static_cast<char>(payload.size() & kPayloadMax));
      bytes_ += payload.substr(0, kPayloadMax);
    } else {
      bytes_.push_back(static_cast<char>(b));
    }
    return *this;
  }
  StateInputWriter& Menu(std::initializer_list<uint8_t> items) {
    bytes_.push_back(static_cast<char>(kEndOfEdits));
    for (uint8_t i : items) bytes_.push_back(static_cast<char>(i));
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace pointledger::fuzz

#endif  // POINTLEDGER_TESTS_FUZZ_STATE_INPUT_H_
