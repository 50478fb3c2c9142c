// The load generator's latency histogram: bucket arithmetic and the
// percentiles of known distributions.
#include "bench/histogram.h"

#include <cmath>
#include <memory>
#include <random>

#include "gtest/gtest.h"

namespace pointledger::bench {
namespace {

// Within the histogram's promised relative error (1/128).
void ExpectNear(uint64_t got, double want) {
  EXPECT_LE(std::fabs(static_cast<double>(got) - want), want / 128.0 + 1.0)
      << "got " << got << " want " << want;
}

TEST(Histogram, EmptyReportsZero) {
  auto h = std::make_unique<Histogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->ValueAtPercentile(50), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->min(), 0u);
}

TEST(Histogram, BucketsCoverEveryValueInOrder) {
  EXPECT_EQ(Histogram::IndexOf(0), 0u);
  EXPECT_EQ(Histogram::IndexOf(127), 127u);
  EXPECT_EQ(Histogram::IndexOf(128), 128u);
  EXPECT_EQ(Histogram::IndexOf(255), 255u);
  EXPECT_EQ(Histogram::IndexOf(256), 256u);
  EXPECT_EQ(Histogram::IndexOf(257), 256u);
  EXPECT_EQ(Histogram::IndexOf(UINT64_MAX), Histogram::kBucketCount - 1);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t index = Histogram::IndexOf(v);
    ASSERT_LT(index, Histogram::kBucketCount);
    ASSERT_LE(Histogram::LowestInBucket(index), v);
    ASSERT_GE(Histogram::HighestInBucket(index), v);
    // The bucket is narrow: at most 1/128 of its lowest value.
    ASSERT_LE(Histogram::HighestInBucket(index) - Histogram::LowestInBucket(index),
              Histogram::LowestInBucket(index) / 128);
  }
  for (size_t i = 0; i + 1 < Histogram::kBucketCount; ++i) {
    ASSERT_EQ(Histogram::HighestInBucket(i) + 1, Histogram::LowestInBucket(i + 1)) << i;
  }
}

TEST(Histogram, SmallValuesAreExact) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v = 1; v <= 100; ++v) h->Record(v);
  EXPECT_EQ(h->ValueAtPercentile(50), 50u);
  EXPECT_EQ(h->ValueAtPercentile(99), 99u);
  EXPECT_EQ(h->ValueAtPercentile(100), 100u);
  EXPECT_EQ(h->ValueAtPercentile(0), 1u);
  EXPECT_EQ(h->min(), 1u);
  EXPECT_DOUBLE_EQ(h->mean(), 50.5);
}

// The rank rounds up (session 19): p99 of 1,059 ones and 11 hundreds is
// 100, since more than 1% of the values are above 1.
TEST(Histogram, APercentileNeverHasMoreThanItsShareAbove) {
  auto h = std::make_unique<Histogram>();
  for (int i = 0; i < 1059; ++i) h->Record(1);
  for (int i = 0; i < 11; ++i) h->Record(100);
  EXPECT_EQ(h->ValueAtPercentile(99), 100u);
  EXPECT_EQ(h->ValueAtPercentile(98), 1u);
  auto two = std::make_unique<Histogram>();
  two->Record(1);
  two->Record(100);
  EXPECT_EQ(two->ValueAtPercentile(50), 1u);
  EXPECT_EQ(two->ValueAtPercentile(74), 100u);
}

TEST(Histogram, UniformDistribution) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v = 1; v <= 1'000'000; ++v) h->Record(v * 1000);  // 1 us .. 1 s in ns
  ExpectNear(h->ValueAtPercentile(50), 500'000'000);
  ExpectNear(h->ValueAtPercentile(99), 990'000'000);
  ExpectNear(h->ValueAtPercentile(99.9), 999'000'000);
  EXPECT_EQ(h->ValueAtPercentile(100), 1'000'000'000u);
  EXPECT_EQ(h->max(), 1'000'000'000u);
}

TEST(Histogram, ExponentialDistribution) {
  // Percentiles of Exp(mean m): -m ln(1 - p).
  auto h = std::make_unique<Histogram>();
  std::mt19937_64 rng(1);
  const double mean_ns = 2'000'000;
  const int n = 2'000'000;
  for (int i = 0; i < n; ++i) {
    const double u = (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0;
    h->Record(static_cast<uint64_t>(-mean_ns * std::log(1 - u)));
  }
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double want = -mean_ns * std::log(1 - p / 100);
    const double got = static_cast<double>(h->ValueAtPercentile(p));
    // Sampling error plus bucket error: a few percent at 99.9 with 2M samples.
    EXPECT_NEAR(got / want, 1.0, p >= 99.9 ? 0.05 : 0.02) << "p" << p;
  }
  EXPECT_NEAR(h->mean() / mean_ns, 1.0, 0.01);
}

TEST(Histogram, BimodalTail) {
  // 99% fast (1 ms), 1% slow (100 ms): p99 is fast, p99.9 is slow.
  auto h = std::make_unique<Histogram>();
  h->RecordN(1'000'000, 9900);
  h->RecordN(100'000'000, 100);
  ExpectNear(h->ValueAtPercentile(50), 1'000'000);
  ExpectNear(h->ValueAtPercentile(99), 1'000'000);
  ExpectNear(h->ValueAtPercentile(99.5), 100'000'000);
  ExpectNear(h->ValueAtPercentile(99.9), 100'000'000);
  EXPECT_EQ(h->max(), 100'000'000u);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  auto a = std::make_unique<Histogram>();
  auto b = std::make_unique<Histogram>();
  auto all = std::make_unique<Histogram>();
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = rng() % 50'000'000;
    (i % 3 == 0 ? *a : *b).Record(v);
    all->Record(v);
  }
  a->Merge(*b);
  EXPECT_EQ(a->count(), all->count());
  EXPECT_EQ(a->min(), all->min());
  EXPECT_EQ(a->max(), all->max());
  for (double p : {1.0, 50.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(a->ValueAtPercentile(p), all->ValueAtPercentile(p));
  }
  a->Reset();
  EXPECT_EQ(a->count(), 0u);
}

}  // namespace
}  // namespace pointledger::bench
