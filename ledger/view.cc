#include "ledger/view.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <new>
#include <sanitizer/asan_interface.h>
#include <utility>

#include "ledger/codec.h"

namespace pointledger::ledger {

namespace {

constexpr const char* kTableNames[kTableCount] = {
    "log",          "effects",  "ids",      "programs",       "accounts", "lots",
    "expiry",       "holds",    "hold_deadlines", "member_holds", "history", "reversed",
    "referees",     "partners", "prices",   "flows"};

constexpr std::string_view kCheckpointKey = "checkpoint_seq";

// What a slot says at this layer: nullopt when it says nothing (look below).
struct Found {
  MemTable::State state;
  std::string_view value;
};
std::optional<Found> Effective(const MemTable::Slot& s, bool writer) {
  if (writer && s.pending != MemTable::kAbsent) return Found{s.pending, s.pending_value};
  if (s.committed != MemTable::kAbsent) return Found{s.committed, s.committed_value};
  return std::nullopt;
}

// "(expiry, points) ..." for a message; the raw size if it does not parse.
std::string DescribePieces(std::string_view bytes) {
  std::vector<Piece> pieces;
  if (!DecodePieces(bytes, &pieces)) return StrCat("a malformed entry of ", bytes.size(), " bytes");
  std::string out = "[";
  for (const Piece& p : pieces) {
    out += StrCat(out.size() > 1 ? ", " : "", p.points, " expiring at ", p.expires_at_ns);
  }
  return out + "]";
}

}  // namespace

const char* TableName(Table t) {
  PL_CHECK(t < kTableCount);
  return kTableNames[t];
}

absl::StatusOr<Handles> OpenHandles(const lmdb::Txn& log_txn, const lmdb::Txn& state_txn,
                                    bool create) {
  Handles h;
  for (Table t = 0; t < kTableCount; ++t) {
    const lmdb::Txn& txn = IsLogTable(t) ? log_txn : state_txn;
    PL_ASSIGN_OR_RETURN(h.dbi[t], lmdb::OpenDbi(txn, kTableNames[t], create));
  }
  PL_ASSIGN_OR_RETURN(h.meta, lmdb::OpenDbi(state_txn, "meta", create));
  return h;
}

absl::StatusOr<uint64_t> ReadCheckpointSeq(const lmdb::Txn& state_txn, const Handles& handles) {
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v,
                      state_txn.Get(handles.meta, kCheckpointKey));
  if (!v) return uint64_t{0};
  ByteReader r(*v);
  const uint64_t seq = r.U64();
  if (!r.done()) return absl::DataLossError("meta: malformed checkpoint_seq");
  return seq;
}

// ---------------------------------------------------------------------------
// LogChunk.

namespace {

// What an entry is estimated to take in the log environment: a leaf node
// (header and key) beside its value, or whole overflow pages for values
// past LMDB's node limit (about half a 4 KiB page).
uint64_t LmdbBytes(size_t value_size) {
  constexpr uint64_t kPage = 4096;
  if (value_size > 1900) return (value_size + 16 + kPage - 1) / kPage * kPage + 32;
  return value_size + 32;
}

}  // namespace

void LogChunk::Add(Table t, uint64_t seq, std::string_view value) {
  PL_CHECK(IsLogTable(t) && value.size() <= UINT32_MAX);
  PL_CHECK(refs_[t].empty() || refs_[t].back().seq < seq);
  ByteWriter w(&bytes_);
  w.U8(t);
  w.U64(seq);
  w.U32(static_cast<uint32_t>(value.size()));
  refs_[t].push_back(Ref{seq, bytes_.size(), static_cast<uint32_t>(value.size())});
  bytes_.append(value);
  lmdb_bytes_ += LmdbBytes(value.size());
}

bool LogChunk::Parse(std::string bytes, LogChunk* out) {
  *out = LogChunk();
  ByteReader r(bytes);
  while (!r.done()) {
    const uint8_t t = r.U8();
    const uint64_t seq = r.U64();
    const uint32_t size = r.U32();
    const size_t offset = r.position();
    r.Bytes(size);
    if (!r.ok() || !IsLogTable(t)) return false;
    if (!out->refs_[t].empty() && out->refs_[t].back().seq >= seq) return false;
    out->refs_[t].push_back(Ref{seq, offset, size});
    out->lmdb_bytes_ += LmdbBytes(size);
  }
  out->bytes_ = std::move(bytes);
  return true;
}

void LogChunk::Reserve(const Mark& m) {
  bytes_.reserve(m.bytes);
  refs_[0].reserve(m.refs[0]);
  refs_[1].reserve(m.refs[1]);
}

