#include "ledger/sha256.h"

#include <openssl/evp.h>

#include "ledger/status.h"

namespace pointledger::ledger {

namespace {

// Fetched once; OpenSSL keeps it for the life of the process.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  PL_CHECK(md != nullptr);
  return md;
}

// One context per thread, reused: no allocation per hash.
struct Ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Digest Sha256(std::initializer_list<std::string_view> parts) {
  thread_local Ctx local;
  PL_CHECK(local.ctx != nullptr);
  PL_CHECK(EVP_DigestInit_ex2(local.ctx, Sha256Md(), nullptr) == 1);
  for (std::string_view part : parts) {
    PL_CHECK(EVP_DigestUpdate(local.ctx, part.data(), part.size()) == 1);
  }
  Digest digest;
  unsigned int size = 0;
  PL_CHECK(EVP_DigestFinal_ex(local.ctx, digest.data(), &size) == 1 && size == digest.size());
  return digest;
}

}  // namespace pointledger::ledger
