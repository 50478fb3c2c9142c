// Transactions for the net tests.
#ifndef POINTLEDGER_TESTS_NET_TEST_TX_H_
#define POINTLEDGER_TESTS_NET_TEST_TX_H_

#include <string>

#include "ledger/ledger.h"
#include "net/wire.h"

namespace pointledger::net::testing {

// An earn on the wire whose every string field is `text` (one string,
// shared: the FlatBuffers Verifier allows it).
inline flatbuffers::Offset<wire::Transaction> EarnWithEveryStringField(
    flatbuffers::FlatBufferBuilder& fbb, const std::string& key, flatbuffers::Offset<flatbuffers::String> text) {
  const wire::Id128 id = IdToWire(ledger::TxIdFromKey("acme", key));
  wire::TransactionBuilder b(fbb);
  b.add_id(&id);
  b.add_kind(wire::Kind::earn);
  b.add_points(1);
  for (auto add : {&wire::TransactionBuilder::add_program, &wire::TransactionBuilder::add_member,
                   &wire::TransactionBuilder::add_member2, &wire::TransactionBuilder::add_partner,
                   &wire::TransactionBuilder::add_currency, &wire::TransactionBuilder::add_order_ref,
                   &wire::TransactionBuilder::add_reason, &wire::TransactionBuilder::add_metadata}) {
    (b.*add)(text);
  }
  return b.Finish();
}

inline ledger::Transaction ProgramCreate(const std::string& program) {
  ledger::Transaction t;
  t.kind = ledger::Kind::kProgramCreate;
  t.id = ledger::TxIdFromKey(program, "program-create");
  t.program = program;
  t.currency = "USD";
  t.point_value_micros = 5000;
  t.expiry_days = 365;
  return t;
}

inline ledger::Transaction Earn(const std::string& program, const std::string& member,
                                uint64_t points, const std::string& key) {
  ledger::Transaction t;
  t.kind = ledger::Kind::kEarn;
  t.id = ledger::TxIdFromKey(program, key);
  t.program = program;
  t.member = member;
  t.points = points;
  return t;
}

inline ledger::Transaction Redeem(const std::string& program, const std::string& member,
                                  uint64_t points, const std::string& key) {
  ledger::Transaction t = Earn(program, member, points, key);
  t.kind = ledger::Kind::kRedeem;
  return t;
}

}  // namespace pointledger::net::testing

#endif  // POINTLEDGER_TESTS_NET_TEST_TX_H_