LogChunk::Mark LogChunk::mark() const {
  return Mark{bytes_.size(), {refs_[0].size(), refs_[1].size()}, lmdb_bytes_};
}

void LogChunk::Truncate(const Mark& m) {
  PL_CHECK(m.bytes <= bytes_.size());
  bytes_.resize(m.bytes);
  refs_[0].resize(m.refs[0]);
  refs_[1].resize(m.refs[1]);
  lmdb_bytes_ = m.lmdb_bytes;
}

namespace {

bool BySeq(const LogChunk::Ref& r, uint64_t seq) { return r.seq < seq; }

// The first entry of t with seq >= s in one chunk.
const LogChunk::Ref* FirstAtLeast(const LogChunk& c, Table t, uint64_t s) {
  const auto& refs = c.refs(t);
  auto it = std::lower_bound(refs.begin(), refs.end(), s, BySeq);
  return it == refs.end() ? nullptr : &*it;
}

// The last entry of t with seq < s in one chunk.
const LogChunk::Ref* LastBelow(const LogChunk& c, Table t, uint64_t s) {
  const auto& refs = c.refs(t);
  auto it = std::lower_bound(refs.begin(), refs.end(), s, BySeq);
  return it == refs.begin() ? nullptr : &*std::prev(it);
}

// The index of the first chunk whose seqs reach s.
size_t FirstChunkReaching(const LogChunks& chunks, uint64_t s) {
  return std::partition_point(chunks.begin(), chunks.end(),
                              [&](const auto& c) { return c->last_seq() < s; }) -
         chunks.begin();
}

}  // namespace

std::optional<std::string_view> FindInLog(const LogChunks& chunks, Table t, uint64_t seq) {
  const size_t i = FirstChunkReaching(chunks, seq);
  if (i == chunks.size() || chunks[i]->first_seq() > seq) return std::nullopt;
  const LogChunk::Ref* r = FirstAtLeast(*chunks[i], t, seq);
  if (r == nullptr || r->seq != seq) return std::nullopt;
  return chunks[i]->value(*r);
}

// ---------------------------------------------------------------------------
// MemTable.

MemTable::OrderKey::OrderKey(std::string_view k, const Slot* s) : key(k), slot(s) {
  // Zero-padded, so the packed order agrees with the bytes' order; ties
  // (equal first 16 bytes) fall back to comparing the whole keys. Two
  // loads and byte swaps: a loop over the bytes was 5% of the samples of
  // BM_LedgerApply/8190 (the checkpointer packs every key it sorts).
  static_assert(std::endian::native == std::endian::little);
  unsigned char bytes[16] = {};
  if (!k.empty()) std::memcpy(bytes, k.data(), std::min<size_t>(k.size(), sizeof bytes));
  std::memcpy(&hi, bytes, 8);
  std::memcpy(&lo, bytes + 8, 8);
  hi = __builtin_bswap64(hi);
  lo = __builtin_bswap64(lo);
}

const MemTable::Slot* MemTable::Map::Find(std::string_view full_key) const {
  auto it = slots.find(absl::string_view(full_key.data(), full_key.size()));
  return it == slots.end() ? nullptr : it->second;
}

const MemTable::Slot* MemTable::Map::Find(std::string_view full_key, size_t hash) const {
  auto it = slots.find(absl::string_view(full_key.data(), full_key.size()), hash);
  return it == slots.end() ? nullptr : it->second;
}

MemTable::Slot* MemTable::Map::Find(std::string_view full_key) {
  auto it = slots.find(absl::string_view(full_key.data(), full_key.size()));
  return it == slots.end() ? nullptr : it->second;
}

namespace {
// The first row of a run with key >= target.
MemTable::HistoryRun::const_iterator FirstRowNotBelow(const MemTable::HistoryRun& run,
                                                      std::string_view target) {
  return std::lower_bound(run.begin(), run.end(), target,
                          [](const MemTable::HistoryRow& r, std::string_view t) {
                            return r.key_view() < t;
                          });
}
}  // namespace

const MemTable::HistoryRow* MemTable::Map::FindHistory(std::string_view key) const {
  for (const auto& run : history) {
    auto it = FirstRowNotBelow(*run, key);
    if (it != run->end() && it->key_view() == key) return &*it;
  }
  return nullptr;
}

// History is scanned while shared too, from its runs (it never has slots).
bool MemTable::Ordered(Table t) {
  const Dbs d;
  return t == d.lots || t == d.expiry || t == d.hold_deadlines || t == d.member_holds ||
         t == d.history || t == d.prices || t == d.flows;
}

