// Finance reports (docs/finance.md): the liability of one program.
#include <limits>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "ledger/limits.h"
#include "ledger/store.h"

namespace pointledger::ledger {

namespace {

// Sums that must fit a uint64_t once complete. Every addend is bounded by
// kPointsMax, so 128 bits never overflow.
class Sum {
 public:
  void Add(uint64_t v) { total_ += v; }
  unsigned __int128 total() const { return total_; }

 private:
  unsigned __int128 total_ = 0;
};

absl::Status Narrow(const Sum& sum, std::string_view name, uint64_t* out) {
  if (sum.total() > std::numeric_limits<uint64_t>::max()) {
    return absl::OutOfRangeError(StrCat("overflow: liability: ", name, " exceeds 2^64 - 1"));
  }
  *out = static_cast<uint64_t>(sum.total());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RecordTimestamp(const View& view, const Dbs& dbs, uint64_t seq) {
  PL_ASSIGN_OR_RETURN(std::optional<TxRecord> rec, ReadRecord(view, dbs, seq));
  if (!rec) return absl::DataLossError(StrCat("log: record ", seq, " missing"));
  return rec->timestamp_ns;
}

}  // namespace

absl::StatusOr<uint64_t> SeqAtOrBefore(const View& view, const Dbs& dbs, int64_t ts) {
  PL_ASSIGN_OR_RETURN(const ChainHead head, ReadHead(view, dbs));
  // Timestamps strictly increase with seq: find the last seq with ts <= ts.
  uint64_t lo = 0, hi = head.seq;  // answer in [lo, hi]
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    PL_ASSIGN_OR_RETURN(const int64_t mid_ts, RecordTimestamp(view, dbs, mid));
    if (mid_ts <= ts) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

absl::StatusOr<Liability> LiabilityIn(const View& at, const View& log, const Dbs& dbs,
                                      std::string_view program, int64_t from_ns, int64_t to_ns,
                                      int64_t as_of_ns, uint64_t as_of_seq) {
  Liability out;
  out.program = std::string(program);
  out.from_ns = from_ns;
  out.to_ns = to_ns;
  out.as_of_ns = as_of_ns;
  out.as_of_seq = as_of_seq;
  // The program and its partners as they are now (`log`), not at as_of: a
  // report whose as_of precedes the program, or a partner, still has them,
  // and the period's movements must not depend on as_of.
  {
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, log.Get(dbs.programs, program));
    ProgramRec p;
    if (!v) return absl::NotFoundError(StrCat("program_not_found: ", program));
    if (!DecodeProgram(*v, &p)) return absl::DataLossError("programs: malformed entry");
    out.currency = p.currency;
    out.point_value_micros = p.point_value_micros;
  }

  std::map<std::string, PartnerMovement, std::less<>> partners;
  {
    PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(log, dbs.partners));
    PL_ASSIGN_OR_RETURN(bool more, cursor.First());
    while (more) {
      PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, log.Get(dbs.accounts, cursor.key()));
      AccountRec a;
      if (!v || !DecodeAccount(*v, &a)) {
        return absl::DataLossError("partners: an entry without its account (run audit verify)");
      }
      if (a.program == program && a.kind == AccountKind::kPartner) {
        partners[a.name].partner = a.name;
      }
      PL_ASSIGN_OR_RETURN(more, cursor.Next());
    }
  }

