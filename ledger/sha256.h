// Internal to ledger/: SHA-256 with no allocation and no per-call
// algorithm fetch (OpenSSL 3's EVP interface does both; sha256.cc).
#ifndef POINTLEDGER_LEDGER_SHA256_H_
#define POINTLEDGER_LEDGER_SHA256_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace pointledger::ledger {

using Digest = std::array<uint8_t, 32>;

// SHA-256 of the concatenation of `parts`. Thread-safe.
Digest Sha256(std::initializer_list<std::string_view> parts);

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_SHA256_H_
