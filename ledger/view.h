// Internal to ledger/: the two LMDB environments, the in-memory layer of
// state written since the last checkpoint, and the View through which the
// engine reads and writes both (docs/storage.md, "Log, state, checkpoints").
//
// Why: a transaction touches several random keys (its id, the member's
// account, lot and history). Written to LMDB at every commit, each costs a
// copy-on-write page, and that capped a durable group commit near 35k
// transactions/s. Instead, a commit writes only the log (keys in seq order,
// so appends touch few pages) and keeps the state it changed in a MemTable;
// a background checkpoint writes the accumulated state to the state
// environment in key order, touching each page once. After a crash, the
// state is the last checkpoint plus a replay of the log past it.
#ifndef POINTLEDGER_LEDGER_VIEW_H_
#define POINTLEDGER_LEDGER_VIEW_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "ledger/huge_pages.h"
#include "ledger/id_filter.h"
#include "ledger/lmdb.h"

namespace pointledger::ledger {

// A table (LMDB sub-database). `log` and `effects` are keyed by seq and live
// in the log environment (and, until a checkpoint copies them there, in the
// write-ahead log and LogChunks in memory); every other table lives in the
// state environment.
using Table = uint8_t;
inline constexpr Table kTableCount = 16;

// The tables, by number (keys and values: docs/storage.md). An instance is
// handy as `dbs_.accounts`; the numbers are fixed.
struct Dbs {
  Table log = 0;             // BeU64 seq -> hash(32) | canonical record
  Table effects = 1;         // BeU64 seq -> pieces created or consumed
  Table ids = 2;             // tx id(16) -> U64 seq
  Table programs = 3;        // name -> ProgramRec
  Table accounts = 4;        // account id(16) -> AccountRec
  Table lots = 5;            // LotKey -> U64 remaining | I64 locked_until
  Table expiry = 6;          // BeI64 expires_at | LotKey -> ""   (finite expiries only)
  Table holds = 7;           // hold tx id(16) -> HoldRec
  Table hold_deadlines = 8;  // BeI64 deadline | hold id(16) -> ""  (pending holds)
  Table member_holds = 9;    // member id(16) | hold id(16) -> ""    (pending holds)
  Table history = 10;        // member id(16) | BeU64 seq -> I64 points
  Table reversed = 11;       // BeU64 original seq -> U64 points reversed so far
  Table referees = 12;       // referee member id(16) -> U64 seq
  Table partners = 13;       // partner account id(16) -> I64 end of last settled period
  Table prices = 14;         // partner id(16) | BeI64 effective_from -> U64 earn | U64 redeem
  Table flows = 15;          // partner id(16) | BeI64 ts | BeU64 seq -> U8 kind | I64 points | U64 price
};

inline bool IsLogTable(Table t) { return t <= 1; }
const char* TableName(Table t);

// The log-table writes (`log` and `effects`) of one group commit, kept as
// the bytes of its write-ahead log frames (per write: U8 table, U64 seq,
// U32 size, value; ledger/wal.h) with an index per table. Published chunks
// are immutable and shared: readers see the log past the log environment
// through them until a checkpoint has copied them there.
class LogChunk {
 public:
  struct Ref {
    uint64_t seq;
    size_t offset;  // of the value in bytes()
    uint32_t size;
  };
  struct Mark {
    size_t bytes = 0;
    size_t refs[2] = {0, 0};
    uint64_t lmdb_bytes = 0;
  };

  // REQUIRES: t is a log table, seq above every seq of t so far.
  void Add(Table t, uint64_t seq, std::string_view value);
  // Room for as much as `m` counts, without growing step by step.
  void Reserve(const Mark& m);
  // Rebuilds a chunk from bytes written by Add; false if they do not parse
  // or are out of order.
  static bool Parse(std::string bytes, LogChunk* out);