Arena::~Arena() {
  // Handed back to the allocator as it gave them.
  for (const Block& b : blocks_) {
    ASAN_UNPOISON_MEMORY_REGION(b.bytes, b.size);
    if (b.huge) {
      RecycleHuge(b.bytes, b.size);
    } else {
      delete[] b.bytes;
    }
  }
}

char* Arena::Allocate(size_t n) {
  // The condition asan_interface.h poisons under (GCC and clang alike).
#if __has_feature(address_sanitizer) || defined(__SANITIZE_ADDRESS__)
  constexpr size_t kGap = 16;
#else
  constexpr size_t kGap = 0;
#endif
  const size_t take = ((n + 7) & ~size_t{7}) + kGap;
  if (take > left_) {
    // A value larger than a block gets a block of its own; the current
    // block's rest is left unused. Past kSmallBytes, blocks are huge pages
    // (huge_pages.h): a big map's pieces are read at random.
    const bool huge = bytes_ >= kSmallBytes;
    const size_t size = std::max(take, huge ? kHugePage : kSmallBlock);
    // Room for the block's entry first: a push_back that threw after the
    // block was allocated would leak it.
    if (blocks_.size() == blocks_.capacity()) blocks_.reserve(std::max<size_t>(16, 2 * blocks_.size()));
    // Not value-initialized: a block is written before it is read.
    char* bytes = huge ? static_cast<char*>(TakeHuge(size)) : new char[size];
    blocks_.push_back(Block{bytes, size, huge});
    bytes_ += size;
    next_ = bytes;
    left_ = size;
    ASAN_POISON_MEMORY_REGION(next_, size);
  }
  char* p = next_;
  next_ += take;
  left_ -= take;
  ASAN_UNPOISON_MEMORY_REGION(p, n);
  return p;
}

MemTable::Slot& MemTable::SlotFor(std::string_view full_key) {
  if (Slot* s = map_.Find(full_key)) return *s;
  // The key and slot go to the arena first: only this thread allocates
  // there, and readers see neither until the insert below.
  char* key = map_.arena->Allocate(full_key.size());
  std::memcpy(key, full_key.data(), full_key.size());
  Slot* slot = new (map_.arena->Allocate(sizeof(Slot))) Slot();
  const std::string_view stored(key, full_key.size());
  // Inserting may rehash and rebalance: readers must not be inside the map
  // (a private one has none).
  std::optional<absl::MutexLock> lock;
  if (!private_) lock.emplace(&mu_);
  const bool inserted = map_.slots.try_emplace(absl::string_view(key, full_key.size()), slot).second;
  PL_CHECK(inserted);
  if (ordered(static_cast<Table>(full_key[0]))) {
    map_.order.insert(OrderKey(stored, slot));
    ++map_.order_version;
  }
  return *slot;
}

MemTable::Bytes MemTable::ValueFor(const Slot& s, std::string_view value) {
  PL_CHECK(value.size() <= UINT32_MAX);
  Bytes b = s.pending_value;
  // A pending write of this slot in this group left an undo entry that
  // may point at its pending bytes: those stay as they are.
  if (s.pending != kAbsent || b.capacity < value.size()) {
    b.data = map_.arena->Allocate(value.size());
    b.capacity = static_cast<uint32_t>(value.size());
  }
  if (!value.empty()) std::memcpy(b.data, value.data(), value.size());
  b.size = static_cast<uint32_t>(value.size());
  return b;
}

void MemTable::Reserve(size_t slots) {
  absl::MutexLock lock(&mu_);
  map_.slots.reserve(slots);
}

void MemTable::OrderAll() {
  PL_CHECK(!pending());
  if (order_all_) return;
  std::vector<OrderKey> rest;
  for (const auto& [full_key, slot] : map_.slots) {
    if (!Ordered(static_cast<Table>(full_key[0]))) {
      rest.emplace_back(std::string_view(full_key.data(), full_key.size()), slot);
    }
  }
  std::sort(rest.begin(), rest.end());
  absl::MutexLock lock(&mu_);
  // In order, each after the last: no search from the root.
  auto hint = map_.order.end();
  for (const OrderKey& k : rest) hint = std::next(map_.order.insert(hint, k));
  ++map_.order_version;
  order_all_ = true;
}

void MemTable::Put(std::string_view full_key, std::string_view value) {
  Slot& s = SlotFor(full_key);
  const Bytes bytes = ValueFor(s, value);
  undo_.push_back(Undo{&s, s.pending, s.pending_value});
  s.pending = kValue;
  s.pending_value = bytes;
}

