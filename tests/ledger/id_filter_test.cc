// The writer's Bloom filter over ids (ledger/id_filter.h): it must never
// say "absent" for an id it was given, however far it grows; and it must
// say "absent" for nearly every other id, or it saves nothing.
#include "ledger/id_filter.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pointledger::ledger {
namespace {

std::string RandomId(std::mt19937_64& rng) {
  std::string id(16, '\0');
  for (char& c : id) c = static_cast<char>(rng());
  return id;
}

TEST(IdFilterTest, EveryIdAddedIsFoundAcrossGrowth) {
  std::mt19937_64 rng(3);
  IdFilter filter;  // room for 2^20 ids in its first part: 3.2M make it grow twice
  std::vector<std::string> ids;
  for (int i = 0; i < 3'200'000; ++i) {
    ids.push_back(RandomId(rng));
    filter.Add(ids.back());
  }
  EXPECT_EQ(filter.size(), ids.size());
  for (const std::string& id : ids) ASSERT_TRUE(filter.MayContain(id));
  // Parts of 2^20, 2^21 and 2^22 ids at 16 bits each.
  EXPECT_EQ(filter.bytes(), uint64_t{7} << 21);
}

TEST(IdFilterTest, FewIdsNeverAddedAreReportedAsMaybePresent) {
  std::mt19937_64 rng(5);
  IdFilter filter(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) filter.Add(RandomId(rng));
  int false_positives = 0;
  for (int i = 0; i < 1'000'000; ++i) false_positives += filter.MayContain(RandomId(rng));
  EXPECT_LT(false_positives, 5'000) << "over 0.5% false positives";
}

TEST(IdFilterTest, SequentialLookingIdsSpreadToo) {
  // Client ids are often counters; the hash must spread them anyway.
  IdFilter filter(1'000'000);
  for (uint64_t i = 0; i < 1'000'000; ++i) {
    std::string id(16, '\0');
    std::memcpy(id.data(), &i, sizeof(i));
    filter.Add(id);
  }
  int false_positives = 0;
  for (uint64_t i = 1'000'000; i < 2'000'000; ++i) {
    std::string id(16, '\0');
    std::memcpy(id.data(), &i, sizeof(i));
    false_positives += filter.MayContain(id);
  }
  EXPECT_LT(false_positives, 5'000);
}

}  // namespace
}  // namespace pointledger::ledger