  Mark mark() const;
  void Truncate(const Mark& m);
  bool empty() const { return bytes_.empty(); }
  const std::vector<Ref>& refs(Table t) const { return refs_[t]; }
  std::string_view value(const Ref& r) const {
    return std::string_view(bytes_).substr(r.offset, r.size);
  }
  const std::string& bytes() const { return bytes_; }
  // The seqs of its `log` entries. REQUIRES: it has one.
  uint64_t first_seq() const { return refs_[0].front().seq; }
  uint64_t last_seq() const { return refs_[0].back().seq; }
  // About what its entries take in the log environment (pages included),
  // for refusing what would not fit there.
  uint64_t lmdb_bytes() const { return lmdb_bytes_; }

 private:
  std::string bytes_;
  std::vector<Ref> refs_[2];
  uint64_t lmdb_bytes_ = 0;
};
using LogChunks = std::vector<std::shared_ptr<const LogChunk>>;

// The value of (t, seq) in a list of chunks in seq order, if there.
std::optional<std::string_view> FindInLog(const LogChunks& chunks, Table t, uint64_t seq);

// The LMDB handle of every table (in its environment) and of the state
// environment's `meta` table (checkpoint seq).
struct Handles {
  MDB_dbi dbi[kTableCount] = {};
  MDB_dbi meta = 0;
};

// Opens every log table in `log_txn` and every state table and `meta` in
// `state_txn`, creating them when `create`.
absl::StatusOr<Handles> OpenHandles(const lmdb::Txn& log_txn, const lmdb::Txn& state_txn,
                                    bool create);

// The seq up to which the state environment holds the state (0: none).
absl::StatusOr<uint64_t> ReadCheckpointSeq(const lmdb::Txn& state_txn, const Handles& handles);

// Bump allocation for one MemTable map's keys, slots and values, all freed
// with the map. SPEC §9 asks for no allocation per transaction on the
// writer's path: a node, a key string and a value string for every new key
// were ~11 allocations a transaction (BENCHMARKS.md, "Session 27"), and
// freeing a frozen map slot by slot was the checkpointer's work. Only the
// writer allocates (in the active map); a frozen map is read only.
//
// Under AddressSanitizer, what is not handed out is poisoned, and each
// allocation is followed by a poisoned gap: an overrun from one value (or
// key, or B-tree node) into the next is reported as it would be between
// two mallocs. Other builds leave no gap.
class Arena {
 public:
  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  // `n` bytes, 8-aligned, valid until the arena is destroyed.
  char* Allocate(size_t n);

 private:
  // Small maps (a read's private copy, a test's) stay small: blocks are
  // malloc'd until the arena holds kSmallBytes, then whole huge pages.
  static constexpr size_t kSmallBlock = 256 << 10;
  static constexpr size_t kSmallBytes = 4 << 20;
  struct Block {
    char* bytes;
    size_t size;
    bool huge;
  };
  size_t bytes_ = 0;  // in blocks_
  std::vector<Block> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
};

// A container's allocator in an Arena: what it frees stays allocated until
// the arena goes. For indexes that only grow (a MemTable map's B-tree,
// whose node splits were nearly all the allocations left on the writer's
// path). The container must be destroyed before the arena.
template <typename T>
class ArenaAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  explicit ArenaAllocator(Arena* arena) : arena_(arena) {}
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>& other) : arena_(other.arena()) {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    static_assert(alignof(T) <= 8, "the arena aligns to 8 bytes");
    return reinterpret_cast<T*>(arena_->Allocate(n * sizeof(T)));
  }
  void deallocate(T*, size_t) {}
  Arena* arena() const { return arena_; }
  template <typename U>
  bool operator==(const ArenaAllocator<U>& other) const {
    return arena_ == other.arena();
  }

 private:
  Arena* arena_;
};