void MemTable::Del(std::string_view full_key) {
  Slot& s = SlotFor(full_key);
  undo_.push_back(Undo{&s, s.pending, s.pending_value});
  s.pending = kDeleted;
  s.pending_value.size = 0;
}

void MemTable::PutHistory(std::string_view key, std::string_view value) {
  PL_CHECK(key.size() == HistoryRow::kKeySize && value.size() == HistoryRow::kValueSize);
  HistoryRow& row = pending_history_.emplace_back();
  std::memcpy(row.key, key.data(), key.size());
  std::memcpy(row.value, value.data(), value.size());
}

void MemTable::RollbackTo(const Mark& mark) {
  PL_CHECK(mark.undo <= undo_.size());
  PL_CHECK(mark.history <= pending_history_.size());
  pending_log_.Truncate(mark.log);
  pending_history_.resize(mark.history);
  while (undo_.size() > mark.undo) {
    Undo& u = undo_.back();
    u.slot->pending = u.pending;
    u.slot->pending_value = u.value;
    undo_.pop_back();
  }
}

void MemTable::Publish() {
  // The pending history becomes a run, merged with the newest runs while
  // they are at most twice its size (a binary counter of run sizes: each
  // row is copied ~log2 times, and a scan looks in ~log2 runs). Built
  // before taking the lock; only this thread changes map_.history.
  std::shared_ptr<const HistoryRun> run;
  size_t merged = 0;
  if (!pending_history_.empty()) {
    std::sort(pending_history_.begin(), pending_history_.end());
    // Copied at its size; the pending list keeps its capacity for the next.
    auto rows = std::make_shared<HistoryRun>(pending_history_.begin(), pending_history_.end());
    pending_history_.clear();
    const auto& runs = map_.history;
    while (merged < runs.size() && runs[runs.size() - 1 - merged]->size() <= 2 * rows->size()) {
      const HistoryRun& older = *runs[runs.size() - 1 - merged];
      auto both = std::make_shared<HistoryRun>();
      both->reserve(older.size() + rows->size());
      std::merge(older.begin(), older.end(), rows->begin(), rows->end(),
                 std::back_inserter(*both));
      rows = std::move(both);
      ++merged;
    }
    run = std::move(rows);
  }
  // The runs merged away are freed after the lock is released: a run can
  // be megabytes, and readers wait while the lock is held.
  std::vector<std::shared_ptr<const HistoryRun>> dropped;
  absl::MutexLock lock(&mu_);
  if (run != nullptr) {
    for (size_t i = 0; i < merged; ++i) {
      map_.history_rows -= map_.history.back()->size();
      dropped.push_back(std::move(map_.history.back()));
      map_.history.pop_back();
    }
    map_.history_rows += run->size();
    map_.history.push_back(std::move(run));
  }
  for (const Undo& u : undo_) {
    Slot& s = *u.slot;
    if (s.pending == kAbsent) continue;  // a key written twice: already done
    s.committed = s.pending;
    std::swap(s.committed_value, s.pending_value);
    s.pending = kAbsent;
  }
  undo_.clear();
  if (!pending_log_.empty()) {
    // Every transaction that writes effects also writes its record.
    PL_CHECK(!pending_log_.refs(Dbs().log).empty());
    last_log_ = pending_log_.mark();
    map_.log.push_back(std::make_shared<const LogChunk>(std::move(pending_log_)));
    pending_log_ = LogChunk();
  }
}

void MemTable::ReserveLog() {
  // Capped: a bulk group's chunk (megabytes) reserved again for a small
  // one would sit in memory mostly empty until the checkpoint. What a
  // published chunk may hold unused is the cap, and only after a bigger
  // group.
  constexpr size_t kBytesMax = 16 << 10;
  constexpr size_t kRefsMax = 64;
  LogChunk::Mark m = last_log_;
  m.bytes = std::min(m.bytes, kBytesMax);
  m.refs[0] = std::min(m.refs[0], kRefsMax);
  m.refs[1] = std::min(m.refs[1], kRefsMax);
  pending_log_.Reserve(m);
}

void MemTable::AddLog(const LogChunks& chunks) {
  PL_CHECK(pending_log_.empty());
  absl::MutexLock lock(&mu_);
  for (const auto& c : chunks) {
    PL_CHECK(map_.log.empty() || map_.log.back()->last_seq() < c->first_seq());
    map_.log.push_back(c);
  }
}

MemTable::Map MemTable::EmptyMapLike() const {
  Map next;
  next.slots.reserve(map_.slots.size());
  return next;
}

