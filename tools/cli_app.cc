#include "tools/cli_app.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cctype>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "bench/loadgen.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/client.h"
#include "net/limits.h"
#include "tools/cli_fields.h"
#include "tools/cli_finance.h"
#include "tools/cli_ops.h"
#include "tools/cli_format.h"
#include "tools/cli_post.h"
#include "tools/cli_read.h"
#include "tools/cli_time.h"

namespace pointledger::tools {

namespace {

// `source` names where the path came from, for the message.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path, std::string_view source) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(StrCat(source, " ", path, " is a directory, not a key file"));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(StrCat(source, " ", path, ": cannot read it (", std::strerror(errno), ")"));
  }
  // The first line, without trailing white space: as pointledgerd reads
  // its admin.key (net/config.cc).
  std::string key;
  std::getline(in, key);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) return absl::InvalidArgumentError(StrCat(source, " ", path, " is empty"));
  return key;
}

// CLI11 reads "-1" into an unsigned option as 2^64 - 1: a negative seq,
// limit or count would silently mean "everything".
CLI::Validator NonNegative() {
  return CLI::Validator(
      [](std::string& text) {
        return text.starts_with('-') ? std::string("must be a non-negative integer") : std::string();
      },
      "", "non-negative");
}

// 0 where 0 would mean "the default" (a --count of 0 ran for 10 s). The
// value is converted as CLI11 converts it, so "0x0" and "00" are 0 too.
CLI::Validator NotZero(std::string instead) {
  return CLI::Validator(
      [instead](std::string& text) {
        uint64_t v = 1;
        return CLI::detail::lexical_cast(text, v) && v == 0 ? StrCat("must be at least 1 (", instead, ")")
                                                            : std::string();
      },
      "", "not-zero");
}

}  // namespace

absl::StatusOr<std::string> ResolveKey(const Globals& g) {
  // Given but empty (an unset shell variable, a failed lookup) is an error,
  // never "no key": the search below would go on to ./var/admin.key, and a
  // command meant for a point-of-sale key ran with the admin key (found in
  // review, session 29).
  if (g.key && g.key->empty()) return absl::InvalidArgumentError("--key is empty (an unset shell variable?)");
  if (g.key_file && g.key_file->empty()) {
    return absl::InvalidArgumentError("--key-file is empty (an unset shell variable?)");
  }
  if (g.key && g.key_file) return absl::InvalidArgumentError("give --key or --key-file, not both");
  if (g.key) return *g.key;
  if (g.key_file) return ReadKeyFile(*g.key_file, "--key-file");
  // An empty variable counts as unset, as the shell's ${VAR:-default} does
  // (docs/cli.md); a flag is typed, so an empty one is a mistake.
  if (const char* env = std::getenv("POINTLEDGER_KEY"); env != nullptr && *env != '\0') return std::string(env);
  if (const char* env = std::getenv("POINTLEDGER_KEY_FILE"); env != nullptr && *env != '\0') {
    return ReadKeyFile(env, "$POINTLEDGER_KEY_FILE");
  }
  std::error_code ec;
  if (std::filesystem::exists("var/admin.key", ec)) return ReadKeyFile("var/admin.key", "the default key file");
  return std::string();
}

namespace {

// net::Client as a Reader.
class ClientReader final : public Reader {
 public:
  explicit ClientReader(std::unique_ptr<net::Client> client) : client_(std::move(client)) {}
  absl::StatusOr<std::optional<ledger::Balance>> GetBalance(const std::string& program,
                                                            const std::string& member) override {
    return client_->GetBalance(program, member);
  }
  absl::StatusOr<std::vector<ledger::HistoryEntry>> GetHistory(const std::string& program,
                                                               const std::string& member, uint32_t limit,
                                                               uint64_t before_seq) override {
    return client_->GetHistory(program, member, limit, before_seq);
  }
  absl::StatusOr<std::optional<ledger::TxRecord>> GetTransaction(const std::string& program,
                                                                 const ledger::Id& id) override {
    return client_->GetTransaction(program, id);
  }
  absl::StatusOr<ledger::ChainHead> GetHead() override { return client_->GetHead(); }
  absl::StatusOr<ledger::Statement> SettlementStatement(const std::string& program, const std::string& partner,
                                                        int64_t from_ns, int64_t to_ns) override {
    return client_->SettlementStatement(program, partner, from_ns, to_ns);
  }
  // A balance answer folds program_not_found into "not found"; a history
  // read of no member tells the two apart (found by a conformance test,
  // session 33: through the server, `balance` of an unknown program could
  // not say "no program", as --data does). nullopt if the key may not read
  // the program, or the read fails.
  std::optional<bool> ProgramExists(const std::string& program) override {
    absl::StatusOr<std::vector<ledger::HistoryEntry>> h = client_->GetHistory(program, "", 1, 0);
    if (h.ok()) return true;
    if (absl::IsNotFound(h.status()) && h.status().message() == "program_not_found") return false;
    return std::nullopt;
  }
  absl::StatusOr<ledger::RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                                 const std::string& program) override {
    return client_->GetRecords(from_seq, limit, program);
  }
  absl::StatusOr<ledger::Liability> LiabilityReport(const std::string& program, int64_t from_ns,
                                                    int64_t to_ns, int64_t as_of_ns) override {
    return client_->LiabilityReport(program, from_ns, to_ns, as_of_ns);
  }
  absl::StatusOr<ledger::AuditReport> TrialBalance() override { return client_->TrialBalance(); }
  absl::StatusOr<ledger::AuditReport> Audit(const ledger::Progress&) override {
    return client_->Audit();
  }

 private:
  std::unique_ptr<net::Client> client_;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A transaction command built from a KindSpec: its flags' storage.
struct KindCommand {
  const KindSpec* spec = nullptr;
  std::map<std::string, std::string> text;
  std::map<std::string, bool> flags;
  std::vector<std::pair<const FieldSpec*, CLI::Option*>> options;
};

struct ReadOptions {
  std::string program, member, partner, id, hex, from, to, as_of;
  uint32_t limit = 50;
  uint64_t before = 0;
};

struct FinanceOptions {
  std::string expect_head;
  uint64_t from_seq = 1;
  uint64_t to_seq = 0;
  std::string format;
  ExternalOptions external;
};

struct LoadFlags {
  int connections = 8;
  int batch = 100;
  int in_flight = 4;
  int threads = 0;
  std::string duration;
  uint64_t count = 0;
  std::string mix = "earn=60,redeem=30,referral=10";
  uint64_t members = 1'000'000;
  double rate = 0;
  std::string program = "load";
  uint64_t seed = 0;
  std::string ack_log;
};

constexpr char kGlobalsFooter[] =
    "Global options, before or after the command: --server HOST:PORT, --key KEY,\n"
    "--key-file FILE, --json, --data DIR (read-only commands), --tls, --tls-ca FILE,\n"
    "--timeout SECONDS.";

constexpr char kReadOnlyCommands[] =
    "balance, history, tx get, settle statement, reconcile, audit, backup";

class Cli {
 public:
  Cli();
  int Run(int argc, char** argv);