  // Balances and lots at as_of.
  Sum outstanding, unswept, in30, in60, in90;
  const int64_t day = kNanosPerDay;
  // INT64_MAX marks a lot that never expires (ledger.h): not a date, so
  // never "expiring", however near the end of time as_of is.
  auto within = [&](int64_t expires, int64_t days) {
    return expires != std::numeric_limits<int64_t>::max() && expires > as_of_ns &&
           expires - as_of_ns <= days * day;
  };
  PL_ASSIGN_OR_RETURN(ViewCursor accounts, ViewCursor::Open(at, dbs.accounts));
  PL_ASSIGN_OR_RETURN(bool found, accounts.First());
  std::vector<LotEntry> lots;
  while (found) {
    AccountRec a;
    if (accounts.key().size() != 16 || !DecodeAccount(accounts.value(), &a)) {
      return absl::DataLossError("accounts: malformed entry (run audit verify)");
    }
    if (a.program == program && a.kind == AccountKind::kMember) {
      if (a.credits_posted < a.debits_posted) {
        return absl::DataLossError(StrCat("accounts: member ", a.name, " is below zero (run audit verify)"));
      }
      outstanding.Add(a.credits_posted - a.debits_posted);
      Id id;
      std::memcpy(id.data(), accounts.key().data(), 16);
      PL_RETURN_IF_ERROR(LoadLots(at, dbs, id, &lots));
      for (const LotEntry& lot : lots) {
        const int64_t expires = lot.info.expires_at_ns;
        const uint64_t n = lot.info.remaining;
        if (expires <= as_of_ns && expires != std::numeric_limits<int64_t>::max()) unswept.Add(n);
        if (within(expires, 30)) in30.Add(n);
        if (within(expires, 60)) in60.Add(n);
        if (within(expires, 90)) in90.Add(n);
      }
    }
    PL_ASSIGN_OR_RETURN(found, accounts.Next());
  }
  PL_RETURN_IF_ERROR(Narrow(outstanding, "outstanding_points", &out.outstanding_points));
  PL_RETURN_IF_ERROR(Narrow(unswept, "expired_unswept_points", &out.expired_unswept_points));
  PL_RETURN_IF_ERROR(Narrow(in30, "expiring_30d_points", &out.expiring_30d_points));
  PL_RETURN_IF_ERROR(Narrow(in60, "expiring_60d_points", &out.expiring_60d_points));
  PL_RETURN_IF_ERROR(Narrow(in90, "expiring_90d_points", &out.expiring_90d_points));
  const __int128 value = static_cast<__int128>(out.outstanding_points) * out.point_value_micros;
  if (value > std::numeric_limits<int64_t>::max()) {
    return absl::OutOfRangeError("overflow: liability: outstanding_value_micros exceeds 2^63 - 1");
  }
  out.outstanding_value_micros = static_cast<int64_t>(value);

