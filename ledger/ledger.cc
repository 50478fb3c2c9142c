// Ledger: opening the environment, group commits, and reads.
#include "ledger/ledger.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "ledger/limits.h"
#include "ledger/store.h"

namespace pointledger::ledger {

namespace {
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
}  // namespace

absl::StatusOr<Dbs> OpenDbs(const lmdb::Txn& txn, bool create) {
  Dbs d;
  struct Named {
    MDB_dbi* dbi;
    const char* name;
  };
  const Named all[] = {
      {&d.log, "log"},           {&d.ids, "ids"},
      {&d.programs, "programs"}, {&d.accounts, "accounts"},
      {&d.lots, "lots"},         {&d.expiry, "expiry"},
      {&d.holds, "holds"},       {&d.hold_deadlines, "hold_deadlines"},
      {&d.member_holds, "member_holds"}, {&d.history, "history"},
      {&d.reversed, "reversed"}, {&d.referees, "referees"},
      {&d.effects, "effects"},   {&d.partners, "partners"},
      {&d.prices, "prices"},     {&d.flows, "flows"},
  };
  for (const Named& n : all) {
    PL_ASSIGN_OR_RETURN(*n.dbi, lmdb::OpenDbi(txn, n.name, create));
  }
  return d;
}

absl::StatusOr<ChainHead> ReadHead(const lmdb::Txn& txn, const Dbs& dbs) {
  ChainHead head;
  PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, dbs.log));
  PL_ASSIGN_OR_RETURN(bool found, cursor.Last());
  if (!found) return head;
  TxRecord rec;
  const std::string_view value = cursor.value();
  if (value.size() < 32 || !DecodeRecord(value.substr(32), &rec, nullptr)) {
    return absl::DataLossError("log: the last record does not parse");
  }
  head.seq = rec.seq;
  head.timestamp_ns = rec.timestamp_ns;
  std::memcpy(head.hash.data(), value.data(), 32);
  return head;
}

absl::StatusOr<std::optional<TxRecord>> ReadRecord(const lmdb::Txn& txn, const Dbs& dbs,
                                                   uint64_t seq, Statement* statement) {
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, txn.Get(dbs.log, BeU64Key(seq)));
  if (!v) return std::optional<TxRecord>();
  TxRecord rec;
  if (v->size() < 32 || !DecodeRecord(v->substr(32), &rec, statement) || rec.seq != seq) {
    return absl::DataLossError(StrCat("log: record ", seq, " does not parse"));
  }
  std::memcpy(rec.hash.data(), v->data(), 32);
  return std::optional<TxRecord>(std::move(rec));
}

absl::StatusOr<Statement> ComputeStatement(const lmdb::Txn& txn, const Dbs& dbs,
                                           const Id& partner, int64_t from_ns, int64_t to_ns) {
  Statement s;
  s.from_ns = from_ns;
  s.to_ns = to_ns;
  __int128 partner_owes = 0, program_owes = 0;
  PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, dbs.flows));
  std::string start(IdView(partner));
  ByteWriter(&start).BeI64(from_ns);
  PL_ASSIGN_OR_RETURN(bool found, cursor.SeekAtLeast(start));
  while (found && cursor.key().substr(0, 16) == IdView(partner)) {
    ByteReader kr(cursor.key().substr(16));
    const int64_t ts = kr.BeI64();
    if (ts >= to_ns) break;
    ByteReader vr(cursor.value());
    const uint8_t kind = vr.U8();
    const int64_t points = vr.I64();
    const uint64_t price = vr.U64();
    if (!vr.done() || kind > 1) return absl::DataLossError("flows: malformed entry");
    if (static_cast<FlowKind>(kind) == FlowKind::kEarn) {
      s.earned_points += points;
      partner_owes += static_cast<__int128>(points) * price;
    } else {
      s.redeemed_points += points;
      program_owes += static_cast<__int128>(points) * price;
    }
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  s.partner_owes_micros = static_cast<int64_t>(partner_owes);
  s.program_owes_micros = static_cast<int64_t>(program_owes);
  s.net_micros = s.partner_owes_micros - s.program_owes_micros;
  s.payer = s.net_micros > 0 ? "partner" : s.net_micros < 0 ? "program" : "none";
  return s;
}

// ---------------------------------------------------------------------------

struct Ledger::Rep {
  Options options;
  lmdb::Env env;
  Dbs dbs;
  Clock* clock = nullptr;
  ChainHead head;  // committed head; touched only by the (single) writer
  std::atomic<bool> writer_active{false};
};

