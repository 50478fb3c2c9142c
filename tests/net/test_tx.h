// Transactions for the net tests.
#ifndef POINTLEDGER_TESTS_NET_TEST_TX_H_
#define POINTLEDGER_TESTS_NET_TEST_TX_H_

#include <string>

#include "ledger/ledger.h"

namespace pointledger::net::testing {

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
