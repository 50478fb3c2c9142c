#include "tools/cli_time.h"

#include <limits>

#include "absl/status/status.h"
#include "ledger/status.h"

namespace pointledger::tools {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int64_t month;
  int64_t day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  return Civil{yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t DaysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at text[*pos]; false if they are not all digits.
bool Digits(std::string_view text, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > text.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char a, char b) {
  if (*pos >= text.size() || (text[*pos] != a && text[*pos] != b)) return false;
  ++*pos;
  return true;
}

absl::Status TimeError(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      StrCat("invalid time '", text, "': ", why,
             " (expected RFC 3339 like 2027-12-31T00:00:00Z or 2027-12-31T00:00:00.5+01:00)"));
}

// Parses the optional fraction; returns its value in nanoseconds.
bool Fraction(std::string_view text, size_t* pos, int64_t* nanos) {
  *nanos = 0;
  if (*pos >= text.size() || text[*pos] != '.') return true;
  ++*pos;
  size_t digits = 0;
  int64_t scale = 100'000'000;
  while (*pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9') {
    if (digits == 9) return false;
    *nanos += (text[*pos] - '0') * scale;
    scale /= 10;
    ++digits;
    ++*pos;
  }
  return digits > 0;
}

// Parses "Z" or "±HH:MM"; returns the offset in seconds east of UTC.
bool Offset(std::string_view text, size_t* pos, int64_t* offset_s) {
  *offset_s = 0;
  if (*pos >= text.size()) return false;
  const char c = text[*pos];
  if (c == 'Z' || c == 'z') {
    ++*pos;
    return true;
  }
  if (c != '+' && c != '-') return false;
  ++*pos;
  int64_t hh = 0;
  int64_t mm = 0;
  if (!Digits(text, pos, 2, &hh) || !Expect(text, pos, ':', ':') || !Digits(text, pos, 2, &mm)) {
    return false;
  }
  if (hh > 23 || mm > 59) return false;
  *offset_s = (hh * 3600 + mm * 60) * (c == '-' ? -1 : 1);
  return true;
}

}  // namespace

absl::StatusOr<int64_t> ParseTime(std::string_view text) {
  size_t pos = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-', '-') ||
      !Digits(text, &pos, 2, &month) || !Expect(text, &pos, '-', '-') ||
      !Digits(text, &pos, 2, &day) || !Expect(text, &pos, 'T', 't') ||
      !Digits(text, &pos, 2, &hour) || !Expect(text, &pos, ':', ':') ||
      !Digits(text, &pos, 2, &minute) || !Expect(text, &pos, ':', ':') ||
      !Digits(text, &pos, 2, &second)) {
    return TimeError(text, "bad date or time");
  }
  int64_t nanos = 0;
  if (!Fraction(text, &pos, &nanos)) return TimeError(text, "bad fraction (1 to 9 digits)");
  int64_t offset_s = 0;
  if (!Offset(text, &pos, &offset_s)) return TimeError(text, "missing or bad zone (Z or +HH:MM)");
  if (pos != text.size()) return TimeError(text, "trailing characters");
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) {
    return TimeError(text, "no such date");
  }
  // RFC 3339 allows a leap second (:60); the ledger has none, so it is refused.
  if (hour > 23 || minute > 59 || second > 59) return TimeError(text, "no such time of day");
  const int64_t seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  // Up to the last nanosecond but one that int64 holds: the last one,
  // INT64_MAX, is the ledger's "never" (a lot that never expires), and an
  // --as-of there would count such lots as expired.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() - 1;
  if (seconds < 0 || seconds > kMax / kNanosPerSecond ||
      nanos > kMax - seconds * kNanosPerSecond) {
    return TimeError(text, "out of range (1970-01-01T00:00:00Z to 2262-04-11T23:47:16.854775806Z)");
  }
  return seconds * kNanosPerSecond + nanos;
}

std::string FormatTime(int64_t ns) {
  // Floor division: a time before the epoch (a record an older binary let
  // through, found in review, session 21) prints as one, not a crash.
  auto floor_div = [](int64_t a, int64_t b) { return a / b - (a % b < 0 ? 1 : 0); };
  const int64_t seconds = floor_div(ns, kNanosPerSecond);
  const int64_t nanos = ns % kNanosPerSecond + (ns % kNanosPerSecond < 0 ? kNanosPerSecond : 0);
  const int64_t days = floor_div(seconds, 86400);
  const Civil c = CivilFromDays(days);
  const int64_t sod = seconds - days * 86400;
  char buf[64];  // 49 at most, for any year an int64 of nanoseconds reaches
  std::snprintf(buf, sizeof(buf), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09lldZ",
                static_cast<long long>(c.year), static_cast<long long>(c.month),
                static_cast<long long>(c.day), static_cast<long long>(sod / 3600),
                static_cast<long long>(sod / 60 % 60), static_cast<long long>(sod % 60),
                static_cast<long long>(nanos));
  return buf;
}

absl::StatusOr<int64_t> ParseDuration(std::string_view text) {
  size_t pos = 0;
  int64_t value = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (value > std::numeric_limits<int64_t>::max() / 10 - 10) break;
    value = value * 10 + (text[pos] - '0');
    ++pos;
  }
  const std::string_view unit = text.substr(pos);
  int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = kNanosPerSecond;
  else if (unit == "ms") scale = 1'000'000;
  else if (unit == "us") scale = 1'000;
  else if (unit == "ns") scale = 1;
  else if (unit == "m") scale = 60 * kNanosPerSecond;
  else if (unit == "h") scale = 3600 * kNanosPerSecond;
  if (pos == 0 || scale == 0 || value > std::numeric_limits<int64_t>::max() / scale) {
    return absl::InvalidArgumentError(
        StrCat("invalid duration '", text, "' (expected a number and a unit: 30s, 2m, 500ms, 1h; no unit means seconds)"));
  }
  return value * scale;
}

}  // namespace pointledger::tools