struct Ledger::Writer::Rep {
  Ledger::Rep* ledger = nullptr;
  lmdb::Txn root;
  Applier applier;
  Rep(Ledger::Rep* l, lmdb::Txn txn)
      : ledger(l), root(std::move(txn)), applier(l->env, l->dbs, l->clock, l->head) {}
};

Ledger::Ledger(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Ledger::~Ledger() { PL_CHECK(!rep_->writer_active.load()); }

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const Options& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no data directory given");
  if (!options.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          StrCat("cannot create ", options.dir, ": ", ec.message()));
    }
  } else if (!std::filesystem::exists(std::filesystem::path(options.dir) / "data.mdb")) {
    return absl::NotFoundError(StrCat("no ledger in ", options.dir));
  }
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  rep->clock = options.clock != nullptr ? options.clock : SystemClock();
  PL_ASSIGN_OR_RETURN(rep->env, lmdb::Env::Open({.dir = options.dir,
                                                 .map_size_bytes = options.map_size_bytes,
                                                 .read_only = options.read_only}));
  if (options.read_only) {
    PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep->env));
    PL_ASSIGN_OR_RETURN(rep->dbs, OpenDbs(txn, /*create=*/false));
    PL_ASSIGN_OR_RETURN(rep->head, ReadHead(txn, rep->dbs));
    PL_RETURN_IF_ERROR(txn.Commit());  // keeps the dbi handles open
  } else {
    PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginWrite(rep->env, nullptr));
    PL_ASSIGN_OR_RETURN(rep->dbs, OpenDbs(txn, /*create=*/true));
    PL_ASSIGN_OR_RETURN(rep->head, ReadHead(txn, rep->dbs));
    PL_RETURN_IF_ERROR(txn.Commit());
  }
  return std::unique_ptr<Ledger>(new Ledger(std::move(rep)));
}

int64_t Ledger::NowNs() const { return rep_->clock->NowNs(); }

// ---------------------------------------------------------------------------
// Writes.

Ledger::Writer::Writer(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Ledger::Writer::Writer(Writer&&) noexcept = default;
Ledger::Writer::~Writer() {
  if (rep_ != nullptr) {
    rep_->root.Abort();
    rep_->ledger->writer_active.store(false);
  }
}

absl::StatusOr<Ledger::Writer> Ledger::BeginWrite() {
  PL_CHECK(!rep_->options.read_only);
  PL_CHECK(!rep_->writer_active.exchange(true));
  absl::StatusOr<lmdb::Txn> txn = lmdb::Txn::BeginWrite(rep_->env, nullptr);
  if (!txn.ok()) {
    rep_->writer_active.store(false);
    return txn.status();
  }
  return Writer(std::make_unique<Writer::Rep>(rep_.get(), *std::move(txn)));
}

absl::Status Ledger::Writer::Apply(std::span<const Transaction> batch, const Auth& auth,
                                   std::vector<Result>* results) {
  PL_CHECK(rep_ != nullptr);
  if (batch.empty() || batch.size() > kBatchTransactionsMax) {
    return absl::InvalidArgumentError("batch size out of range");
  }
  return rep_->applier.ApplyBatch(rep_->root, batch, auth, results);
}

absl::Status Ledger::Writer::Commit() && {
  PL_CHECK(rep_ != nullptr);
  std::unique_ptr<Rep> rep = std::move(rep_);
  absl::Status status = rep->root.Commit();
  if (status.ok()) rep->ledger->head = rep->applier.head();
  rep->ledger->writer_active.store(false);
  return status;
}

uint64_t Ledger::Writer::recorded_count() const { return rep_->applier.recorded_count(); }

absl::Status Ledger::ApplyBatch(std::span<const Transaction> batch, const Auth& auth,
                                std::vector<Result>* results) {
  PL_ASSIGN_OR_RETURN(Writer writer, BeginWrite());
  PL_RETURN_IF_ERROR(writer.Apply(batch, auth, results));
  return std::move(writer).Commit();
}

// ---------------------------------------------------------------------------
// Reads.

namespace {

absl::StatusOr<std::optional<AccountRec>> ReadAccount(const lmdb::Txn& txn, const Dbs& dbs,
                                                      const Id& id) {
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, txn.Get(dbs.accounts, IdView(id)));
  if (!v) return std::optional<AccountRec>();
  AccountRec a;
  if (!DecodeAccount(*v, &a)) return absl::DataLossError("accounts: malformed entry");
  return std::optional<AccountRec>(std::move(a));
}

}  // namespace

