// Audit (SPEC §7): the hash chain and the trial balance, each over one read
// snapshot, so they are safe beside a running writer.
#include <openssl/sha.h>

#include <algorithm>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "ledger/sha256.h"
#include "ledger/store.h"

namespace pointledger::ledger {

namespace {

std::string HashHex(const uint8_t* hash) {
  Id a, b;
  std::memcpy(a.data(), hash, 16);
  std::memcpy(b.data(), hash + 16, 16);
  return IdToHex(a) + IdToHex(b);
}

struct Totals {
  uint64_t debits_posted = 0;
  uint64_t credits_posted = 0;
  uint64_t debits_pending = 0;
  uint64_t credits_pending = 0;
  bool operator==(const Totals&) const = default;
};

std::string TotalsText(const Totals& t) {
  return StrCat("debits_posted=", t.debits_posted, " credits_posted=", t.credits_posted,
                      " debits_pending=", t.debits_pending,
                      " credits_pending=", t.credits_pending);
}

// Replays every posting of every committed transaction. Wrapping sums are
// fine here: a stored total that overflowed would differ anyway.
absl::Status ReplayPostings(const View& txn, const Dbs& dbs,
                            absl::flat_hash_map<Id, Totals>* replay) {
  PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(txn, dbs.log));
  PL_ASSIGN_OR_RETURN(bool found, cursor.First());
  TxRecord rec;
  while (found) {
    if (cursor.value().size() < 32 || !DecodeRecord(cursor.value().substr(32), &rec)) {
      return absl::DataLossError("log: a record does not parse (run audit verify)");
    }
    for (const Posting& p : rec.postings) {
      // Two separate lookups: a second insert may rehash and move the first.
      switch (p.type) {
        case PostingType::kPosted:
          (*replay)[p.debit].debits_posted += p.points;
          (*replay)[p.credit].credits_posted += p.points;
          break;
        case PostingType::kPending:
          (*replay)[p.debit].debits_pending += p.points;
          (*replay)[p.credit].credits_pending += p.points;
          break;
        case PostingType::kVoid:
          (*replay)[p.debit].debits_pending -= p.points;
          (*replay)[p.credit].credits_pending -= p.points;
          break;
      }
    }
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

// Σ pending holds per member, from the holds table: the points in their
// pieces (out of the lots) and their amounts (what capture, release and
// close will void from debits_pending). A healthy hold has both equal.
struct Held {
  uint64_t pieces = 0;
  uint64_t amount = 0;
};
absl::Status PendingHolds(const View& txn, const Dbs& dbs, absl::flat_hash_map<Id, Held>* held) {
  PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(txn, dbs.holds));
  PL_ASSIGN_OR_RETURN(bool found, cursor.First());
  HoldRec hold;
  while (found) {
    if (!DecodeHold(cursor.value(), &hold)) return absl::DataLossError("holds: malformed entry");
    if (hold.state == HoldState::kPending) {
      Held& h = (*held)[hold.member];
      for (const Piece& p : hold.pieces) h.pieces += p.points;
      h.amount += hold.amount;
    }
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Discrepancy>> VerifyChainIn(const View& txn, const Dbs& dbs,
                                                       const Progress& progress) {
  std::vector<Discrepancy> out;
  uint64_t total = 0;
  if (progress) {
    PL_ASSIGN_OR_RETURN(ViewCursor last, ViewCursor::Open(txn, dbs.log));
    PL_ASSIGN_OR_RETURN(bool any, last.Last());
    if (any) total = ByteReader(last.key()).BeU64();
  }
  PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(txn, dbs.log));
  PL_ASSIGN_OR_RETURN(bool found, cursor.First());
  uint8_t prev[SHA256_DIGEST_LENGTH] = {};
  uint8_t digest[SHA256_DIGEST_LENGTH];
  TxRecord rec;
  uint64_t expect_seq = 1;
  int64_t prev_ts = 0;
  while (found) {
    const std::string_view key = cursor.key();
    const std::string_view value = cursor.value();
    ByteReader kr(key);
    const uint64_t seq = kr.BeU64();
    auto bad = [&](std::string what, std::string expected, std::string found_text) {
      out.push_back({"chain", StrCat("seq ", seq), StrCat(what, ": ", expected),
                     std::move(found_text), seq});
      return out;
    };
    if (!kr.done() || seq != expect_seq) {
      return bad("sequence", StrCat(expect_seq), StrCat(seq));
    }
    if (value.size() < 32) return bad("record", "hash and bytes", "too short");
    const Digest d =
        Sha256({std::string_view(reinterpret_cast<const char*>(prev), sizeof(prev)), value.substr(32)});
    std::memcpy(digest, d.data(), sizeof(digest));
    if (std::memcmp(digest, value.data(), 32) != 0) {
      return bad("hash", HashHex(digest), HashHex(reinterpret_cast<const uint8_t*>(value.data())));
    }
    if (!DecodeRecord(value.substr(32), &rec) || rec.seq != seq) {
      return bad("record", "a well-formed record", "does not parse");
    }
    if (rec.timestamp_ns <= prev_ts) {
      return bad("timestamp", StrCat("> ", prev_ts), StrCat(rec.timestamp_ns));
    }
    prev_ts = rec.timestamp_ns;
    std::memcpy(prev, digest, sizeof(prev));
    if (progress && expect_seq % 4096 == 0) progress("chain", expect_seq, total);
    ++expect_seq;
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  if (progress) progress("chain", expect_seq - 1, total);
  return out;
}

absl::StatusOr<std::vector<Discrepancy>> TrialBalanceIn(const View& txn, const Dbs& dbs) {
  std::vector<Discrepancy> out;
  absl::flat_hash_map<Id, Totals> replay;
  PL_RETURN_IF_ERROR(ReplayPostings(txn, dbs, &replay));
  absl::flat_hash_map<Id, Held> held;
  PL_RETURN_IF_ERROR(PendingHolds(txn, dbs, &held));

  // Per program: Σ credits - Σ debits, posted and pending (ordered by name).
  std::map<std::string, std::pair<__int128, __int128>> sums;
  size_t seen = 0;
  PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(txn, dbs.accounts));
  PL_ASSIGN_OR_RETURN(bool found, cursor.First());
  std::vector<LotEntry> lots;
  while (found) {
    AccountRec a;
    if (cursor.key().size() != 16 || !DecodeAccount(cursor.value(), &a)) {
      out.push_back({"balance", IdToHex(Id{}), "a well-formed account", "malformed entry"});
      PL_ASSIGN_OR_RETURN(found, cursor.Next());
      continue;
    }
    Id id;
    std::memcpy(id.data(), cursor.key().data(), 16);
    const std::string where = StrCat(a.program, "/", AccountKindName(a.kind),
                                           a.name.empty() ? "" : "/", a.name, " ", IdToHex(id));
    const Totals stored{a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending};
    auto it = replay.find(id);
    const Totals expected = it == replay.end() ? Totals{} : it->second;
    if (it != replay.end()) ++seen;
    if (!(stored == expected)) {
      out.push_back({"balance", where, TotalsText(expected), TotalsText(stored)});
    }
    auto& [posted_sum, pending_sum] = sums[a.program];
    posted_sum += static_cast<__int128>(a.credits_posted) - a.debits_posted;
    pending_sum += static_cast<__int128>(a.credits_pending) - a.debits_pending;

    if (a.kind == AccountKind::kMember) {
      PL_RETURN_IF_ERROR(LoadLots(txn, dbs, id, &lots));
      __int128 in_lots = 0;
      for (const LotEntry& l : lots) in_lots += l.info.remaining;
      const Held holds = held.contains(id) ? held[id] : Held{};
      const __int128 posted = static_cast<__int128>(a.credits_posted) - a.debits_posted;
      if (in_lots + holds.pieces != posted) {
        out.push_back({"lot", where, StrCat("lots + held = posted = ", int64_t(posted)),
                       StrCat("lots ", int64_t(in_lots), " + held ", holds.pieces)});
      }
      if (holds.pieces != a.debits_pending || holds.amount != a.debits_pending) {
        out.push_back({"hold", where,
                       StrCat("debits_pending = its pending holds (pieces ", holds.pieces,
                              ", amounts ", holds.amount, ")"),
                       StrCat("debits_pending = ", a.debits_pending)});
      }
    }
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  for (const auto& [program, s] : sums) {
    if (s.first != 0 || s.second != 0) {
      out.push_back({"program_sum", program, "0",
                     StrCat("posted ", int64_t(s.first), " pending ", int64_t(s.second))});
    }
  }
  if (seen != replay.size()) {
    out.push_back({"balance", "accounts", StrCat(replay.size(), " accounts with postings"),
                   StrCat(seen, " stored")});
  }
  return out;
}

namespace {

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes.substr(0, 64)) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  if (bytes.size() > 64) out += "...";
  return out;
}

// What an audit calls a difference in table t.
std::string_view WhatDiffers(const Dbs& dbs, Table t) {
  if (t == dbs.accounts) return "balance";
  if (t == dbs.lots || t == dbs.expiry) return "lot";
  if (t == dbs.holds || t == dbs.hold_deadlines || t == dbs.member_holds) return "hold";
  return TableName(t);
}

std::string DescribeKey(const Dbs& dbs, Table t, std::string_view key, std::string_view value) {
  if (t == dbs.accounts && key.size() == 16) {
    AccountRec a;
    Id id;
    std::memcpy(id.data(), key.data(), 16);
    if (DecodeAccount(value, &a)) {
      return StrCat(a.program, "/", AccountKindName(a.kind), a.name.empty() ? "" : "/", a.name, " ",
                    IdToHex(id));
    }
    return StrCat("account ", IdToHex(id));
  }
  if (t == dbs.lots) {
    Id account;
    LotInfo lot;
    if (DecodeLotKey(key, &account, &lot)) {
      return StrCat("account ", IdToHex(account), " lot of seq ", lot.source_seq, "/", lot.index,
                    " expiring at ", lot.expires_at_ns);
    }
  }
  return StrCat(TableName(t), " key ", Hex(key));
}

std::string DescribeValue(const Dbs& dbs, Table t, std::string_view value) {
  if (t == dbs.accounts) {
    AccountRec a;
    if (DecodeAccount(value, &a)) {
      return StrCat(TotalsText({a.debits_posted, a.credits_posted, a.debits_pending,
                                a.credits_pending}),
                    a.closed ? " closed" : "");
    }
  }
  if (t == dbs.lots) {
    ByteReader r(value);
    const uint64_t remaining = r.U64();
    const int64_t locked_until = r.I64();
    if (r.done()) return StrCat("remaining=", remaining, " locked_until=", locked_until);
  }
  return Hex(value);
}

}  // namespace

absl::Status CompareState(const View& rebuilt, const View& stored,
                          const std::function<void(Discrepancy)>& add,
                          const Progress& progress) {
  const Dbs dbs;
  for (Table t = 0; t < kTableCount; ++t) {
    if (IsLogTable(t)) continue;
    PL_ASSIGN_OR_RETURN(ViewCursor a, ViewCursor::Open(rebuilt, t));
    PL_ASSIGN_OR_RETURN(ViewCursor b, ViewCursor::Open(stored, t));
    PL_ASSIGN_OR_RETURN(bool has_a, a.First());
    PL_ASSIGN_OR_RETURN(bool has_b, b.First());
    const std::string what(WhatDiffers(dbs, t));
    while (has_a || has_b) {
      const int order = !has_b ? -1 : !has_a ? 1 : a.key().compare(b.key());
      if (order < 0) {
        add({what, DescribeKey(dbs, t, a.key(), a.value()), DescribeValue(dbs, t, a.value()),
             "absent"});
        PL_ASSIGN_OR_RETURN(has_a, a.Next());
      } else if (order > 0) {
        add({what, DescribeKey(dbs, t, b.key(), b.value()), "absent",
             DescribeValue(dbs, t, b.value())});
        PL_ASSIGN_OR_RETURN(has_b, b.Next());
      } else {
        if (a.value() != b.value()) {
          add({what, DescribeKey(dbs, t, a.key(), a.value()), DescribeValue(dbs, t, a.value()),
               DescribeValue(dbs, t, b.value())});
        }
        PL_ASSIGN_OR_RETURN(has_a, a.Next());
        PL_ASSIGN_OR_RETURN(has_b, b.Next());
      }
    }
    if (progress) progress("compare", t - 1, kTableCount - 2);
  }
  return absl::OkStatus();
}

}  // namespace pointledger::ledger