 private:
  CLI::App* Group(const std::string& name, const std::string& description);
  CLI::App* AddCommand(const std::string& path, const std::string& summary, const std::string& example,
                       std::function<int()> run);
  void AddGlobals();
  void AddKindCommand(const KindSpec& spec);
  void AddReadCommands();
  void AddFinanceCommands();
  void AddOpsCommands();
  void AddPostCommands();
  void AddLoad();
  void AddRebuildMemoryOption(CLI::App* command);
  // Whether --memory-rows was given without --data (then prints why that
  // is refused).
  bool RefusedRebuildBound();

  Output Out() const { return Output{stdout, stderr, g_.json, UsageHint()}; }
  absl::StatusOr<net::ClientOptions> ClientOptions();
  // Connects; on failure prints why and sets *exit_code.
  std::unique_ptr<net::Client> Connect(int* exit_code);
  int ConnectFailed(const absl::Status& s);
  // `what` the command does instead of reading a directory.
  int RefuseData(const char* command, const char* what = "posts through the server");
  // A clearer message than CLI11's for an unknown command or a value that is
  // not a number; nullopt: CLI11's own.
  std::optional<std::string> PlainParseError(const CLI::ParseError& e) const;
  // "pointledger earn", "pointledger reconcile liability": the command the
  // parse got to (just "pointledger" before one), and its App.
  std::string ParsedCommandPath(const CLI::App** command) const;
  // "Run `pointledger CMD --help` for its options." (or "the commands",
  // for a group): the line under every usage error.
  std::string UsageHint() const;
  // long_running: reports that scan the whole ledger wait for the server
  // far longer than a point read.
  int WithReader(const std::function<int(Reader&)>& fn, bool long_running = false);
  int RunKind(KindCommand& cmd);
  int RunPostFile();
  int RunExpireCommand();
  int RunLoadCommand();
  int RunTxGetCommand();
  int RunStatementCommand();
  int RunLiabilityCommand();
  int RunAuditVerifyCommand();