  // Movements in [from, to), from the log.
  absl::flat_hash_set<Id> system;
  for (std::string_view kind :
       {"issuance", "redemption", "referral", "adjustment", "breakage", "holds"}) {
    system.insert(SystemAccountId(program, kind));
  }
  // Partner clearing accounts as they are now, not at as_of: a reversal in
  // [from, to) may involve a partner created after as_of (and the figures
  // of a period must not depend on as_of). Other programs' partners are
  // harmless here: a posting of this program never touches them.
  PL_ASSIGN_OR_RETURN(ViewCursor partner_cursor, ViewCursor::Open(log, dbs.partners));
  PL_ASSIGN_OR_RETURN(found, partner_cursor.First());
  while (found) {
    if (partner_cursor.key().size() != 16) return absl::DataLossError("partners: malformed key");
    Id id;
    std::memcpy(id.data(), partner_cursor.key().data(), 16);
    system.insert(id);
    PL_ASSIGN_OR_RETURN(found, partner_cursor.Next());
  }
  Sum issued, redeemed, reversed, reversed_issued, reversed_redeemed, expired, forfeited, up, down;
  std::map<std::string, std::pair<Sum, Sum>, std::less<>> at_partner;
  // The last seq before from (from_ns - 1 would overflow at INT64_MIN).
  uint64_t seq = 0;
  if (from_ns != std::numeric_limits<int64_t>::min()) {
    PL_ASSIGN_OR_RETURN(seq, SeqAtOrBefore(log, dbs, from_ns - 1));
  }
  PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(log, dbs.log));
  PL_ASSIGN_OR_RETURN(found, cursor.SeekAtLeast(BeU64Key(seq + 1)));
  TxRecord rec;
  while (found) {
    const std::string_view value_bytes = cursor.value();
    if (value_bytes.size() < 32 || !DecodeRecord(value_bytes.substr(32), &rec)) {
      return absl::DataLossError("log: a record does not parse (run audit verify)");
    }
    if (rec.timestamp_ns >= to_ns) break;
    if (rec.tx.program == program && rec.result.code == Code::kOk) {
      const Transaction& tx = rec.tx;
      switch (tx.kind) {
        case Kind::kEarn:
          issued.Add(tx.points);
          if (!tx.partner.empty()) at_partner[tx.partner].first.Add(tx.points);
          break;
        case Kind::kReferral:
          issued.Add(tx.points);
          issued.Add(tx.points2);
          break;
        case Kind::kAdjust:
          if (tx.delta > 0) {
            issued.Add(static_cast<uint64_t>(tx.delta));
            up.Add(static_cast<uint64_t>(tx.delta));
          }
          if (tx.delta < 0) down.Add(0 - static_cast<uint64_t>(tx.delta));
          break;
        case Kind::kRedeem:
          redeemed.Add(tx.points);
          if (!tx.partner.empty()) at_partner[tx.partner].second.Add(tx.points);
          break;
        case Kind::kCapture:
          redeemed.Add(rec.result.points);
          break;
        case Kind::kExpire:
          expired.Add(rec.result.points);
          break;
        case Kind::kAccountClose:
          forfeited.Add(rec.result.points);
          break;
        case Kind::kReverse: {
          reversed.Add(rec.result.points);
          // Which way: points moved from a system account to a member were
          // given back; the other way, taken back; a reversed transfer
          // moves them between members and is neither.
          for (const Posting& p : rec.postings) {
            if (p.type != PostingType::kPosted) continue;
            const bool from_system = system.contains(p.debit);
            const bool to_system = system.contains(p.credit);
            if (from_system && !to_system) reversed_redeemed.Add(p.points);
            if (to_system && !from_system) reversed_issued.Add(p.points);
          }
          break;
        }
        default:
          break;
      }
    }
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  PL_RETURN_IF_ERROR(Narrow(issued, "issued_points", &out.issued_points));
  PL_RETURN_IF_ERROR(Narrow(redeemed, "redeemed_points", &out.redeemed_points));
  PL_RETURN_IF_ERROR(Narrow(reversed, "reversed_points", &out.reversed_points));
  PL_RETURN_IF_ERROR(Narrow(reversed_issued, "reversed_issued_points", &out.reversed_issued_points));
  PL_RETURN_IF_ERROR(
      Narrow(reversed_redeemed, "reversed_redeemed_points", &out.reversed_redeemed_points));
  PL_RETURN_IF_ERROR(Narrow(expired, "expired_points", &out.expired_points));
  PL_RETURN_IF_ERROR(Narrow(forfeited, "forfeited_points", &out.forfeited_points));
  PL_RETURN_IF_ERROR(Narrow(up, "adjusted_up_points", &out.adjusted_up_points));
  PL_RETURN_IF_ERROR(Narrow(down, "adjusted_down_points", &out.adjusted_down_points));
  for (auto& [name, sums] : at_partner) {
    PartnerMovement& m = partners[name];
    m.partner = name;
    PL_RETURN_IF_ERROR(Narrow(sums.first, "partner earned_points", &m.earned_points));
    PL_RETURN_IF_ERROR(Narrow(sums.second, "partner redeemed_points", &m.redeemed_points));
  }
  for (auto& [name, m] : partners) out.partners.push_back(std::move(m));
  const long double denominator =
      static_cast<long double>(out.expired_points) + static_cast<long double>(out.redeemed_points);
  out.breakage_rate =
      denominator == 0 ? 0.0 : static_cast<double>(out.expired_points / denominator);
  return out;
}

}  // namespace pointledger::ledger