std::shared_ptr<const MemTable::Map> MemTable::Freeze(Map next) {
  PL_CHECK(!pending());
  PL_CHECK(next.empty());
  auto frozen = std::make_shared<const Map>(std::move(map_));
  map_ = std::move(next);
  map_.order_version = frozen->order_version + 1;
  return frozen;
}

// ---------------------------------------------------------------------------
// View.

std::string_view View::FullKey(Table t, std::string_view key) const {
  key_scratch_.assign(1, static_cast<char>(t));
  key_scratch_.append(key);
  return key_scratch_;
}

absl::StatusOr<std::optional<std::string_view>> View::Get(Table t, std::string_view key) const {
  using Result = std::optional<std::string_view>;
  if (IsLogTable(t)) return GetLog(t, key);
  if (t == Dbs().history) return GetHistory(key);
  // The writer's filter holds every id of every layer (the maps' too:
  // View::Put adds each id written, and Open adds those it replayed), so an
  // id it has never seen is nowhere: the exactly-once check of a fresh id
  // costs no lookup at all.
  if (t == Dbs().ids && l_.id_filter != nullptr && !l_.id_filter->MayContain(key)) {
    return Result();
  }
  const std::string_view full = FullKey(t, key);
  const MemTable::Map* first = l_.active != nullptr ? &l_.active->map() : l_.frozen.get();
  const size_t hash = first != nullptr ? first->Hash(full) : 0;
  if (l_.active != nullptr) {
    if (const MemTable::Slot* slot = l_.active->map().Find(full, hash)) {
      if (std::optional<Found> f = Effective(*slot, l_.writer)) {
        return f->state == MemTable::kValue ? Result(f->value) : Result();
      }
    }
  }
  if (l_.frozen != nullptr) {
    if (const MemTable::Slot* slot = l_.frozen->Find(full, hash)) {
      if (std::optional<Found> f = Effective(*slot, false)) {
        return f->state == MemTable::kValue ? Result(f->value) : Result();
      }
    }
  }
  if (l_.state_txn == nullptr) return Result();  // a rebuild from the log alone
  return l_.state_txn->Get(l_.handles->dbi[t], key);
}

absl::StatusOr<std::optional<std::string_view>> View::GetHistory(std::string_view key) const {
  using Result = std::optional<std::string_view>;
  for (const MemTable::Map* map : {l_.active != nullptr ? &l_.active->map() : nullptr, l_.frozen.get()}) {
    if (map == nullptr) continue;
    if (const MemTable::HistoryRow* row = map->FindHistory(key)) return Result(row->value_view());
  }
  if (l_.state_txn == nullptr) return Result();
  return l_.state_txn->Get(l_.handles->dbi[Dbs().history], key);
}

absl::StatusOr<std::optional<std::string_view>> View::GetLog(Table t, std::string_view key) const {
  using Result = std::optional<std::string_view>;
  if (key.size() != 8) return Result();
  const uint64_t seq = ByteReader(key).BeU64();
  if (l_.active != nullptr) {
    if (l_.writer) {
      const LogChunk& pending = l_.active->pending_log();
      if (const LogChunk::Ref* r = FirstAtLeast(pending, t, seq); r != nullptr && r->seq == seq) {
        return Result(pending.value(*r));
      }
    }
    if (Result v = FindInLog(l_.active->map().log, t, seq)) return v;
  }
  if (l_.frozen != nullptr) {
    if (Result v = FindInLog(l_.frozen->log, t, seq)) return v;
  }
  if (l_.log_tail != nullptr) {
    if (Result v = FindInLog(*l_.log_tail, t, seq)) return v;
  }
  if (l_.log_txn == nullptr) return Result();
  return l_.log_txn->Get(l_.handles->dbi[t], key);
}

absl::Status View::Put(Table t, std::string_view key, std::string_view value, unsigned flags) {
  PL_CHECK(l_.writer);
  if (IsLogTable(t)) {
    PL_CHECK(key.size() == 8);
    if (!l_.replaying) {
      l_.active->PutLog(t, ByteReader(key).BeU64(), value);
      return absl::OkStatus();
    }
    // The record itself is checked by its hash (Applier::Replay); the
    // effects, which later reversals read, are checked here.
    if (t != Dbs().effects) return absl::OkStatus();
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> stored, GetLog(t, key));
    if (!stored || *stored != value) {
      return absl::DataLossError(StrCat("effects of seq ", ByteReader(key).BeU64(), ": stored ",
                                        stored ? DescribePieces(*stored) : "none",
                                        ", the replay gives ", DescribePieces(value)));
    }
    ++effects_checked_;
    return absl::OkStatus();
  }
  if ((flags & MDB_NOOVERWRITE) != 0) {
    // Get does not see pending history rows: no such check for history.
    PL_CHECK(t != Dbs().history);
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> existing, Get(t, key));
    if (existing) return absl::InternalError(StrCat(TableName(t), ": key exists"));
  }
  if (t == Dbs().history) {
    l_.active->PutHistory(key, value);
    return absl::OkStatus();
  }
  // Before the checkpoint can copy it to the state environment. An id
  // rolled back stays in the filter: a false positive, harmless.
  if (t == Dbs().ids && l_.id_filter != nullptr) l_.id_filter->Add(key);
  l_.active->Put(FullKey(t, key), value);
  return absl::OkStatus();
}