  CLI::App app_;
  Globals g_;
  bool tls_ = false;
  std::string tls_ca_;
  std::optional<double> timeout_s_;  // --timeout; unset: the command's default
  std::map<std::string, CLI::App*> groups_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
  std::deque<KindCommand> kind_commands_;
  ReadOptions read_;
  FinanceOptions finance_;
  std::string backup_to_;
  bool long_running_ = false;
  bool read_only_command_ = false;
  // `--memory-rows` of a rebuild (audit verify, a past liability): bounds
  // this process's rebuild, so only with --data (0: the engine's default).
  uint64_t rebuild_memory_rows_ = 0;
  std::vector<CLI::Option*> rebuild_memory_options_;
  std::vector<std::string> args_;  // argv after the program name, for PlainParseError
  std::string post_file_;
  std::string as_of_;
  LoadFlags load_;
};

Cli::Cli()
    : app_("pointledger: post to and query a PointLedger loyalty-points ledger (pointledgerd).", "pointledger") {
  app_.fallthrough();  // inherited by every subcommand: global options may follow the command
  app_.require_subcommand(1);
  // What an upgrade changes (docs/operations.md, "Upgrades").
  app_.set_version_flag("--version", StrCat("pointledger (PointLedger): reads record formats ",
                                            ledger::kRecordFormatMin, "-", ledger::kRecordFormat,
                                            "; protocol version ", net::kProtocolVersion));
  AddGlobals();
  for (const KindSpec& spec : PostableKinds()) AddKindCommand(spec);
  AddPostCommands();
  AddReadCommands();
  AddFinanceCommands();
  AddOpsCommands();
  AddLoad();
  app_.footer(
      "Run `pointledger COMMAND --help` for a command's options and an example.\n"
      "Exit codes: 0 all committed (or duplicates); 1 a transaction was rejected,\n"
      "something was not found, or a check found a discrepancy; 2 usage, connection\n"
      "or authentication error.\n"
      "The API key: --key, --key-file, $POINTLEDGER_KEY, $POINTLEDGER_KEY_FILE, or\n"
      "./var/admin.key (what `make run` creates), in that order.");
}

void Cli::AddGlobals() {
  app_.add_option("--server", g_.server, "pointledgerd address HOST:PORT")
      ->capture_default_str()
      ->type_name("HOST:PORT");
  app_.add_option("--key", g_.key, "API key (or $POINTLEDGER_KEY)")->type_name("KEY");
  app_.add_option("--key-file", g_.key_file, "read the API key from FILE (e.g. DATA/admin.key)")->type_name("FILE");
  app_.add_flag("--json", g_.json, "print one JSON object per line");
  app_.add_option("--data", g_.data,
                  StrCat("read a data directory directly, read-only (", kReadOnlyCommands,
                         "); safe while the server runs"))
      ->type_name("DIR");
  app_.add_flag("--tls", tls_, "connect with TLS");
  app_.add_option("--tls-ca", tls_ca_, "CA certificate file for TLS (implies --tls; default: system roots)")->type_name("FILE");
  app_.add_option("--timeout", timeout_s_,
                  "seconds to wait for the connection and for each answer (default 30; 3600 for the "
                  "whole-ledger reports: audit verify and export, reconcile trial-balance and liability)")
      ->check(CLI::Range(0.001, 86400.0))
      ->type_name("SECONDS");
}

CLI::App* Cli::Group(const std::string& name, const std::string& description) {
  auto it = groups_.find(name);
  if (it != groups_.end()) return it->second;
  CLI::App* group = app_.add_subcommand(name, description);
  group->require_subcommand(1);
  group->footer("");
  groups_[name] = group;
  return group;
}

CLI::App* Cli::AddCommand(const std::string& path, const std::string& summary, const std::string& example,
                          std::function<int()> run) {
  CLI::App* parent = &app_;
  std::string name = path;
  if (const size_t space = path.find(' '); space != std::string::npos) {
    const std::string group = path.substr(0, space);
    parent = Group(group, StrCat(group, " commands"));
    name = path.substr(space + 1);
  }
  CLI::App* cmd = parent->add_subcommand(name, summary);
  cmd->footer(StrCat("Example:\n  ", example, "\n", kGlobalsFooter));
  commands_.emplace_back(cmd, std::move(run));
  return cmd;
}

std::string TypeName(FieldType type) {
  switch (type) {
    case FieldType::kKey: return "KEY";
    case FieldType::kString: return "TEXT";
    case FieldType::kUint:
    case FieldType::kUint32: return "N";
    case FieldType::kInt:
    case FieldType::kInt32: return "INT";
    case FieldType::kTime: return "RFC3339";
    case FieldType::kBool: return "";
  }
  return "";
}

void Cli::AddKindCommand(const KindSpec& spec) {
  KindCommand& cmd = kind_commands_.emplace_back();
  cmd.spec = &spec;
  CLI::App* app = AddCommand(std::string(spec.command), std::string(spec.summary), std::string(spec.example),
                             [this, &cmd] { return RunKind(cmd); });
  auto add = [&](const FieldSpec& f) {
    if (IsJsonOnly(f)) return;
    const std::string name(f.name);
    CLI::Option* opt = nullptr;
    if (f.type == FieldType::kBool) {
      opt = app->add_flag(FlagName(f.name), cmd.flags[name], std::string(f.help));
    } else {
      opt = app->add_option(f.positional ? name : FlagName(f.name), cmd.text[name], std::string(f.help))
                ->type_name(TypeName(f.type));
      if (f.required && !(f.name == "id" && HasDefaultId(spec.kind))) opt->required();
      // On the wire an absent or 0 `points` of capture and reverse means
      // "all"; a typed 0 is more likely a script's mistake than that.
      if (f.name == "points" && !f.required) opt->check(NotZero("omit --points for all"));
    }
    cmd.options.emplace_back(&f, opt);
  };
  // Help order: NAME, --program, the kind's own flags, --id, the optional texts.
  std::span<const FieldSpec> common = CommonFields();
  for (const FieldSpec& f : spec.fields) {
    if (f.positional) add(f);
  }
  // program create's NAME is the program: no --program there.
  if (spec.kind != ledger::Kind::kProgramCreate) add(common[1]);
  for (const FieldSpec& f : spec.fields) {
    if (!f.positional) add(f);
  }
  add(common[0]);
  for (const FieldSpec& f : common.subspan(2)) add(f);
}

void Cli::AddPostCommands() {
  CLI::App* post = AddCommand(
      "post", "Post many transactions from a JSON-lines file, in batches; one result per line, in input order.",
      "pointledger post --file batch.jsonl --json\n"
      "Each line is one transaction: {\"kind\":\"earn\",\"id\":\"order-1\",\"program\":\"acme\","
      "\"member\":\"alice\",\"points\":120}\n"
      "Fields are the kind's command-line flags with '-' as '_' (NAME is \"name\"), plus\n"
      "\"linked\":true to make a transaction succeed or fail together with the next one.\n"
      "Kinds: program_create partner_create partner_price earn redeem referral transfer\n"
      "adjust reverse hold capture release settle account_open account_close. The whole file\n"
      "is checked before anything is sent; a line that does not parse is reported with its number.",
      [this] { return RunPostFile(); });
  post->add_option("--file", post_file_, "JSON-lines input; - for stdin")->required()->type_name("FILE");

  CLI::App* expire = AddCommand(
      "expire", "Expire the points due at a time (and release timed-out holds); prints how many points expired.",
      "pointledger expire --as-of 2027-01-01T00:00:00Z", [this] { return RunExpireCommand(); });
  expire->add_option("--as-of", as_of_, "RFC 3339 time (default: now)")->type_name("RFC3339");
}

void Cli::AddReadCommands() {
  CLI::App* balance = AddCommand("balance", "A member's balance and when their points expire.",
                                 "pointledger balance --program acme --member alice --json",
                                 [this] { return WithReader([this](Reader& r) {
                                   return RunBalance(r, Out(), read_.program, read_.member);
                                 }); });
  balance->add_option("--program", read_.program, "program name")->required();
  balance->add_option("--member", read_.member, "the member's key")->required();

  CLI::App* history = AddCommand(
      "history", "A member's transactions, newest first.",
      "pointledger history --program acme --member alice --limit 50 --before 42",
      [this] { return WithReader([this](Reader& r) {
        return RunHistory(r, Out(), read_.program, read_.member, read_.limit, read_.before);
      }); });
  history->add_option("--program", read_.program, "program name")->required();
  history->add_option("--member", read_.member, "the member's key")->required();
  history->add_option("--limit", read_.limit, "at most this many entries (1 to 1000)")
      ->capture_default_str()
      ->check(NonNegative());
  history->add_option("--before", read_.before, "only entries with seq below SEQ (the next page)")
      ->type_name("SEQ")
      ->check(NonNegative());

  CLI::App* tx = AddCommand("tx get", "One stored transaction: its fields, result, postings and hash.",
                            "pointledger tx get --program acme --id order-1001",
                            [this] { return RunTxGetCommand(); });
  tx->add_option("--program", read_.program, "program name")->required();
  CLI::Option* id = tx->add_option("--id", read_.id, "the transaction's --id KEY")->type_name("KEY");
  CLI::Option* hex = tx->add_option("--hex", read_.hex, "the transaction id as 32 hex digits (as history prints)")
                         ->type_name("HEX");
  id->excludes(hex);
  hex->excludes(id);

  AddCommand("audit head", "The hash chain's head (seq and hash), to record outside the ledger.",
             "pointledger audit head --json",
             [this] { return WithReader([this](Reader& r) { return RunAuditHead(r, Out()); }); });

  CLI::App* statement = AddCommand(
      "settle statement", "A partner's settlement statement for a period (points and money each way).",
      "pointledger settle statement --program acme --partner hotelco --from 2026-11-01T00:00:00Z "
      "--to 2026-12-01T00:00:00Z",
      [this] { return RunStatementCommand(); });
  statement->add_option("--program", read_.program, "program name")->required();
  statement->add_option("--partner", read_.partner, "partner name")->required();
  statement->add_option("--from", read_.from,
                        "RFC 3339 start, inclusive (default: the end of the last settle close)")
      ->type_name("RFC3339");
  statement->add_option("--to", read_.to, "RFC 3339 end, exclusive (default: now)")->type_name("RFC3339");
}

void Cli::AddFinanceCommands() {
  AddCommand("reconcile trial-balance",
             "Check the books: every program sums to zero, stored balances equal the replay of their "
             "postings, every member's lots and holds equal its balance. Exit 1 on any discrepancy.",
             "pointledger reconcile trial-balance --data ./var --json",
             [this] { return WithReader([this](Reader& r) { return RunTrialBalance(r, Out()); }, true); });

  CLI::App* liability = AddCommand(
      "reconcile liability",
      "A program's points liability: outstanding points and their value, movements in a period, points "
      "expiring in 30/60/90 days, breakage rate.",
      "pointledger reconcile liability --program acme --from 2026-11-01T00:00:00Z "
      "--to 2026-12-01T00:00:00Z --json\n"
      "--to defaults to just after --as-of (+1 ns), --as-of to just before --to (-1 ns), --to\n"
      "to now without either; --from to the beginning. The period is [--from, --to).",
      [this] { return RunLiabilityCommand(); });
  liability->add_option("--program", read_.program, "program name")->required();
  liability->add_option("--from", read_.from, "RFC 3339 start of the period, inclusive")->type_name("RFC3339");
  liability->add_option("--to", read_.to, "RFC 3339 end of the period, exclusive")->type_name("RFC3339");
  liability->add_option("--as-of", read_.as_of, "RFC 3339 time of the outstanding balance")->type_name("RFC3339");
  AddRebuildMemoryOption(liability);

  CLI::App* external = AddCommand(
      "reconcile external",
      "Match a POS / e-commerce export (CSV: order_ref,kind,points[,member,timestamp]) against the "
      "ledger by idempotency key. Exit 1 on any mismatch.",
      "pointledger reconcile external --program acme --csv pos-export.csv --json\n"
      "order_ref is the --id KEY the POS posted with (a transaction's own --order-ref field is\n"
      "shown, not matched on). Findings: matched, missing_in_ledger, missing_in_file,\n"
      "amount_mismatch, kind_mismatch, member_mismatch, duplicate_in_file;\n"
      "they come in id order, each with its file line. Memory stays bounded: rows beyond\n"
      "--memory-rows are sorted in temporary files ($TMPDIR).",
      [this] {
        finance_.external.program = read_.program;
        return WithReader([this](Reader& r) { return RunReconcileExternal(r, Out(), finance_.external); },
                          true);
      });
  external->add_option("--program", read_.program, "program name")->required();
  external->add_option("--csv", finance_.external.csv_path, "the export (RFC 4180, header row); - reads standard input")
      ->required()
      ->type_name("FILE");
  external->add_option("--memory-rows", finance_.external.memory_rows,
                       "rows per side held in memory before spilling to a temporary file")
      ->capture_default_str()
      ->check(NonNegative())
      ->check(NotZero("1 spills every row; leave it out for the default"));
  external->add_flag("--mismatches-only", finance_.external.mismatches_only,
                     "--json: leave out the matched rows");

  CLI::App* verify = AddCommand(
      "audit verify",
      "Recompute the whole hash chain and rebuild every balance, lot and hold from the transactions; "
      "report the first bad seq and what differs. Exit 1 on any discrepancy.",
      "pointledger audit verify --data ./var --expect-head 1234:<hash from an earlier audit head>",
      [this] { return RunAuditVerifyCommand(); });
  verify->add_option("--expect-head", finance_.expect_head,
                     "a head recorded earlier (`audit head`): it must still be in the chain")
      ->type_name("SEQ:HASH");
  AddRebuildMemoryOption(verify);

  CLI::App* exp = AddCommand(
      "audit export", "Stream stored transactions as JSON lines or CSV, a page at a time.",
      "pointledger audit export --data ./var --from-seq 1 --to-seq 1000 --format csv > ledger.csv",
      [this] {
        return WithReader([this](Reader& r) {
          return RunAuditExport(r, Out(), finance_.from_seq, finance_.to_seq, finance_.format);
        }, true);
      });
  exp->add_option("--from-seq", finance_.from_seq, "first seq")->capture_default_str()->check(NonNegative());
  exp->add_option("--to-seq", finance_.to_seq, "last seq (default: the head when the export starts)")
      ->type_name("N")
      ->check(NonNegative())
      ->check(NotZero("there is no seq 0; leave --to-seq out to export up to the head"));
  exp->add_option("--format", finance_.format, "jsonl or csv")->required()->check(CLI::IsMember({"jsonl", "csv"}));
}

void Cli::AddOpsCommands() {
  CLI::App* backup = AddCommand(
      "backup",
      "A consistent, compacted hot copy of a data directory (safe while the server runs), which "
      "pointledgerd --data opens as it is; prints the chain head it contains.",
      "pointledger backup --data ./var --to /backups/pointledger-2026-11-30 --json\n"
      "Then: pointledger audit verify --data /backups/pointledger-2026-11-30 --expect-head SEQ:HASH",
      [this] {
        if (g_.data.empty()) {
          return ReportError(Out(), absl::InvalidArgumentError(
                                        "backup needs --data DIR: it copies a data directory on this machine"));
        }
        return RunBackup(Out(), g_.data, backup_to_);
      });
  backup->add_option("--to", backup_to_, "the new directory to write the copy into")->required()->type_name("DIR");

  AddCommand("stats",
             "The server's counters: uptime, connections, commits, results by code, group-commit sizes, "
             "commit latency percentiles, LMDB map usage (read scope).",
             "pointledger stats --json", [this] {
               if (!g_.data.empty()) return RefuseData("stats", "asks the running server");
               int exit_code = kExitUsage;
               std::unique_ptr<net::Client> client = Connect(&exit_code);
               if (client == nullptr) return exit_code;
               return RunStats(*client, Out());
             });
  AddCommand("ping", "Health check: connect, authenticate and read the chain head. Exit 0 when healthy, 2 if not.",
             "pointledger ping --server 127.0.0.1:7600 --key-file var/admin.key", [this] {
               if (!g_.data.empty()) return RefuseData("ping", "asks the running server");
               const auto start = std::chrono::steady_clock::now();
               int exit_code = kExitUsage;
               std::unique_ptr<net::Client> client = Connect(&exit_code);
               if (client == nullptr) return exit_code;
               const double connect_ms =
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
               return RunPing(*client, Out(), connect_ms, g_.server);
             });
}

void Cli::AddLoad() {
  CLI::App* load = AddCommand(
      "load", "Load generator: throughput and batch latency percentiles against pointledgerd.",
      "pointledger load --connections 64 --batch 100 --duration 30s --mix earn=60,redeem=30,referral=10\n"
      "Creates its program (--program, default load) if missing; redeems target members it has\n"
      "earned to. Exits 0 when the run completes (rejections are counted in the report), 2 on a\n"
      "connection error. Ctrl-C (or SIGTERM) ends the run early: the answers in flight are awaited\n"
      "and the report covers what was answered (exit 0); a second Ctrl-C quits at once.",
      [this] { return RunLoadCommand(); });
  load->add_option("--connections", load_.connections, "connections")->capture_default_str();
  load->add_option("--threads", load_.threads,
                   "threads driving the connections, each its share in rounds (default or 0: 4; with "
                   "--rate, one per connection)")
      ->type_name("T");
  load->add_option("--batch", load_.batch, "transactions per request (1 to 8190)")->capture_default_str();
  load->add_option("--in-flight", load_.in_flight, "requests pipelined per connection")->capture_default_str();
  CLI::Option* duration =
      load->add_option("--duration", load_.duration, "run this long: 30s, 2m, 500ms; no unit = seconds (default 10s)");
  CLI::Option* count = load->add_option("--count", load_.count, "post exactly N transactions (N >= 1)")
                           ->type_name("N")
                           ->check(NonNegative())
                           ->check(NotZero("or use --duration"));
  duration->excludes(count);
  count->excludes(duration);
  load->add_option("--mix", load_.mix, "kind weights: earn, redeem, referral, transfer")->capture_default_str();
  load->add_option("--members", load_.members, "member population")->capture_default_str()->check(NonNegative());
  load->add_option("--rate", load_.rate,
                   "target transactions per second, all connections (default or 0: unlimited)")
      ->type_name("TX_PER_S");
  load->add_option("--program", load_.program, "program to load")->capture_default_str();
  load->add_option("--seed", load_.seed,
                   "replay a run: the same seed and options send the same ids (decided ones come back as "
                   "duplicates); default random, printed in the report")
      ->type_name("N")
      ->check(NonNegative());
  load->add_option("--ack-log", load_.ack_log,
                   "append '<id hex> <seq> <code>' for every transaction the server answered with a seq")
      ->type_name("FILE");
}

// ---------------------------------------------------------------------------
// Running.

int Cli::Run(int argc, char** argv) {
  args_.assign(argv + std::min(argc, 1), argv + argc);
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help ends the parse as an "error" that succeeds.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      app_.exit(e);
      return kExitOk;
    }
    // Every usage error in one shape (CLI11's own, "--points is required /
    // Run with --help for more information.", was a second one), with the
    // help that has the command's options.
    // The message quotes what was typed: shown escaped, so a control
    // character in an argument cannot drive the terminal.
    const std::optional<std::string> message = PlainParseError(e);
    std::fprintf(stderr, "error: %s\n%s\n", Shown(message ? *message : std::string(e.what())).c_str(),
                 UsageHint().c_str());
    return kExitUsage;
  }
  for (auto& [app, run] : commands_) {
    if (app->parsed()) return run();
  }
  std::fprintf(stderr, "error: no command given\n%s", app_.help().c_str());
  return kExitUsage;
}