// State written since the last checkpoint, as a sorted map from
// (table byte ‖ key) to a slot. Each slot has a committed value, which
// readers see, and a pending value, which only the writer sees until
// Publish() after its group commit is durable.
//
// Threading: one writer thread calls the mutating methods and reads without
// locking (it is the only mutator). Readers hold mutex() in shared mode for
// as long as they read; the writer takes it exclusively only to insert a new
// slot (which may move others) and to publish.
class MemTable {
 public:
  enum State : uint8_t { kAbsent = 0, kValue = 1, kDeleted = 2 };
  // A value's bytes in the map's arena, with room for `capacity`.
  struct Bytes {
    char* data = nullptr;
    uint32_t size = 0;
    uint32_t capacity = 0;
    // Never a null pointer, as std::string gave: LMDB gets it for "".
    operator std::string_view() const { return {data != nullptr ? data : "", size}; }
  };
  // In the map's arena, as its key is: a pointer to either is stable.
  struct Slot {
    State committed = kAbsent;  // kAbsent: look in the layers below
    State pending = kAbsent;    // kAbsent: no pending write
    Bytes committed_value;
    // After Publish, the committed value's former bytes: reused by the
    // next Put while no undo entry can point at them (ValueFor).
    Bytes pending_value;
  };
  // An entry of the sorted index: a view of the slot's key, led by its
  // first 16 bytes packed big-endian, so that comparisons rarely need to
  // follow the pointer (each of which was a cache miss: a quarter of the
  // writer's time went to memcmp on them).
  struct OrderKey {
    explicit OrderKey(std::string_view k, const Slot* s = nullptr);
    uint64_t hi = 0, lo = 0;
    std::string_view key;
    // The key's slot (null in a probe): a scan needs no hash lookup.
    const Slot* slot = nullptr;
    // The key's first byte, its table, from `hi`: a scan that asks it of
    // every entry it steps over need not follow `key` (a cache miss each:
    // a fifth of an audit's comparison).
    char table() const { return static_cast<char>(hi >> 56); }
    bool operator<(const OrderKey& o) const {
      if (hi != o.hi) return hi < o.hi;
      if (lo != o.lo) return lo < o.lo;
      return key < o.key;
    }
  };
  // A `history` entry (member id ‖ BeU64 seq -> I64 points), fixed size.
  // History is written once per member per transaction, never changed and
  // only scanned: it skips the slots (a hash insert, a B-tree insert and
  // three allocations each, 12-20% of the writer's time) for sorted runs.
  struct HistoryRow {
    static constexpr size_t kKeySize = 24;
    static constexpr size_t kValueSize = 8;
    char key[kKeySize];
    char value[kValueSize];
    std::string_view key_view() const { return {key, kKeySize}; }
    std::string_view value_view() const { return {value, kValueSize}; }
    bool operator<(const HistoryRow& o) const { return std::memcmp(key, o.key, kKeySize) < 0; }
  };
  // Sorted by key; immutable once published.
  using HistoryRun = std::vector<HistoryRow>;

