// A small HDR-style histogram of non-negative 64-bit values (latencies in
// nanoseconds): log-bucketed with 128 linear sub-buckets per power of two,
// so any recorded value is reported within 1/128 (< 0.8%) of itself, at a
// fixed 58 KiB per histogram and O(1) per Record. Debian 12 has no
// HdrHistogram_c package; this is the part of it we need.
//
// Not thread-safe: keep one per thread and Merge() them.
#ifndef POINTLEDGER_BENCH_HISTOGRAM_H_
#define POINTLEDGER_BENCH_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace pointledger::bench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBucketCount = uint64_t{1} << kSubBucketBits;  // 128
  // Values below 128 are exact (bucket 0); each power of two from 2^7 to
  // 2^63 gets 128 sub-buckets.
  static constexpr size_t kBucketCount = (64 - kSubBucketBits + 1) * kSubBucketCount;

  void Record(uint64_t value) { RecordN(value, 1); }

  void RecordN(uint64_t value, uint64_t n) {
    counts_[IndexOf(value)] += n;
    count_ += n;
    sum_ += static_cast<double>(value) * static_cast<double>(n);
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  void Merge(const Histogram& other) {
    for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  void Reset() { *this = Histogram(); }

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

  // The smallest value v such that at least `percentile`% of the recorded
  // values are <= v, reported as the highest value of v's bucket (never
  // above max()), like HdrHistogram. 0 when empty. percentile in [0, 100].
  uint64_t ValueAtPercentile(double percentile) const {
    if (count_ == 0) return 0;
    percentile = std::clamp(percentile, 0.0, 100.0);
    // The rank rounds up: rounding to nearest let p99 of 1,059 ones and 11
    // hundreds say 1, with 1% of the values above it (found in review,
    // session 19).
    uint64_t rank = static_cast<uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBucketCount; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(HighestInBucket(i), max_);
    }
    return max_;
  }

  // Bucket arithmetic, public for the tests.
  static size_t IndexOf(uint64_t value) {
    if (value < kSubBucketCount) return static_cast<size_t>(value);
    const int exponent = static_cast<int>(std::bit_width(value)) - 1;  // >= kSubBucketBits
    const int shift = exponent - kSubBucketBits;
    const uint64_t sub = (value >> shift) & (kSubBucketCount - 1);
    return static_cast<size_t>(static_cast<uint64_t>(shift + 1) * kSubBucketCount + sub);
  }
  static uint64_t LowestInBucket(size_t index) {
    if (index < kSubBucketCount) return index;
    const int shift = static_cast<int>(index / kSubBucketCount) - 1;
    const uint64_t sub = index % kSubBucketCount;
    return (kSubBucketCount + sub) << shift;
  }
  static uint64_t HighestInBucket(size_t index) {
    if (index < kSubBucketCount) return index;
    const int shift = static_cast<int>(index / kSubBucketCount) - 1;
    return LowestInBucket(index) + ((uint64_t{1} << shift) - 1);
  }

 private:
  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

}  // namespace pointledger::bench

#endif  // POINTLEDGER_BENCH_HISTOGRAM_H_