std::string Cli::UsageHint() const {
  const CLI::App* command = nullptr;
  const std::string path = ParsedCommandPath(&command);
  return StrCat("Run `", path, " --help` for ",
                command->get_subcommands({}).empty() ? "its options" : "the commands", ".");
}

std::string Cli::ParsedCommandPath(const CLI::App** command) const {
  std::string path = "pointledger";
  for (const CLI::App* app = &app_;;) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : app->get_subcommands({})) {
      if (sub->parsed()) next = sub;
    }
    if (next == nullptr) {
      *command = app;
      return path;
    }
    path += " " + next->get_name();
    app = next;
  }
}

std::optional<std::string> Cli::PlainParseError(const CLI::ParseError& e) const {
  // CLI11 checks required options before unknown ones: `--poinst 1` would
  // be reported as "--points is required", never naming the typo.
  for (const std::string& extra : app_.remaining(/*recurse=*/true)) {
    if (extra.size() > 1 && extra.starts_with('-') && !std::isdigit(static_cast<unsigned char>(extra[1]))) {
      return StrCat("unknown option '", extra.substr(0, extra.find('=')), "'");
    }
  }
  // A word where a command belongs: CLI11 says only that a subcommand is
  // required. The first word that is neither an option nor an option's
  // value names the command (or its group, then the next word does).
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    static const std::set<std::string_view> kValued = {"--server", "--key", "--key-file", "--data",
                                                       "--tls-ca", "--timeout"};
    std::vector<std::string_view> words;
    for (size_t i = 0; i < args_.size(); ++i) {
      const std::string_view a = args_[i];
      if (a.starts_with("-")) {
        if (kValued.contains(a)) ++i;  // --server HOST:PORT
        continue;
      }
      words.push_back(a);
      if (words.size() == 2) break;
    }
    if (words.empty() && std::string_view(e.what()) == "A subcommand is required") return "no command given";
    if (!words.empty()) {
      const CLI::App* top = nullptr;
      for (const CLI::App* sub : app_.get_subcommands({})) {
        if (sub->check_name(std::string(words[0]))) top = sub;
      }
      if (top == nullptr) return StrCat("unknown command '", words[0], "'");
      if (words.size() == 1 && !top->get_subcommands({}).empty()) {
        std::vector<std::string> names;
        for (const CLI::App* sub : top->get_subcommands({})) names.push_back(sub->get_name());
        return StrCat("'", words[0], "' needs one of: ", absl::StrJoin(names, ", "));
      }
      if (words.size() == 2 && !top->get_subcommands({}).empty()) {
        bool known = false;
        for (const CLI::App* sub : top->get_subcommands({})) known |= sub->check_name(std::string(words[1]));
        if (!known) return StrCat("unknown command '", words[0], " ", words[1], "'");
      }
    }
  }
  // "--limit: must be a non-negative integer" (NonNegative and the like).
  if (dynamic_cast<const CLI::ValidationError*>(&e) != nullptr) return std::string(e.what());
  // An option given twice: "--points: At Most 1 required but received 2".
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
    const std::string what = e.what();
    const std::string_view marker = ": At Most 1 required but received ";
    if (const size_t at = what.find(marker); at != std::string::npos) {
      return StrCat(what.substr(0, at), ": given ", what.substr(at + marker.size()), " times; give it once");
    }
  }
  // "Could not convert: --limit = abc" becomes "--limit: 'abc' is not a
  // number", in the shape of the transaction flags' errors (cli_fields.cc).
  if (dynamic_cast<const CLI::ConversionError*>(&e) != nullptr) {
    const std::string what = e.what();
    const std::string_view prefix = "Could not convert: ";
    const size_t eq = what.find(" = ");
    if (what.rfind(prefix, 0) == 0 && eq != std::string::npos) {
      return StrCat(what.substr(prefix.size(), eq - prefix.size()), ": '", what.substr(eq + 3),
                    "' is not a number");
    }
  }
  return std::nullopt;
}