absl::StatusOr<std::optional<Balance>> Ledger::GetBalance(std::string_view program,
                                                          std::string_view member) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  const Id id = MemberAccountId(program, member);
  PL_ASSIGN_OR_RETURN(std::optional<AccountRec> account, ReadAccount(txn, rep_->dbs, id));
  if (!account || account->kind != AccountKind::kMember || account->program != program) {
    return std::optional<Balance>();
  }
  std::vector<LotEntry> lots;
  PL_RETURN_IF_ERROR(LoadLots(txn, rep_->dbs, id, &lots));
  const int64_t now = NowNs();
  Balance b;
  b.debits_posted = account->debits_posted;
  b.credits_posted = account->credits_posted;
  b.debits_pending = account->debits_pending;
  b.credits_pending = account->credits_pending;
  b.posted = account->credits_posted - account->debits_posted;
  b.pending = account->debits_pending;
  b.closed = account->closed;
  for (const LotEntry& lot : lots) {
    const LotInfo& l = lot.info;
    if (l.expires_at_ns <= now) {
      b.expired += l.remaining;
      continue;
    }
    if (now < l.locked_until_ns) {
      b.locked += l.remaining;
    } else {
      b.available += l.remaining;
    }
    if (l.expires_at_ns == kNever) continue;
    if (!b.expiring.empty() && b.expiring.back().expires_at_ns == l.expires_at_ns) {
      b.expiring.back().points += l.remaining;
    } else {
      b.expiring.push_back(ExpiringLot{l.expires_at_ns, l.remaining});
    }
  }
  return std::optional<Balance>(std::move(b));
}

absl::StatusOr<std::vector<HistoryEntry>> Ledger::GetHistory(std::string_view program,
                                                             std::string_view member,
                                                             uint32_t limit,
                                                             uint64_t before_seq) {
  std::vector<HistoryEntry> out;
  limit = std::min(limit, kHistoryLimitMax);
  if (limit == 0) return out;
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  const Id id = MemberAccountId(program, member);
  const std::string prefix(IdView(id));
  std::string start = prefix;
  ByteWriter(&start).BeU64(before_seq == 0 ? std::numeric_limits<uint64_t>::max() : before_seq);
  PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, rep_->dbs.history));
  PL_ASSIGN_OR_RETURN(bool found, cursor.SeekAtLeast(start));
  // Step to the entry just before `start` (keys are unique, so any match is >= start).
  PL_ASSIGN_OR_RETURN(found, found ? cursor.Prev() : cursor.Last());
  while (found && out.size() < limit && cursor.key().substr(0, 16) == prefix) {
    ByteReader kr(cursor.key().substr(16));
    ByteReader vr(cursor.value());
    HistoryEntry e;
    e.seq = kr.BeU64();
    e.points = vr.I64();
    if (!kr.done() || !vr.done()) return absl::DataLossError("history: malformed entry");
    PL_ASSIGN_OR_RETURN(std::optional<TxRecord> rec, ReadRecord(txn, rep_->dbs, e.seq, nullptr));
    if (!rec) return absl::DataLossError("history: names a missing transaction");
    e.timestamp_ns = rec->timestamp_ns;
    e.id = rec->tx.id;
    e.kind = rec->tx.kind;
    out.push_back(e);
    PL_ASSIGN_OR_RETURN(found, cursor.Prev());
  }
  return out;
}

absl::StatusOr<std::optional<TxRecord>> Ledger::GetTransaction(const Id& id) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, txn.Get(rep_->dbs.ids, IdView(id)));
  if (!v) return std::optional<TxRecord>();
  ByteReader r(*v);
  const uint64_t seq = r.U64();
  if (!r.done()) return absl::DataLossError("ids: malformed entry");
  return ReadRecord(txn, rep_->dbs, seq, nullptr);
}

absl::StatusOr<std::optional<TxRecord>> Ledger::GetTransactionBySeq(uint64_t seq) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  return ReadRecord(txn, rep_->dbs, seq, nullptr);
}

absl::StatusOr<ChainHead> Ledger::GetHead() {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  return ReadHead(txn, rep_->dbs);
}

absl::StatusOr<std::optional<ProgramInfo>> Ledger::GetProgram(std::string_view name) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, txn.Get(rep_->dbs.programs, name));
  if (!v) return std::optional<ProgramInfo>();
  ProgramRec p;
  if (!DecodeProgram(*v, &p)) return absl::DataLossError("programs: malformed entry");
  return std::optional<ProgramInfo>(ProgramInfo{std::string(name), p.currency,
                                                p.point_value_micros, p.expiry_days,
                                                p.lock_days, p.auto_open});
}