absl::StatusOr<bool> View::Del(Table t, std::string_view key) {
  PL_CHECK(l_.writer);
  // The log and history are append-only.
  PL_CHECK(!IsLogTable(t) && t != Dbs().history);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> existing, Get(t, key));
  if (!existing) return false;
  l_.active->Del(FullKey(t, key));
  return true;
}

// ---------------------------------------------------------------------------
// ViewCursor.

absl::StatusOr<ViewCursor> ViewCursor::Open(const View& view, Table t, std::string_view prefix) {
  const View::Layers& l = view.layers();
  const lmdb::Txn* txn = IsLogTable(t) ? l.log_txn : l.state_txn;
  std::optional<ViewCursor> c;
  if (txn == nullptr) {
    c.emplace(ViewCursor(&view, t, std::nullopt));  // no state layer
  } else {
    PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(*txn, l.handles->dbi[t]));
    c.emplace(ViewCursor(&view, t, std::move(cursor)));
  }
  c->Bound(prefix);
  return std::move(*c);
}

void ViewCursor::Bound(std::string_view prefix) {
  prefix_.assign(prefix);
  lmdb_at_key_ = false;
  position_count_ = 0;
}

absl::StatusOr<bool> ViewCursor::SeekAtLeast(std::string_view key) {
  return Forward(key, /*strict=*/false, /*resume=*/false);
}

absl::StatusOr<bool> ViewCursor::Next() {
  return Forward(key_, /*strict=*/true, /*resume=*/position_count_ > 0);
}

absl::StatusOr<bool> ViewCursor::Prev() { return Backward(key_, /*to_end=*/false); }

absl::StatusOr<bool> ViewCursor::Last() { return Backward("", /*to_end=*/true); }