absl::StatusOr<net::ClientOptions> Cli::ClientOptions() {
  net::ClientOptions options;
  PL_RETURN_IF_ERROR(net::ParseServerAddress(g_.server, &options));
  PL_ASSIGN_OR_RETURN(options.api_key, ResolveKey(g_));
  if (options.api_key.empty()) {
    return absl::InvalidArgumentError(
        "no API key: pass --key KEY or --key-file FILE (pointledgerd writes DATA/admin.key at its first "
        "start), set POINTLEDGER_KEY or POINTLEDGER_KEY_FILE, or run from the directory holding "
        "./var/admin.key (make run's); read-only commands also take --data DIR instead");
  }
  options.client_name = "pointledger";
  // --tls-ca means TLS: without --tls it was ignored and the Hello, key
  // included, went out in cleartext (found in review, session 20).
  options.tls = tls_ || !tls_ca_.empty();
  options.tls_ca_file = tls_ca_;
  if (!tls_ca_.empty()) {  // said plainly, not as "TLS CA: asio.ssl error"
    std::error_code ec;
    if (std::filesystem::is_directory(tls_ca_, ec)) {
      return absl::InvalidArgumentError(StrCat("--tls-ca ", tls_ca_, " is a directory, not a PEM file"));
    }
    if (std::ifstream ca(tls_ca_); !ca) {
      return absl::InvalidArgumentError(StrCat("--tls-ca ", tls_ca_, ": cannot read it (", std::strerror(errno), ")"));
    }
  }
  if (long_running_) options.timeout_ms = 3'600'000;  // a whole-ledger scan on the server
  // A health check (`ping --timeout 2`) or a script's own bound.
  if (timeout_s_) options.timeout_ms = static_cast<int>(std::ceil(*timeout_s_ * 1000));
  return options;
}

