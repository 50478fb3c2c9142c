// RFC 3339 times for the command line: parsing what users type and printing
// what the ledger stores (nanoseconds since the Unix epoch, UTC).
#ifndef POINTLEDGER_TOOLS_CLI_TIME_H_
#define POINTLEDGER_TOOLS_CLI_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pointledger::tools {

// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339; 'T' and 'Z'
// may be lower case; up to 9 fractional digits) into nanoseconds since the
// epoch. Accepted range: 1970-01-01T00:00:00Z up to 2262-04-11T23:47:16Z
// (what fits in int64 nanoseconds). InvalidArgument, with a message that
// shows the expected form, for anything else.
absl::StatusOr<int64_t> ParseTime(std::string_view text);

// Formats nanoseconds since the epoch as `2026-11-22T10:00:00.123456789Z`
// (UTC, always 9 fractional digits); a time before the epoch as one
// (`1969-12-31T23:59:59.999999999Z` for -1).
std::string FormatTime(int64_t ns);

// Parses a duration: a number followed by ns, us, ms, s, m or h
// ("30s", "2m", "500ms"); a bare number is seconds. Returns nanoseconds.
absl::StatusOr<int64_t> ParseDuration(std::string_view text);

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_TIME_H_
