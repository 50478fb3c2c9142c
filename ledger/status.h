// Error-handling helpers shared by the whole project (STYLE.md, "Three
// channels"): PL_CHECK for our own bugs, absl::Status for operating failures.
// abseil 20220623 has no status macros, so we define our own two.
#ifndef POINTLEDGER_LEDGER_STATUS_H_
#define POINTLEDGER_LEDGER_STATUS_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Always on. Crashes with file:line. Never used on bytes from a client or
// from the disk: those get a Status or a result code.
#define PL_CHECK(condition)                                                  \
  do {                                                                       \
    if (!(condition)) [[unlikely]] {                                         \
      std::fprintf(stderr, "%s:%d: PL_CHECK failed: %s\n", __FILE__,         \
                   __LINE__, #condition);                                    \
      std::abort();                                                          \
    }                                                                        \
  } while (false)

#define PL_STATUS_CONCAT_INNER(a, b) a##b
#define PL_STATUS_CONCAT(a, b) PL_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define PL_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status pl_status_ = (expr);           \
    if (!pl_status_.ok()) [[unlikely]] {          \
      return pl_status_;                          \
    }                                             \
  } while (false)

// `lhs = value of expr` (a StatusOr), or returns its Status.
#define PL_ASSIGN_OR_RETURN(lhs, expr) \
  PL_ASSIGN_OR_RETURN_IMPL(PL_STATUS_CONCAT(pl_statusor_, __LINE__), lhs, expr)

#define PL_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                             \
  if (!statusor.ok()) [[unlikely]] {                  \
    return std::move(statusor).status();              \
  }                                                   \
  lhs = std::move(statusor).value()

namespace pointledger {

// Debian 12's abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so
// absl::StrCat does not take std::string_view. This one does (strings,
// string_views, C strings, integers); use it everywhere.
namespace strcat_internal {
inline void Append(std::string& out, std::string_view s) { out.append(s); }
inline void Append(std::string& out, const char* s) { out.append(s); }
inline void Append(std::string& out, const std::string& s) { out.append(s); }
#if !defined(ABSL_USES_STD_STRING_VIEW)
// absl::Status::message() and the like return abseil's own string_view here.
inline void Append(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
#endif
template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, char>)
void Append(std::string& out, T v) {
  out.append(std::to_string(v));
}
}  // namespace strcat_internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (strcat_internal::Append(out, args), ...);
  return out;
}

}  // namespace pointledger

#endif  // POINTLEDGER_LEDGER_STATUS_H_