std::unique_ptr<net::Client> Cli::Connect(int* exit_code) {
  absl::StatusOr<net::ClientOptions> options = ClientOptions();
  if (!options.ok()) {
    *exit_code = ReportError(Out(), options.status());  // --server, --key-file: usage
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = net::Client::Connect(*options);
  if (!client.ok()) {
    *exit_code = ConnectFailed(client.status());
    return nullptr;
  }
  return std::move(*client);
}

int Cli::ConnectFailed(const absl::Status& s) {
  if (absl::IsUnauthenticated(s)) {
    return ReportError(Out(), s,
                       "The server refused the API key. Pass it with --key KEY, --key-file FILE (the server "
                       "creates DATA/admin.key at its first start, and uses it only while its config has no "
                       "[[key]] tables) or $POINTLEDGER_KEY.");
  }
  // A certificate refused is the server answering, not the server missing
  // (found in review, session 20: it got the "Is it running?" hint).
  if (absl::IsUnavailable(s) && s.message().rfind("TLS handshake", 0) == 0) {  // not "connection: TLS handshake"
    return ReportError(Out(), s,
                       "The TLS handshake failed: check --tls-ca (the CA that signed the server's "
                       "certificate), that --server names a host the certificate is for, and that the "
                       "certificate has not expired; a server without TLS fails this way too.");
  }
  // Full is not down (found in review, session 30: it said "Is it running?").
  // Only a refused connection: a full map is server_busy too, and was
  // blamed on connections_max (found by an operator review, session 31).
  if (absl::IsUnavailable(s) && absl::StrContains(s.message(), "server_busy") &&
      absl::StrContains(s.message(), "connections_max")) {
    return ReportError(Out(), s,
                       StrCat("pointledgerd at ", g_.server,
                              " is running but refused the connection: it serves connections_max "
                              "connections already. Try again shortly; its operator can raise "
                              "connections_max (docs/operations.md)."));
  }
  if (absl::IsDeadlineExceeded(s)) {
    return ReportError(Out(), s,
                       StrCat("pointledgerd at ", g_.server,
                              " did not answer in time: a server stuck or overloaded, or a host that drops "
                              "packets. --timeout SECONDS sets the wait (default 30)."));
  }
  if (absl::IsUnavailable(s)) {
    // A TLS server closes a plain client's connection: the client reads
    // an end of file. Say so when --tls was not given.
    const bool maybe_tls = !tls_ && tls_ca_.empty() && (absl::StrContains(s.message(), "End of file") ||
                                       absl::StrContains(s.message(), "reset by peer"));
    return ReportError(Out(), s,
                       StrCat("Cannot reach pointledgerd at ", g_.server,
                              ". Is it running (`pointledgerd --data DIR`, or `make run`)? Pass --server "
                              "HOST:PORT for another address",
                              read_only_command_ ? ", or --data DIR to read a data directory." : ".",
                              maybe_tls ? " The server closed the connection unasked: if it serves TLS, "
                                          "pass --tls (and --tls-ca)."
                                        : ""));
  }
  return ReportError(Out(), s);
}

int Cli::RefuseData(const char* command, const char* what) {
  return ReportError(Out(), absl::InvalidArgumentError(StrCat(
                                "--data works only for the read-only commands (", kReadOnlyCommands, "); `",
                                command, "` ", what, ": drop --data and use --server HOST:PORT")));
}

int Cli::WithReader(const std::function<int(Reader&)>& fn, bool long_running) {
  long_running_ = long_running;
  read_only_command_ = true;  // --data would serve it: the connection hint says so
  if (!g_.data.empty()) {
    absl::StatusOr<std::unique_ptr<Reader>> reader = OpenDataDir(g_.data, rebuild_memory_rows_);
    if (!reader.ok()) return ReportError(Out(), reader.status());
    return fn(**reader);
  }
  int exit_code = kExitUsage;
  std::unique_ptr<net::Client> client = Connect(&exit_code);
  if (client == nullptr) return exit_code;
  ClientReader reader(std::move(client));
  return fn(reader);
}

int Cli::RunKind(KindCommand& cmd) {
  if (!g_.data.empty()) return RefuseData(std::string(cmd.spec->command).c_str());
  TxDraft draft;
  std::vector<std::string> given;
  for (const auto& [field, option] : cmd.options) {
    const std::string name(field->name);
    FieldValue value;
    if (field->type == FieldType::kBool) {
      if (!cmd.flags[name]) continue;
      value.b = true;
    } else {
      if (option->count() == 0) continue;
      absl::StatusOr<FieldValue> parsed = ParseFieldText(*field, cmd.text[name]);
      if (!parsed.ok()) return ReportError(Out(), parsed.status());
      value = std::move(*parsed);
    }
    field->set(value, &draft);
    given.push_back(name);
  }
  if (absl::Status s = FinishDraft(*cmd.spec, given, &draft); !s.ok()) return ReportError(Out(), s);
  int exit_code = kExitUsage;
  std::unique_ptr<net::Client> client = Connect(&exit_code);
  if (client == nullptr) return exit_code;
  return RunPostOne(*client, Out(), draft.id_key, draft.tx);
}

int Cli::RunPostFile() {
  if (!g_.data.empty()) return RefuseData("post");
  // The input is read twice (checked, then sent), so stdin and anything
  // else that can be read only once (a pipe, <(...), a FIFO) is read whole
  // first: read again, a pipe was empty and nothing was sent, with exit 0
  // (found in review, session 19).
  std::string text;
  const std::string* buffered = nullptr;
  std::error_code ec;
  if (post_file_ == "-" || !std::filesystem::is_regular_file(post_file_, ec)) {
    std::FILE* in = post_file_ == "-" ? stdin : std::fopen(post_file_.c_str(), "r");
    if (in == nullptr) {
      // A wrong --file is a usage error (with the help line), as a wrong --csv is.
      return ReportError(Out(), absl::InvalidArgumentError(StrCat("--file ", post_file_, ": ", std::strerror(errno))));
    }
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0) text.append(buf, n);
    const int err = std::ferror(in) ? errno : 0;
    if (in != stdin) std::fclose(in);
    if (err != 0) {
      return ReportError(Out(), absl::DataLossError(StrCat("--file ", post_file_, ": ", std::strerror(err))));
    }
    buffered = &text;
  }
  int exit_code = kExitUsage;
  std::unique_ptr<net::Client> client = Connect(&exit_code);
  if (client == nullptr) return exit_code;
  // The whole input is checked before anything is sent, against the
  // limits this server gave in its Hello answer (a chain must fit in one
  // of its requests).
  absl::StatusOr<uint64_t> count =
      ValidatePostFile(post_file_, buffered, client->batch_transactions_max(), client->frame_bytes_max());
  if (!count.ok()) return ReportError(Out(), count.status());
  return tools::RunPostFile(*client, Out(), post_file_, buffered);
}

