// The one place where wire (FlatBuffers, schema/*.fbs) and ledger types are
// converted into each other, and where frames are verified. Nothing reads a
// frame before VerifyRequestFrame / VerifyResponseFrame has passed it.
#ifndef POINTLEDGER_NET_WIRE_H_
#define POINTLEDGER_NET_WIRE_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "ledger/ledger.h"
#include "pointledger_generated.h"
#include "response_generated.h"

namespace pointledger::net {

// ---------------------------------------------------------------------------
// Frames: a 4-byte little-endian length, then that many bytes of a
// FlatBuffers buffer with a file identifier (a FlatBuffers size-prefixed
// buffer is exactly this).

// A FlatBuffers string as a view; empty when the field is absent.
inline std::string_view View(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->data(), s->size());
}

inline uint32_t DecodeFrameLength(const uint8_t* header) {
  return uint32_t{header[0]} | uint32_t{header[1]} << 8 | uint32_t{header[2]} << 16 |
         uint32_t{header[3]} << 24;
}

// `frame` is the whole frame, length prefix included, at an 8-byte aligned
// address. InvalidArgument ("malformed_request: ...") unless it is a
// Request (or Response) that passes the FlatBuffers Verifier with our
// explicit limits and whose union tag is one this build knows.
absl::StatusOr<const wire::Request*> VerifyRequestFrame(std::span<const uint8_t> frame);
absl::StatusOr<const wire::Response*> VerifyResponseFrame(std::span<const uint8_t> frame);

// ---------------------------------------------------------------------------
// Requests (client -> server).

// Fills *out from a verified wire transaction, resetting every field (out
// may be a reused object). InvalidArgument for a missing or unknown kind.
absl::Status TransactionFromWire(const wire::Transaction& in, ledger::Transaction* out);

// Whether `text` is valid UTF-8 (SPEC §1: keys are UTF-8). The CLI checks
// what people type; the server takes the bytes it is sent, so that
// members and ids decided with other bytes stay reachable (docs/cli.md).
bool IsValidUtf8(std::string_view text);
flatbuffers::Offset<wire::Transaction> TransactionToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                         const ledger::Transaction& tx);

// ---------------------------------------------------------------------------
// Responses (server -> client). The *FromWire functions check enum ranges
// and sizes, since a client must not trust a server's bytes either.

flatbuffers::Offset<wire::Result> ResultToWire(flatbuffers::FlatBufferBuilder& fbb,
                                               const ledger::Result& r);
absl::Status ResultFromWire(const wire::Result& in, ledger::Result* out);

flatbuffers::Offset<wire::Balance> BalanceToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                 std::string_view program,
                                                 std::string_view member,
                                                 const ledger::Balance& b);
ledger::Balance BalanceFromWire(const wire::Balance& in);

flatbuffers::Offset<wire::HistoryEntry> HistoryEntryToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                           const ledger::HistoryEntry& e);
absl::StatusOr<ledger::HistoryEntry> HistoryEntryFromWire(const wire::HistoryEntry& in);

flatbuffers::Offset<wire::TxRecord> TxRecordToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                   const ledger::TxRecord& rec);
absl::StatusOr<ledger::TxRecord> TxRecordFromWire(const wire::TxRecord& in);

flatbuffers::Offset<wire::Statement> StatementToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                     const ledger::Statement& s);
ledger::Statement StatementFromWire(const wire::Statement& in);

flatbuffers::Offset<wire::Head> HeadToWire(flatbuffers::FlatBufferBuilder& fbb,
                                           const ledger::ChainHead& head);
absl::StatusOr<ledger::ChainHead> HeadFromWire(const wire::Head& in);

// Finance reports. Discrepancy lists are capped at ledger::kAuditListedMax.
flatbuffers::Offset<wire::Liability> LiabilityToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                     const ledger::Liability& l);
ledger::Liability LiabilityFromWire(const wire::Liability& in);
flatbuffers::Offset<wire::Discrepancies> AuditToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                     const ledger::AuditReport& report);
absl::StatusOr<ledger::AuditReport> AuditFromWire(const wire::Discrepancies& in);

// Ids.
inline wire::Id128 IdToWire(const ledger::Id& id) {
  return wire::Id128(flatbuffers::span<const uint8_t, 16>(id.data(), 16));
}
inline ledger::Id IdFromWire(const wire::Id128* id) {
  ledger::Id out{};
  if (id != nullptr) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = id->b()->Get(static_cast<flatbuffers::uoffset_t>(i));
  }
  return out;
}

// The SPEC §5 word for a connection-level error ("server_busy" ...).
std::string_view ConnErrorName(wire::ConnError error);

// Finishes a Response frame in fbb (size-prefixed, identifier "PLRS").
void FinishResponse(flatbuffers::FlatBufferBuilder& fbb, uint64_t request_id,
                    wire::ConnError error, std::string_view message,
                    wire::ResponseBody body_type, flatbuffers::Offset<void> body);

// Finishes a Request frame in fbb (size-prefixed, identifier "PLRQ").
void FinishRequest(flatbuffers::FlatBufferBuilder& fbb, uint64_t request_id,
                   wire::RequestBody body_type, flatbuffers::Offset<void> body);

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_WIRE_H_