  // Point lookups go to a hash map (one probe, where a B-tree of string
  // keys costs a dozen cache misses); range scans walk a sorted set of views
  // of the same keys. Keys and slots live in the arena, so the views and
  // undo entries may point into them.
  using OrderSet = absl::btree_set<OrderKey, std::less<OrderKey>, ArenaAllocator<OrderKey>>;
  struct Map {
    Map() = default;
    Map(Map&&) noexcept = default;
    // Destroys this map in its members' reverse order (the indexes, whose
    // nodes and keys are in the arena, before the arena), then takes
    // `other`'s: a member-wise assignment would free the arena first.
    Map& operator=(Map&& other) noexcept {
      if (this != &other) {
        this->~Map();
        new (this) Map(std::move(other));
      }
      return *this;
    }
    // First: the map's keys, slots, values and B-tree nodes outlive its
    // indexes.
    std::unique_ptr<Arena> arena = std::make_unique<Arena>();
    // absl::string_view: Debian's abseil has its own, which its string hash
    // takes (one hash for every map, and lookups by std::string_view).
    absl::flat_hash_map<absl::string_view, Slot*, absl::Hash<absl::string_view>,
                        std::equal_to<absl::string_view>,
                        HugePageAllocator<std::pair<const absl::string_view, Slot*>>>
        slots;
    OrderSet order{std::less<OrderKey>(), ArenaAllocator<OrderKey>(arena.get())};
    // The log entries committed into this map, one chunk per group commit.
    LogChunks log;
    // The history committed into this map: disjoint runs, oldest first,
    // each at most half the size of the one before it (Publish merges), so
    // there are at most ~log2(rows) of them.
    std::vector<std::shared_ptr<const HistoryRun>> history;
    size_t history_rows = 0;
    // Changes whenever `order` does (an insert, or the map replaced by
    // Freeze), never repeating within a MemTable: a cursor holding an
    // iterator into `order` checks it before using the iterator again.
    uint64_t order_version = 0;
    const Slot* Find(std::string_view full_key) const;
    Slot* Find(std::string_view full_key);
    // Every Map hashes a key alike (one hasher per process): a lookup that
    // misses the active map and tries the frozen one hashes once.
    size_t Hash(std::string_view full_key) const {
      return slots.hash_function()(absl::string_view(full_key.data(), full_key.size()));
    }
    const Slot* Find(std::string_view full_key, size_t hash) const;
    // The committed history row with this key (24 bytes), if any.
    const HistoryRow* FindHistory(std::string_view key) const;
    size_t size() const { return slots.size() + history_rows; }
    bool empty() const { return slots.empty() && log.empty() && history.empty(); }
  };

  // Only tables that are scanned while the MemTable is shared (lots,
  // expiry, holds' indexes, prices, flows) keep `order`: keeping it costs a
  // B-tree insert per key. History is scanned too, from its sorted runs. A
  // private MemTable, built to scan anything, passes order_all.
  explicit MemTable(bool order_all = false) : order_all_(order_all) {}
  // A MemTable that only its writer's thread ever reads (an audit's
  // rebuild, its replay of the stored state): inserts skip the lock that
  // keeps other readers out of a rehash (~4% of an audit). Before any write.
  void set_private() { private_ = true; }
  static bool Ordered(Table t);
  bool ordered(Table t) const { return order_all_ || Ordered(t); }
  // Orders every table from now on, indexing the keys of those it did not
  // order in one sort: a private MemTable that is written first and
  // scanned after (an audit's rebuild) skips a B-tree insert per key of
  // the unordered tables (random ids: a cache miss per level). Writer
  // side; nothing pending.
  void OrderAll();
  // Makes room in the hash index for `slots` keys at once: a private
  // MemTable that knows roughly how many it will hold (an audit's rebuild)
  // skips the index's doublings, each a rehash of every key into memory
  // the kernel zeroes first. Writer side.
  void Reserve(size_t slots);
  MemTable(const MemTable&) = delete;
  MemTable& operator=(const MemTable&) = delete;

  // Writer side.
  void Put(std::string_view full_key, std::string_view value);
  void Del(std::string_view full_key);
  // A log-table write, pending until Publish().
  void PutLog(Table t, uint64_t seq, std::string_view value) {
    if (pending_log_.empty()) ReserveLog();
    pending_log_.Add(t, seq, value);
  }
  // A `history` write (key: member id ‖ BeU64 seq, value: I64), pending
  // until Publish(). REQUIRES: a key not written before.
  void PutHistory(std::string_view key, std::string_view value);
  // Undo marks for linked chains, batches and whole group commits.
  struct Mark {
    size_t undo = 0;
    LogChunk::Mark log;
    size_t history = 0;
  };
  Mark Savepoint() const {
    return Mark{undo_.size(), pending_log_.mark(), pending_history_.size()};
  }
  void RollbackTo(const Mark& mark);
  bool pending() const {
    return !undo_.empty() || !pending_log_.empty() || !pending_history_.empty();
  }
  bool pending_history() const { return !pending_history_.empty(); }
  // The log writes pending, for the write-ahead log before Publish().
  const LogChunk& pending_log() const { return pending_log_; }
  // Makes every pending write committed (visible to readers), atomically.
  void Publish();
  // Appends committed log chunks (recovered from the write-ahead log, or
  // another MemTable's, copied for a private snapshot).
  void AddLog(const LogChunks& chunks);
  // Hands the committed map over (for a checkpoint) and carries on in
  // `next` (empty; see EmptyMapLike).
  // REQUIRES: nothing pending. The caller holds mutex() exclusively.
  std::shared_ptr<const Map> Freeze(Map next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An empty map with room for as many keys as this one has. Growing from
  // empty rehashed every key ~once per doubling: a tenth of the writer's
  // time in BM_LedgerApply/8190 (BENCHMARKS.md). Writer side; build it
  // before taking mutex(), since the allocation is not free either.
  Map EmptyMapLike() const;
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }

