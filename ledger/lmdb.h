// Move-only RAII handles over the LMDB C API (in the manner of lmdbxx).
// This is the only code in PointLedger that calls mdb_*; FromMdb() is the
// one place an LMDB return code becomes a Status.
#ifndef POINTLEDGER_LEDGER_LMDB_H_
#define POINTLEDGER_LEDGER_LMDB_H_

#include <lmdb.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ledger/status.h"

namespace pointledger::ledger::lmdb {

// MDB_MAP_FULL -> ResourceExhausted, MDB_CORRUPTED/MDB_PANIC -> DataLoss,
// MDB_NOTFOUND -> NotFound, ENOSPC -> ResourceExhausted, others Internal.
absl::Status FromMdb(int rc, std::string_view what);

class Env {
 public:
  struct Options {
    std::string dir;
    size_t map_size_bytes = 0;
    unsigned max_dbs = 32;
    bool read_only = false;
    // For scratch data that no crash needs: never synced (MDB_NOSYNC).
    // Not MDB_WRITEMAP, though it was faster (BENCHMARKS.md): a full disk
    // under a writable map is SIGBUS, not an error (found in review).
    bool scratch = false;
  };
  static absl::StatusOr<Env> Open(const Options& options);

  Env() = default;  // empty; assign from Open()
  Env(Env&& other) noexcept : env_(std::exchange(other.env_, nullptr)) {}
  Env& operator=(Env&& other) noexcept {
    std::swap(env_, other.env_);
    return *this;
  }
  ~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
  }
  MDB_env* get() const { return env_; }

  // Map size in use (last page * page size) and configured size, in bytes.
  absl::StatusOr<std::pair<uint64_t, uint64_t>> MapUsage() const;

  // Frees the lock-table slots of processes that died inside a read
  // transaction (mdb_reader_check). Until then LMDB keeps every page such a
  // reader could still see, so the file grows instead of reusing pages.
  // Returns how many slots were freed. Thread-safe.
  absl::StatusOr<int> ClearStaleReaders() const;

 private:
  explicit Env(MDB_env* env) : env_(env) {}
  MDB_env* env_ = nullptr;
};

// A read or write transaction; a write transaction may have a parent
// (LMDB nested transactions). Aborts in the destructor unless committed.
// LMDB frees the handle even when the commit fails, so Commit() drops it
// first.
class Txn {
 public:
  static absl::StatusOr<Txn> BeginRead(const Env& env);
  static absl::StatusOr<Txn> BeginWrite(const Env& env, Txn* parent);

  Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}
  Txn& operator=(Txn&& other) noexcept {
    std::swap(txn_, other.txn_);
    return *this;
  }
  ~Txn() { Abort(); }

  absl::Status Commit() {
    PL_CHECK(txn_ != nullptr);
    return FromMdb(mdb_txn_commit(std::exchange(txn_, nullptr)), "commit");
  }
  void Abort() {
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
  }
  MDB_txn* get() const { return txn_; }

  // The value is valid until the next write in this transaction.
  absl::StatusOr<std::optional<std::string_view>> Get(MDB_dbi dbi,
                                                      std::string_view key) const;
  absl::Status Put(MDB_dbi dbi, std::string_view key, std::string_view value,
                   unsigned flags = 0);
  // NotFound is not an error here: returns whether the key existed.
  absl::StatusOr<bool> Del(MDB_dbi dbi, std::string_view key);

 private:
  explicit Txn(MDB_txn* txn) : txn_(txn) { PL_CHECK(txn_ != nullptr); }
  MDB_txn* txn_ = nullptr;
};

// A cursor over one sub-database. Positioning calls return false at the end.
class Cursor {
 public:
  static absl::StatusOr<Cursor> Open(const Txn& txn, MDB_dbi dbi);
  Cursor(Cursor&& other) noexcept
      : cursor_(std::exchange(other.cursor_, nullptr)), key_(other.key_), value_(other.value_) {}
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }

  absl::StatusOr<bool> SeekAtLeast(std::string_view key);  // MDB_SET_RANGE
  // Writes through the cursor (a write transaction's). In key order, each
  // key that lands on the leaf page of the one before skips LMDB's search
  // from the root (mdb_cursor_set checks the current page first), which a
  // Txn::Put, with a new cursor each call, never can.
  absl::Status Put(std::string_view key, std::string_view value);
  // False when the key is not there.
  absl::StatusOr<bool> Del(std::string_view key);
  absl::StatusOr<bool> First();
  absl::StatusOr<bool> Last();
  absl::StatusOr<bool> Next();
  absl::StatusOr<bool> Prev();

  std::string_view key() const { return {static_cast<const char*>(key_.mv_data), key_.mv_size}; }
  std::string_view value() const {
    return {static_cast<const char*>(value_.mv_data), value_.mv_size};
  }

 private:
  explicit Cursor(MDB_cursor* cursor) : cursor_(cursor) {}
  absl::StatusOr<bool> Move(MDB_cursor_op op, std::string_view seek);
  MDB_cursor* cursor_ = nullptr;
  MDB_val key_{0, nullptr};
  MDB_val value_{0, nullptr};
};

// Opens (creating when `create`) a named sub-database.
absl::StatusOr<MDB_dbi> OpenDbi(const Txn& txn, const char* name, bool create);

}  // namespace pointledger::ledger::lmdb

#endif  // POINTLEDGER_LEDGER_LMDB_H_
