#include "ledger/id_filter.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace pointledger::ledger {

namespace {

// The salts of Parquet's split-block Bloom filter: bit i of a block comes
// from the id's hash times salt i.
constexpr uint32_t kSalt[8] = {0x47b6137bU, 0x44974d91U, 0x8824ad5bU, 0xa2b7289dU,
                               0x705495c7U, 0x2df1424bU, 0x9efc4947U, 0x5c6bfb31U};

uint64_t HashId(std::string_view id) { return absl::HashOf(id); }

// The block of a hash among n: the high bits, scaled (no modulo).
uint64_t BlockOf(uint64_t hash, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(hash) * n) >> 64);
}

uint32_t Mask(uint32_t h, int i) { return uint32_t{1} << ((h * kSalt[i]) >> 27); }

}  // namespace

IdFilter::IdFilter(uint64_t expected) { AddPart(std::max<uint64_t>(expected, 1 << 20)); }

void IdFilter::AddPart(uint64_t capacity) {
  Part part;
  part.capacity = capacity;
  part.blocks.assign((capacity * kBitsPerId + 255) / 256, Block{});
  parts_.push_back(std::move(part));
}

void IdFilter::Add(std::string_view id) {
  if (parts_.back().count >= parts_.back().capacity) AddPart(parts_.back().capacity * 2);
  Part& part = parts_.back();
  const uint64_t h = HashId(id);
  Block& block = part.blocks[BlockOf(h, part.blocks.size())];
  for (int i = 0; i < 8; ++i) block[i] |= Mask(static_cast<uint32_t>(h), i);
  ++part.count;
  ++size_;
}

bool IdFilter::MayContain(std::string_view id) const {
  const uint64_t h = HashId(id);
  for (const Part& part : parts_) {
    const Block& block = part.blocks[BlockOf(h, part.blocks.size())];
    bool all = true;
    for (int i = 0; i < 8; ++i) all &= (block[i] & Mask(static_cast<uint32_t>(h), i)) != 0;
    if (all) return true;
  }
  return false;
}

uint64_t IdFilter::bytes() const {
  uint64_t total = 0;
  for (const Part& part : parts_) total += part.blocks.size() * sizeof(Block);
  return total;
}

}  // namespace pointledger::ledger
