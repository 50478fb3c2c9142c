#include "ledger/lmdb.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>


namespace pointledger::ledger::lmdb {

namespace {

MDB_val ToVal(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

}  // namespace

absl::Status FromMdb(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return absl::OkStatus();
  // LMDB turns a write cut short into EIO, and a full disk cuts writes
  // short: the message says so, or it reads like a failing device (found
  // by a crash soak on a full tmpfs, session 29).
  const std::string message =
      StrCat(what, ": ", mdb_strerror(rc),
             rc == EIO ? " (LMDB reports a write cut short, as on a full disk, as an I/O error: check free space)"
                       : "");
  switch (rc) {
    case MDB_NOTFOUND:
      return absl::NotFoundError(message);
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_READERS_FULL:
    case ENOSPC:
      return absl::ResourceExhaustedError(message);
    case MDB_CORRUPTED:
    case MDB_PANIC:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return absl::DataLossError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<Env> Env::Open(const Options& options) {
  MDB_env* raw = nullptr;
  PL_RETURN_IF_ERROR(FromMdb(mdb_env_create(&raw), "mdb_env_create"));
  Env env(raw);
  PL_RETURN_IF_ERROR(FromMdb(mdb_env_set_maxdbs(raw, options.max_dbs), "mdb_env_set_maxdbs"));
  if (options.map_size_bytes != 0) {
    PL_RETURN_IF_ERROR(
        FromMdb(mdb_env_set_mapsize(raw, options.map_size_bytes), "mdb_env_set_mapsize"));
  }
  // MDB_NOTLS: read transactions are not tied to the thread that began them,
  // so reads may run on any I/O thread.
  unsigned flags = MDB_NOTLS;
  if (options.read_only) flags |= MDB_RDONLY;
  if (options.scratch) flags |= MDB_NOSYNC | MDB_NOMETASYNC;
  const int rc = mdb_env_open(raw, options.dir.c_str(), flags, 0644);
  const std::string lock_file = options.dir + "/lock.mdb";
  if (rc == EACCES && options.read_only && ::access(lock_file.c_str(), R_OK) == 0 &&
      ::access(lock_file.c_str(), W_OK) != 0) {
    // A reader writes LMDB's reader table in lock.mdb, beside the data:
    // "Permission denied" alone sent operators looking at the data file
    // (found by a durability test, session 33).
    return absl::PermissionDeniedError(
        StrCat("open ", options.dir, ": permission denied (a reader needs write access to ", options.dir,
               "/lock.mdb, LMDB's table of readers: run as the server's user, or read a copy)"));
  }
  PL_RETURN_IF_ERROR(FromMdb(rc, StrCat("open ", options.dir)));
  return env;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> Env::MapUsage() const {
  MDB_envinfo info;
  MDB_stat stat;
  PL_RETURN_IF_ERROR(FromMdb(mdb_env_info(env_, &info), "mdb_env_info"));
  PL_RETURN_IF_ERROR(FromMdb(mdb_env_stat(env_, &stat), "mdb_env_stat"));
  return std::make_pair(uint64_t{info.me_last_pgno + 1} * stat.ms_psize,
                        uint64_t{info.me_mapsize});
}

absl::StatusOr<int> Env::ClearStaleReaders() const {
  int dead = 0;
  PL_RETURN_IF_ERROR(FromMdb(mdb_reader_check(env_, &dead), "mdb_reader_check"));
  return dead;
}

absl::StatusOr<Txn> Txn::BeginRead(const Env& env) {
  MDB_txn* txn = nullptr;
  PL_RETURN_IF_ERROR(FromMdb(mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &txn), "begin read"));
  return Txn(txn);
}

absl::StatusOr<Txn> Txn::BeginWrite(const Env& env, Txn* parent) {
  MDB_txn* txn = nullptr;
  PL_RETURN_IF_ERROR(FromMdb(
      mdb_txn_begin(env.get(), parent == nullptr ? nullptr : parent->get(), 0, &txn),
      "begin write"));
  return Txn(txn);
}

absl::StatusOr<std::optional<std::string_view>> Txn::Get(MDB_dbi dbi,
                                                         std::string_view key) const {
  // No stored key is empty or longer than LMDB's limit (511 bytes), so such
  // a key (a read naming the program "", say) is simply absent; LMDB would
  // call it MDB_BAD_VALSIZE, an error, instead.
  if (key.empty() || key.size() > static_cast<size_t>(mdb_env_get_maxkeysize(mdb_txn_env(txn_)))) {
    return std::optional<std::string_view>();
  }
  MDB_val k = ToVal(key);
  MDB_val v{0, nullptr};
  const int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  PL_RETURN_IF_ERROR(FromMdb(rc, "mdb_get"));
  return std::optional<std::string_view>(
      std::string_view(static_cast<const char*>(v.mv_data), v.mv_size));
}

absl::Status Txn::Put(MDB_dbi dbi, std::string_view key, std::string_view value,
                      unsigned flags) {
  MDB_val k = ToVal(key);
  MDB_val v = ToVal(value);
  return FromMdb(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
}

absl::StatusOr<bool> Txn::Del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = ToVal(key);
  const int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  PL_RETURN_IF_ERROR(FromMdb(rc, "mdb_del"));
  return true;
}

absl::StatusOr<Cursor> Cursor::Open(const Txn& txn, MDB_dbi dbi) {
  MDB_cursor* cursor = nullptr;
  PL_RETURN_IF_ERROR(FromMdb(mdb_cursor_open(txn.get(), dbi, &cursor), "mdb_cursor_open"));
  return Cursor(cursor);
}

absl::StatusOr<bool> Cursor::Move(MDB_cursor_op op, std::string_view seek) {
  if (op == MDB_SET_RANGE) key_ = ToVal(seek);
  const int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
  if (rc == MDB_NOTFOUND) return false;
  PL_RETURN_IF_ERROR(FromMdb(rc, "mdb_cursor_get"));
  return true;
}

absl::StatusOr<bool> Cursor::SeekAtLeast(std::string_view key) { return Move(MDB_SET_RANGE, key); }

absl::Status Cursor::Put(std::string_view key, std::string_view value) {
  MDB_val k = ToVal(key);
  MDB_val v = ToVal(value);
  return FromMdb(mdb_cursor_put(cursor_, &k, &v, 0), "mdb_cursor_put");
}

absl::StatusOr<bool> Cursor::Del(std::string_view key) {
  MDB_val k = ToVal(key);
  MDB_val v{0, nullptr};
  int rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET);
  if (rc == MDB_NOTFOUND) return false;
  PL_RETURN_IF_ERROR(FromMdb(rc, "mdb_cursor_get"));
  rc = mdb_cursor_del(cursor_, 0);
  PL_RETURN_IF_ERROR(FromMdb(rc, "mdb_cursor_del"));
  return true;
}
absl::StatusOr<bool> Cursor::First() { return Move(MDB_FIRST, {}); }
absl::StatusOr<bool> Cursor::Last() { return Move(MDB_LAST, {}); }
absl::StatusOr<bool> Cursor::Next() { return Move(MDB_NEXT, {}); }
absl::StatusOr<bool> Cursor::Prev() { return Move(MDB_PREV, {}); }

absl::StatusOr<MDB_dbi> OpenDbi(const Txn& txn, const char* name, bool create) {
  MDB_dbi dbi = 0;
  PL_RETURN_IF_ERROR(FromMdb(mdb_dbi_open(txn.get(), name, create ? MDB_CREATE : 0, &dbi),
                             StrCat("open sub-database ", name)));
  return dbi;
}

}  // namespace pointledger::ledger::lmdb