  const Map& map() const { return map_; }
  absl::Mutex& mutex() const ABSL_LOCK_RETURNED(mu_) { return mu_; }

 private:
  struct Undo {
    Slot* slot;
    State pending;
    Bytes value;
  };
  Slot& SlotFor(std::string_view full_key);
  // Bytes for a new pending value of `s` (before it is changed): its
  // pending bytes if nothing refers to them (no pending write of it in
  // this group: an undo entry would) and they are large enough, else new
  // ones from the arena.
  Bytes ValueFor(const Slot& s, std::string_view value);
  // Before a group commit's first log write: room for what the last one
  // wrote, up to 16 KiB. A chunk grown from empty reallocated at every
  // doubling, five or six times for one transaction's record at batch 1.
  void ReserveLog();

  bool order_all_;
  bool private_ = false;
  Map map_;
  std::vector<Undo> undo_;
  LogChunk pending_log_;
  LogChunk::Mark last_log_;  // the size of the last chunk published
  // In the order written (seq order); sorted into a run by Publish(). The
  // writer never scans history, so cursors do not look here.
  HistoryRun pending_history_;
  mutable absl::Mutex mu_;
};

// What the engine reads and writes through: the active MemTable (its
// pending values too when `writer`), the frozen map being checkpointed, and
// then the log environment's snapshot for log tables (whose entries in the
// maps are LogChunks) or the state environment's for the others.
//
// Values returned by Get() and cursors are valid until the next write
// through this View. Not thread-safe.
class View {
 public:
  struct Layers {
    const Handles* handles = nullptr;
    const lmdb::Txn* log_txn = nullptr;
    const lmdb::Txn* state_txn = nullptr;  // null: no checkpointed state (a rebuild)
    MemTable* active = nullptr;  // may be null
    std::shared_ptr<const MemTable::Map> frozen;  // may be null
    // Log chunks older than the maps' (a scan's copy, or what a read-only
    // ledger read from the write-ahead log); may be null.
    const LogChunks* log_tail = nullptr;
    bool writer = false;    // sees (and makes) pending writes
    // The writer's: every id in the state environment is in it (ids that
    // are not are looked for in the maps only); ids written are added.
    IdFilter* id_filter = nullptr;
    // Log tables already hold what is written: writes to them are not
    // made but checked (an `effects` entry must equal the stored one).
    bool replaying = false;
  };
  explicit View(Layers layers) : l_(std::move(layers)) {}

  absl::StatusOr<std::optional<std::string_view>> Get(Table t, std::string_view key) const;
  // MDB_NOOVERWRITE is honoured for state tables.
  // When replaying, an `effects` write that differs from the stored entry
  // (or finds none) is DataLoss: a replay re-derives effects, it does not
  // take them on trust.
  absl::Status Put(Table t, std::string_view key, std::string_view value, unsigned flags = 0);
  // Returns whether the key existed.
  absl::StatusOr<bool> Del(Table t, std::string_view key);