int Cli::RunExpireCommand() {
  if (!g_.data.empty()) return RefuseData("expire");
  const int64_t now_ns = NowNs();
  int64_t as_of_ns = now_ns;
  if (!as_of_.empty()) {
    absl::StatusOr<int64_t> t = ParseTime(as_of_);
    if (!t.ok()) return ReportError(Out(), absl::InvalidArgumentError(StrCat("--as-of: ", std::string(t.status().message()))));
    // The wire's "as of 0" means now: the epoch itself expired everything
    // due now while the report said 1970 (found in review, session 21).
    if (*t == 0) {
      return ReportError(Out(), absl::InvalidArgumentError(
                                    "--as-of: 1970-01-01T00:00:00Z itself is not accepted here (it would "
                                    "mean \"now\"); give a later time"));
    }
    as_of_ns = *t;
  }
  int exit_code = kExitUsage;
  std::unique_ptr<net::Client> client = Connect(&exit_code);
  if (client == nullptr) return exit_code;
  return RunExpire(*client, Out(), as_of_ns, now_ns);
}

int Cli::RunTxGetCommand() {
  if (read_.id.empty() == read_.hex.empty()) {
    return ReportError(Out(), absl::InvalidArgumentError("give --id KEY or --hex HEX"));
  }
  ledger::Id id{};
  std::string key = read_.id;
  if (!read_.hex.empty()) {
    std::optional<ledger::Id> parsed = ledger::IdFromHex(read_.hex);
    if (!parsed) return ReportError(Out(), absl::InvalidArgumentError("--hex: expected 32 hex digits"));
    id = *parsed;
    key = read_.hex;
  } else {
    id = ledger::TxIdFromKey(read_.program, read_.id);
  }
  return WithReader([&](Reader& r) { return RunTxGet(r, Out(), read_.program, key, id); });
}

int Cli::RunStatementCommand() {
  int64_t from_ns = ledger::kSinceLastSettlement;
  int64_t to_ns = NowNs();
  for (auto [text, out, flag] : {std::tuple{&read_.from, &from_ns, "--from"}, std::tuple{&read_.to, &to_ns, "--to"}}) {
    if (text->empty()) continue;
    absl::StatusOr<int64_t> t = ParseTime(*text);
    if (!t.ok()) return ReportError(Out(), absl::InvalidArgumentError(StrCat(flag, ": ", std::string(t.status().message()))));
    *out = *t;
  }
  if (!read_.from.empty() && from_ns > to_ns) {
    // Named as given: with --to left out, the end is now (a finance review,
    // session 32, was told "after --to" of a --to it never gave).
    return ReportError(Out(), absl::InvalidArgumentError(
                                  read_.to.empty() ? "--from is in the future (--to defaults to now)"
                                                   : "--from is after --to"));
  }
  return WithReader([&](Reader& r) {
    return RunSettleStatement(r, Out(), read_.program, read_.partner, from_ns, to_ns);
  });
}