// The in-memory layers of a table, newest first: (map, writer view?).
namespace {
struct MapLayer {
  const MemTable::Map* map;
  bool writer;
};

size_t MapLayers(const View& view, Table t, MapLayer (&maps)[2]) {
  if (IsLogTable(t)) return 0;
  const View::Layers& l = view.layers();
  size_t count = 0;
  // A scan of a table the shared MemTable does not order is our bug: such
  // scans run on private snapshots (Snapshot::Mode::kScan).
  if (l.active != nullptr) {
    PL_CHECK(l.active->ordered(t));
    // Pending history is not in the runs yet; only the writer writes it,
    // and it never scans history (replays publish before anyone scans).
    PL_CHECK(t != Dbs().history || !l.writer || !l.active->pending_history());
    maps[count++] = {&l.active->map(), l.writer};
  }
  if (l.frozen != nullptr) {
    PL_CHECK(MemTable::Ordered(t));
    maps[count++] = {l.frozen.get(), false};
  }
  return count;
}

// History rows of a layer's runs: the first with key >= target (> when
// strict), and the last with key < target (every one when to_end).
const MemTable::HistoryRow* FirstRowAtLeast(const MemTable::HistoryRun& run,
                                            std::string_view target, bool strict) {
  auto it = FirstRowNotBelow(run, target);
  if (strict && it != run.end() && it->key_view() == target) ++it;
  return it == run.end() ? nullptr : &*it;
}

const MemTable::HistoryRow* LastRowBelow(const MemTable::HistoryRun& run, std::string_view target,
                                         bool to_end) {
  if (to_end) return run.empty() ? nullptr : &run.back();
  auto it = FirstRowNotBelow(run, target);
  return it == run.begin() ? nullptr : &*std::prev(it);
}

// The nearest visible key seen so far across the layers. Layers are offered
// oldest first (LMDB, frozen, active), so on equal keys the newer one wins.
struct Best {
  std::optional<std::string_view> key;
  Found found{MemTable::kAbsent, {}};
  void Offer(std::string_view k, Found f, bool forward) {
    if (!key || (forward ? k <= *key : k >= *key)) {
      key = k;
      found = f;
    }
  }
};
// The log chunks of a view, oldest first: the tail's, the frozen map's, the
// active map's, and the writer's pending chunk. Their seqs ascend in that
// order.
struct LogLayers {
  const LogChunks* lists[3] = {nullptr, nullptr, nullptr};
  const LogChunk* pending = nullptr;
  explicit LogLayers(const View& view) {
    const View::Layers& l = view.layers();
    size_t n = 0;
    if (l.log_tail != nullptr) lists[n++] = l.log_tail;
    if (l.frozen != nullptr) lists[n++] = &l.frozen->log;
    if (l.active != nullptr) {
      lists[n++] = &l.active->map().log;
      if (l.writer) pending = &l.active->pending_log();
    }
  }
  // The first entry of t with seq >= s, and its chunk.
  std::optional<std::pair<uint64_t, std::string_view>> FirstAtLeast(Table t, uint64_t s) const {
    for (const LogChunks* list : lists) {
      if (list == nullptr) continue;
      for (size_t i = FirstChunkReaching(*list, s); i < list->size(); ++i) {
        const LogChunk& c = *(*list)[i];
        if (const LogChunk::Ref* r = ::pointledger::ledger::FirstAtLeast(c, t, s)) {
          return std::pair{r->seq, c.value(*r)};
        }
      }
    }
    if (pending != nullptr) {
      if (const LogChunk::Ref* r = ::pointledger::ledger::FirstAtLeast(*pending, t, s)) {
        return std::pair{r->seq, pending->value(*r)};
      }
    }
    return std::nullopt;
  }
  // The last entry of t with seq < s.
  std::optional<std::pair<uint64_t, std::string_view>> LastBelow(Table t, uint64_t s) const {
    if (pending != nullptr) {
      if (const LogChunk::Ref* r = ::pointledger::ledger::LastBelow(*pending, t, s)) {
        return std::pair{r->seq, pending->value(*r)};
      }
    }
    for (size_t k = 3; k-- > 0;) {
      const LogChunks* list = lists[k];
      if (list == nullptr) continue;
      for (size_t i = std::min(FirstChunkReaching(*list, s) + 1, list->size()); i-- > 0;) {
        const LogChunk& c = *(*list)[i];
        if (const LogChunk::Ref* r = ::pointledger::ledger::LastBelow(c, t, s)) {
          return std::pair{r->seq, c.value(*r)};
        }
      }
    }
    return std::nullopt;
  }
};

}  // namespace

absl::StatusOr<bool> ViewCursor::Forward(std::string_view target_in, bool strict, bool resume) {
  const char prefix = static_cast<char>(table_);
  target_.assign(target_in);
  const std::string& target = target_;
  MapLayer maps[2];
  const size_t map_count = MapLayers(*view_, table_, maps);
  // Positions to walk on from; none after this call unless it succeeds
  // (an error midway must not leave positions past key_).
  size_t resumable = resume && position_count_ == map_count ? map_count : 0;
  position_count_ = 0;
  // A Next(): LMDB's cursor is already at its first key >= key_, so it
  // need not descend the B+tree again (a scan of a member's lots did).
  bool lmdb_positioned = strict && lmdb_at_key_ && target == key_;
  lmdb_at_key_ = false;
  for (;;) {
    // Each layer's first visible candidate.
    Best best;
    // LMDB refuses an empty key: "at least nothing" is the first one.
    bool found = false;
    if (!lmdb_) {
      // No state layer: only the maps.
    } else if (lmdb_positioned) {
      found = lmdb_found_;
    } else if (target.empty() && !strict) {
      PL_ASSIGN_OR_RETURN(found, lmdb_->First());
    } else {
      PL_ASSIGN_OR_RETURN(found, lmdb_->SeekAtLeast(target));
    }
    if (found && strict && lmdb_->key() == target) {
      PL_ASSIGN_OR_RETURN(found, lmdb_->Next());
    }
    if (found) best.Offer(lmdb_->key(), {MemTable::kValue, lmdb_->value()}, true);
    std::string tail_key;  // outlives `best`'s view of it
    if (IsLogTable(table_)) {
      PL_CHECK(target.empty() || target.size() == 8);
      uint64_t s = target.empty() ? 0 : ByteReader(target).BeU64();
      if (!strict || s++ != UINT64_MAX) {
        if (auto e = LogLayers(*view_).FirstAtLeast(table_, s)) {
          tail_key = BeU64Key(e->first);
          best.Offer(tail_key, {MemTable::kValue, e->second}, true);
        }
      }
    }
    const bool history = table_ == Dbs().history;
    for (size_t i = map_count; history && i-- > 0;) {
      for (const auto& run : maps[i].map->history) {
        if (const MemTable::HistoryRow* r = FirstRowAtLeast(*run, target, strict)) {
          best.Offer(r->key_view(), {MemTable::kValue, r->value_view()}, true);
        }
      }
    }
    full_.clear();
    if (!history) {
      full_.push_back(prefix);
      full_.append(target);
    }
    const std::string& full = full_;
    const MemTable::OrderKey probe(full);
    for (size_t i = map_count; !history && i-- > 0;) {
      const MemTable::Map& map = *maps[i].map;
      MapPosition& at = positions_[i];
      auto it = map.order.end();
      if (resumable == map_count && at.map == &map && at.version == map.order_version) {
        // The set is as it was, and target has not moved back: walk on
        // from the previous target's first entry (what lower_bound gives).
        it = at.it;
        while (it != map.order.end() && *it < probe) ++it;
      } else {
        it = map.order.lower_bound(probe);
      }
      at = {&map, map.order_version, it};
      if (strict && it != map.order.end() && it->key == full) ++it;
      for (; it != map.order.end() && it->table() == prefix; ++it) {
        std::optional<Found> f = Effective(*it->slot, maps[i].writer);
        if (!f) continue;
        best.Offer(it->key.substr(1), *f, true);
        break;
      }
    }
    if (!best.key || !best.key->starts_with(prefix_)) return false;
    resumable = history ? 0 : map_count;
    // LMDB's candidate is the least of its keys >= target, and best <= it:
    // so it is also LMDB's first key >= best (what Next() resumes from).
    lmdb_found_ = found;
    if (best.found.state == MemTable::kDeleted) {
      target_.assign(*best.key);  // a layer's key, never target_ or full_
      strict = true;
      lmdb_positioned = true;
      continue;
    }
    key_.assign(*best.key);
    value_ = best.found.value;
    lmdb_at_key_ = true;
    position_count_ = resumable;
    return true;
  }
}