  MemTable* active() const { return l_.active; }
  const Layers& layers() const { return l_; }
  // A rebuild moves its state to a scratch environment as it goes
  // (ledger.cc, StateRebuild). REQUIRES: no cursor of this View on a state
  // table is used after it (log tables never read the state layer); one
  // kept open across calls is opened again when state_generation() moves.
  void set_state_txn(const lmdb::Txn* txn) {
    l_.state_txn = txn;
    ++state_generation_;
  }
  uint64_t state_generation() const { return state_generation_; }
  // How many `effects` writes a replaying View has checked so far.
  uint64_t effects_checked() const { return effects_checked_; }

 private:
  // table byte ‖ key, in a buffer reused across calls (no allocation).
  std::string_view FullKey(Table t, std::string_view key) const;
  // A log table: the chunks in the maps (newest first), then LMDB.
  absl::StatusOr<std::optional<std::string_view>> GetLog(Table t, std::string_view key) const;
  // History: the maps' runs (committed rows only), then LMDB.
  absl::StatusOr<std::optional<std::string_view>> GetHistory(std::string_view key) const;
  Layers l_;
  mutable std::string key_scratch_;
  uint64_t effects_checked_ = 0;
  uint64_t state_generation_ = 0;
};

// A cursor over one table of a View, merging its layers (newest first,
// deletions hide older values). Positioning calls return false at the end.
class ViewCursor {
 public:
  // With a `prefix`, moving forward (SeekAtLeast, First, Next) stops, as at
  // the end, at the first key past the keys that start with it. Without
  // the bound, a cursor steps over every deleted key in the in-memory
  // layers up to the next live one, which after an expiry sweep may be
  // other members' lots by the thousand.
  static absl::StatusOr<ViewCursor> Open(const View& view, Table t,
                                         std::string_view prefix = {});

  // Moves forward end past the keys that start with `prefix` from now on
  // (empty: no bound), as if opened with it; the position is lost. A caller
  // that scans many ranges of a table keeps one cursor and its buffers.
  void Bound(std::string_view prefix);

  absl::StatusOr<bool> SeekAtLeast(std::string_view key);
  absl::StatusOr<bool> First() { return SeekAtLeast(""); }
  absl::StatusOr<bool> Last();
  absl::StatusOr<bool> Next();
  absl::StatusOr<bool> Prev();

  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }

 private:
  ViewCursor(const View* view, Table t, std::optional<lmdb::Cursor> cursor)
      : view_(view), table_(t), lmdb_(std::move(cursor)) {}
  // The first visible key >= target (> when strict); or, backwards, the
  // last visible key < target (target empty + to_end: the very last).
  // `resume`: target is not below the previous Forward's target, so each
  // in-memory layer may walk on from where that one found its first
  // entry instead of descending its B-tree again.
  // `target` may be key_ (Next, Prev); it is copied into target_ first.
  absl::StatusOr<bool> Forward(std::string_view target, bool strict, bool resume);
  absl::StatusOr<bool> Backward(std::string_view target, bool to_end);

  const View* view_;
  Table table_;
  std::optional<lmdb::Cursor> lmdb_;  // absent: a view without a state layer
  std::string prefix_;  // forward moves end past it (empty: no bound)
  // After a Forward() that found key_: lmdb_ is at the first LMDB key >=
  // key_ (lmdb_found_), or past the last one (!lmdb_found_).
  bool lmdb_at_key_ = false;
  bool lmdb_found_ = false;
  // Per in-memory layer (newest first), after a Forward(): its first entry
  // at or past that call's target, valid while the map's order_version is
  // unchanged. A scan steps to the next entry instead of a B-tree descent
  // per key (most of an audit's comparison, BENCHMARKS.md).
  struct MapPosition {
    const MemTable::Map* map = nullptr;
    uint64_t version = 0;
    MemTable::OrderSet::const_iterator it;
  };
  MapPosition positions_[2];
  size_t position_count_ = 0;  // 0: none to resume from
  std::string key_;
  std::string_view value_;
  // Forward's working keys, kept for their capacity: a scan's steps
  // allocate nothing once they have grown (SPEC §9).
  std::string target_;
  std::string full_;
};

}  // namespace pointledger::ledger

#endif  // POINTLEDGER_LEDGER_VIEW_H_