absl::StatusOr<std::vector<Transaction>> Ledger::CollectDue(int64_t as_of_ns, size_t limit) {
  std::vector<Transaction> due;
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  const Dbs& dbs = rep_->dbs;
  {
    PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, dbs.expiry));
    PL_ASSIGN_OR_RETURN(bool found, cursor.First());
    while (found && due.size() < limit) {
      ByteReader kr(cursor.key());
      const int64_t expires = kr.BeI64();
      if (expires > as_of_ns) break;
      Id account;
      LotInfo lot;
      if (!DecodeLotKey(cursor.key().substr(8), &account, &lot)) {
        return absl::DataLossError("expiry: malformed entry");
      }
      PL_ASSIGN_OR_RETURN(std::optional<AccountRec> a, ReadAccount(txn, dbs, account));
      if (!a) return absl::DataLossError("expiry: lot of a missing account");
      Transaction t;
      t.kind = Kind::kExpire;
      t.program = a->program;
      t.member = a->name;
      t.time_ns = lot.expires_at_ns;
      t.lot_seq = lot.source_seq;
      t.lot_index = lot.index;
      t.id = DeriveId(StrCat(t.program, "/expire/", IdToHex(account), "/", lot.source_seq,
                                   "/", lot.index));
      due.push_back(std::move(t));
      PL_ASSIGN_OR_RETURN(found, cursor.Next());
    }
  }
  PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, dbs.hold_deadlines));
  PL_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found && due.size() < limit) {
    ByteReader kr(cursor.key());
    const int64_t deadline = kr.BeI64();
    const Id hold_id = kr.IdBytes();
    if (!kr.done()) return absl::DataLossError("hold_deadlines: malformed entry");
    if (deadline > as_of_ns) break;
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, txn.Get(dbs.holds, IdView(hold_id)));
    HoldRec hold;
    if (!v || !DecodeHold(*v, &hold)) return absl::DataLossError("holds: missing or malformed");
    Transaction t;
    t.kind = Kind::kHoldTimeout;
    t.program = hold.program;
    t.ref = hold_id;
    t.id = DeriveId(StrCat(hold.program, "/hold-timeout/", IdToHex(hold_id)));
    due.push_back(std::move(t));
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return due;
}

absl::StatusOr<Statement> Ledger::SettlementStatement(std::string_view program,
                                                      std::string_view partner, int64_t from_ns,
                                                      int64_t to_ns) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> p, txn.Get(rep_->dbs.programs, program));
  if (!p) return absl::NotFoundError(StrCat("program_not_found: ", program));
  const Id id = PartnerAccountId(program, partner);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, txn.Get(rep_->dbs.partners, IdView(id)));
  if (!v) return absl::NotFoundError(StrCat("partner_not_found: ", partner));
  PL_ASSIGN_OR_RETURN(Statement s, ComputeStatement(txn, rep_->dbs, id, from_ns, to_ns));
  s.program = std::string(program);
  s.partner = std::string(partner);
  return s;
}

absl::Status Ledger::ForEachAccount(const std::function<void(const AccountInfo&)>& fn) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  PL_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, rep_->dbs.accounts));
  PL_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    AccountRec a;
    if (cursor.key().size() != 16 || !DecodeAccount(cursor.value(), &a)) {
      return absl::DataLossError("accounts: malformed entry");
    }
    AccountInfo info;
    ByteReader kr(cursor.key());
    info.id = kr.IdBytes();
    info.program = a.program;
    info.kind = std::string(AccountKindName(a.kind));
    info.name = a.name;
    info.closed = a.closed;
    info.debits_posted = a.debits_posted;
    info.credits_posted = a.credits_posted;
    info.debits_pending = a.debits_pending;
    info.credits_pending = a.credits_pending;
    fn(info);
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LotInfo>> Ledger::GetLots(const Id& account) {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  std::vector<LotEntry> lots;
  PL_RETURN_IF_ERROR(LoadLots(txn, rep_->dbs, account, &lots));
  std::vector<LotInfo> out;
  out.reserve(lots.size());
  for (const LotEntry& l : lots) out.push_back(l.info);
  return out;
}

absl::StatusOr<std::vector<Discrepancy>> Ledger::VerifyChain() {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  return VerifyChainIn(txn, rep_->dbs);
}

absl::StatusOr<std::vector<Discrepancy>> Ledger::TrialBalance() {
  PL_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::BeginRead(rep_->env));
  return TrialBalanceIn(txn, rep_->dbs);
}

}  // namespace pointledger::ledger