absl::StatusOr<bool> ViewCursor::Backward(std::string_view target_in, bool to_end) {
  lmdb_at_key_ = false;
  position_count_ = 0;
  target_.assign(target_in);
  const std::string& target = target_;
  const char prefix = static_cast<char>(table_);
  MapLayer maps[2];
  const size_t map_count = MapLayers(*view_, table_, maps);
  for (;;) {
    Best best;
    bool found = false;
    if (!lmdb_) {
      // No state layer: only the maps.
    } else if (to_end) {
      PL_ASSIGN_OR_RETURN(found, lmdb_->Last());
    } else {
      PL_ASSIGN_OR_RETURN(found, lmdb_->SeekAtLeast(target));
      PL_ASSIGN_OR_RETURN(found, found ? lmdb_->Prev() : lmdb_->Last());
    }
    if (found) best.Offer(lmdb_->key(), {MemTable::kValue, lmdb_->value()}, false);
    std::string tail_key;  // outlives `best`'s view of it
    if (IsLogTable(table_)) {
      PL_CHECK(to_end || target.size() == 8);
      const uint64_t s = to_end ? UINT64_MAX : ByteReader(target).BeU64();
      if (auto e = LogLayers(*view_).LastBelow(table_, s)) {
        tail_key = BeU64Key(e->first);
        best.Offer(tail_key, {MemTable::kValue, e->second}, false);
      }
    }
    const bool history = table_ == Dbs().history;
    for (size_t i = map_count; history && i-- > 0;) {
      for (const auto& run : maps[i].map->history) {
        if (const MemTable::HistoryRow* r = LastRowBelow(*run, target, to_end)) {
          best.Offer(r->key_view(), {MemTable::kValue, r->value_view()}, false);
        }
      }
    }
    std::string& full = full_;
    full.clear();
    full.push_back(static_cast<char>(to_end ? prefix + 1 : prefix));
    if (!to_end) full.append(target);
    for (size_t i = map_count; !history && i-- > 0;) {
      const auto& order = maps[i].map->order;
      auto it = order.lower_bound(MemTable::OrderKey(full));
      while (it != order.begin()) {
        --it;
        if (it->table() != prefix) break;
        std::optional<Found> f = Effective(*it->slot, maps[i].writer);
        if (!f) continue;
        best.Offer(it->key.substr(1), *f, false);
        break;
      }
    }
    if (!best.key) return false;
    if (best.found.state == MemTable::kDeleted) {
      target_.assign(*best.key);  // a layer's key, never target_ or full_
      to_end = false;
      continue;
    }
    key_.assign(*best.key);
    value_ = best.found.value;
    return true;
  }
}

}  // namespace pointledger::ledger
