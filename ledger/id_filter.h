// Internal to ledger/: a Bloom filter over the transaction ids (16 bytes)
// in the state environment, so that the writer's exactly-once check of a
// new id (nearly every transaction's) skips LMDB's B+tree: a descent of
// ~4 pages with a binary search of 16-byte keys on each, ~15% of the
// writer's time in BM_LedgerApply/8190 (BENCHMARKS.md).
//
// A split-block Bloom filter (as Parquet's): an id sets 8 bits in one
// 32-byte block, one per 32-bit word, so a lookup touches one cache line.
// It grows without a rebuild: when a part holds its capacity a new part
// twice as large takes further ids, and a lookup asks each part. No false
// negatives; about 0.1% false positives (which only cost the LMDB lookup).
//
// Not thread-safe: the writer's thread alone adds and asks.
#ifndef POINTLEDGER_LEDGER_ID_FILTER_H_
#define POINTLEDGER_LEDGER_ID_FILTER_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ledger/huge_pages.h"

namespace pointledger::ledger {

class IdFilter {
 public:
  // Room for `expected` ids in the first part (at least 1M).
  explicit IdFilter(uint64_t expected = 0);

  void Add(std::string_view id);
  // False only if `id` was never added.
  bool MayContain(std::string_view id) const;

  uint64_t size() const { return size_; }
  uint64_t bytes() const;

 private:
  using Block = std::array<uint32_t, 8>;
  struct Part {
    std::vector<Block, HugePageAllocator<Block>> blocks;
    uint64_t capacity = 0;
    uint64_t count = 0;
  };
  static constexpr uint64_t kBitsPerId = 16;

  void AddPart(uint64_t capacity);

  std::vector<Part> parts_;
  uint64_t size_ = 0;
};

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_ID_FILTER_H_