int Cli::RunLiabilityCommand() {
  const int64_t now = NowNs();
  std::optional<int64_t> from, to, as_of;
  for (auto [text, out, flag] : {std::tuple{&read_.from, &from, "--from"}, std::tuple{&read_.to, &to, "--to"},
                                 std::tuple{&read_.as_of, &as_of, "--as-of"}}) {
    if (text->empty()) continue;
    absl::StatusOr<int64_t> t = ParseTime(*text);
    if (!t.ok()) return ReportError(Out(), absl::InvalidArgumentError(StrCat(flag, ": ", std::string(t.status().message()))));
    *out = *t;
  }
  // The period is [from, to); the balance is as of an instant, counting the
  // transactions at or before it. Each default takes the other's edge, so
  // that outstanding(as_of) - outstanding(from) is exactly the period's
  // movements even with a transaction at `to` itself (an `audit head` time
  // pasted as --to used to be in the balance but not in the movements).
  const int64_t to_ns =
      to.value_or(!as_of ? now : *as_of < std::numeric_limits<int64_t>::max() ? *as_of + 1 : *as_of);
  const int64_t as_of_ns = as_of.value_or(std::max<int64_t>(to_ns - 1, 0));
  const int64_t from_ns = from.value_or(0);
  if (from_ns > to_ns) {
    // Named as given: --to defaults to just after --as-of, or to now.
    return ReportError(Out(), absl::InvalidArgumentError(
                                  to       ? "--from is after --to"
                                  : as_of  ? "--from is after --as-of (the period ends at --as-of when --to is left out)"
                                           : "--from is in the future (--to defaults to now)"));
  }
  if (RefusedRebuildBound()) return kExitUsage;
  return WithReader([&](Reader& r) {
    return RunLiability(r, Out(), read_.program, from_ns, to_ns, as_of_ns);
  }, true);
}

int Cli::RunAuditVerifyCommand() {
  std::optional<ExpectedHead> expect;
  if (!finance_.expect_head.empty()) {
    absl::StatusOr<ExpectedHead> parsed = ParseExpectedHead(finance_.expect_head);
    if (!parsed.ok()) return ReportError(Out(), parsed.status());
    expect = *parsed;
  }
  if (RefusedRebuildBound()) return kExitUsage;
  return WithReader([&](Reader& r) { return RunAuditVerify(r, Out(), expect); }, true);
}

void Cli::AddRebuildMemoryOption(CLI::App* command) {
  rebuild_memory_options_.push_back(
      command
          ->add_option("--memory-rows", rebuild_memory_rows_,
                       "with --data: state rows a rebuild from seq 1 holds in memory before moving them "
                       "to a scratch directory under $TMPDIR (default: half the memory available, at ~300 "
                       "bytes a row; at least 8388608, ~2.4 GB)")
          ->type_name("N")
          ->check(NonNegative())
          ->check(NotZero("leave it out for the default")));
}

// Through the server, the rebuild runs there, bounded by its config
// (`rebuild_memory_rows`): a read-scope key does not get to size the
// server's memory.
bool Cli::RefusedRebuildBound() {
  if (!g_.data.empty()) return false;
  for (const CLI::Option* option : rebuild_memory_options_) {
    if (option->count() == 0) continue;
    ReportError(Out(), absl::InvalidArgumentError(
                           "--memory-rows bounds a rebuild in this process, so it needs --data DIR; "
                           "through the server, its config key rebuild_memory_rows does (docs/operations.md)"));
    return true;
  }
  return false;
}

// Set by SIGINT/SIGTERM during `load`. A lock-free atomic is safe to store
// from a signal handler.
std::atomic<bool> g_load_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnLoadSignal(int) { g_load_stop.store(true); }

// While alive, SIGINT and SIGTERM end the load run early instead of killing
// the process (which lost the whole report). SA_RESETHAND: a second signal
// takes the default action, so a run stuck on a silent server still quits.
class LoadSignals {
 public:
  LoadSignals() {
    struct sigaction sa {};
    sa.sa_handler = OnLoadSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~LoadSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  LoadSignals(const LoadSignals&) = delete;
  LoadSignals& operator=(const LoadSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

int Cli::RunLoadCommand() {
  if (!g_.data.empty()) return RefuseData("load");
  bench::LoadOptions o;
  o.connections = load_.connections;
  o.batch = load_.batch;
  o.in_flight = load_.in_flight;
  o.threads = load_.threads;
  o.count = load_.count;
  if (load_.count == 0) {
    absl::StatusOr<int64_t> d = ParseDuration(load_.duration.empty() ? "10s" : load_.duration);
    if (!d.ok()) return ReportError(Out(), absl::InvalidArgumentError(StrCat("--duration: ", std::string(d.status().message()))));
    if (*d <= 0) return ReportError(Out(), absl::InvalidArgumentError("--duration must be more than 0"));
    o.duration_ns = *d;
  }
  absl::StatusOr<bench::Mix> mix = bench::ParseMix(load_.mix);
  if (!mix.ok()) return ReportError(Out(), mix.status());
  o.mix = *mix;
  o.members = load_.members;
  o.rate_tx_per_s = load_.rate;
  o.program = load_.program;
  o.seed = load_.seed;
  o.ack_log = load_.ack_log;
  absl::StatusOr<net::ClientOptions> client = ClientOptions();  // after the flags: usage errors first
  if (!client.ok()) return ReportError(Out(), client.status());
  o.client = *client;
  o.connect = [options = o.client]() { return net::Client::Connect(options); };
  const bool tty = isatty(STDERR_FILENO) == 1;
  if (tty) {
    o.on_progress = [](const bench::Progress& p) {
      std::fprintf(stderr, "\r[%5.0fs] %llu committed, %llu rejected, %.0f tx/s, %llu connections   ", p.elapsed_s,
                   static_cast<unsigned long long>(p.committed), static_cast<unsigned long long>(p.rejected),
                   p.last_second_tx_per_s, static_cast<unsigned long long>(p.connections_alive));
    };
  }
  o.stop = &g_load_stop;
  absl::StatusOr<bench::LoadReport> report;
  {
    const LoadSignals signals;
    report = bench::RunLoad(o);
  }
  if (tty) std::fprintf(stderr, "\r%80s\r", "");
  if (!report.ok()) return ConnectFailed(report.status());
  const std::string text = g_.json ? bench::ReportJson(*report) + "\n" : bench::ReportText(*report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!report->error.empty()) {
    return ReportError(Out(), absl::UnavailableError(report->error),
                       "The figures above cover what was answered before the error.");
  }
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv) {
  Cli cli;
  int rc = cli.Run(argc, argv);
  // Output that did not reach its file (a full disk) must not pass for
  // success: an export or a report cut short would look whole, exit 0.
  // Most output sits in stdout's buffer until here, so this is where
  // the error shows.
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "error: writing the output failed: %s\n",
                 errno != 0 ? std::strerror(errno) : "an earlier write failed");
    rc = kExitUsage;
  }
  return rc;
}

}  // namespace pointledger::tools
