// The TOML config (docs/operations.md). toml++ is used header-only with
// exceptions off, so a syntax error is a value we turn into a Status.
#ifdef TOML_HEADER_ONLY
#undef TOML_HEADER_ONLY
#endif
#ifdef TOML_SHARED_LIB
#undef TOML_SHARED_LIB
#endif
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
// toml++ 3.3.0 asserts on some malformed input that it otherwise rejects
// cleanly: `a = [}` is "could not determine value type" in a Release build,
// but with assert() on (Debug and the sanitizer builds) it aborted the
// server at startup (found by tests/fuzz/config_fuzz.cc). Its internal
// checks stay off in every build, as they are with NDEBUG; the fuzzer runs
// that code under ASan and UBSan.
#ifndef TOML_ASSERT
#define TOML_ASSERT(expr) static_assert(true)
#endif
#include <toml++/toml.h>

#include "net/config.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "boost/asio/ip/address.hpp"
#include "ledger/status.h"

namespace pointledger::net {

Sha256Digest Sha256(std::string_view bytes) {
  Sha256Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return digest;
}

std::string DigestToHex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool DigestFromHex(std::string_view hex, Sha256Digest* digest) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*digest)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

namespace {

absl::Status KeyError(std::string_view source, std::string_view key, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(source, ": ", key, ": ", what));
}

// "FILE:LINE", where the node was read from (an operator with a long
// config finds the line, not just `key[3].scopes`; since session 32).
std::string At(std::string_view source, const toml::node& node) {
  const toml::source_position begin = node.source().begin;
  return begin.line > 0 ? StrCat(source, ":", begin.line) : std::string(source);
}

// An integer value in [min, max].
absl::StatusOr<uint64_t> ReadUint(const toml::node& node, std::string_view source,
                                  std::string_view key, uint64_t min, uint64_t max) {
  const std::optional<int64_t> v = node.value_exact<int64_t>();
  if (!v) return KeyError(At(source, node), key, "must be an integer");
  if (*v < 0 || static_cast<uint64_t>(*v) < min || static_cast<uint64_t>(*v) > max) {
    return KeyError(At(source, node), key, StrCat("must be between ", min, " and ", max));
  }
  return static_cast<uint64_t>(*v);
}

absl::StatusOr<std::string> ReadString(const toml::node& node, std::string_view source,
                                       std::string_view key) {
  const toml::value<std::string>* s = node.as_string();
  if (s == nullptr) return KeyError(At(source, node), key, "must be a string");
  return s->get();
}

// A list of strings (a single string is taken as a list of one).
absl::StatusOr<std::vector<std::string>> ReadStringList(const toml::node& node,
                                                        std::string_view source,
                                                        std::string_view key) {
  std::vector<std::string> out;
  if (const toml::value<std::string>* s = node.as_string()) {
    out.push_back(s->get());
    return out;
  }
  const toml::array* array = node.as_array();
  if (array == nullptr) return KeyError(At(source, node), key, "must be a list of strings");
  for (const toml::node& element : *array) {
    const toml::value<std::string>* s = element.as_string();
    if (s == nullptr) return KeyError(At(source, element), key, "must be a list of strings");
    out.push_back(s->get());
  }
  return out;
}

template <typename T>
absl::Status SetUint(const toml::node& node, std::string_view source, std::string_view key,
                     uint64_t min, uint64_t max, T* out) {
  PL_ASSIGN_OR_RETURN(const uint64_t v, ReadUint(node, source, key, min, max));
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status ParseLimits(const toml::table& table, std::string_view source, Limits* limits) {
  for (const auto& [name, node] : table) {
    const std::string key = StrCat("limits.", name.str());
    const std::string_view n = name.str();
    absl::Status s;
    if (n == "frame_bytes_max") {
      s = SetUint(node, source, key, kFrameBytesMinCap, kFrameBytesMaxCap,
                  &limits->frame_bytes_max);
    } else if (n == "batch_transactions_max") {
      s = SetUint(node, source, key, 1, ledger::kBatchTransactionsMax,
                  &limits->batch_transactions_max);
    } else if (n == "connections_max") {
      s = SetUint(node, source, key, 1, kConnectionsMaxCap, &limits->connections_max);
    } else if (n == "inflight_requests_max") {
      s = SetUint(node, source, key, 1, kInflightRequestsMaxCap, &limits->inflight_requests_max);
    } else if (n == "idle_timeout_s") {
      s = SetUint(node, source, key, 1, kIdleTimeoutSecondsCap, &limits->idle_timeout_s);
    } else if (n == "output_bytes_max") {
      s = SetUint(node, source, key, 4096, kOutputBytesMaxCap, &limits->output_bytes_max);
    } else {
      s = KeyError(At(source, node), key, "unknown key");
    }
    PL_RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

absl::Status ParseScopes(const std::vector<std::string>& names, std::string_view source,
                         std::string_view key, uint8_t* scopes) {
  *scopes = 0;
  for (const std::string& s : names) {
    if (s == "post") {
      *scopes |= ledger::kScopePost;
    } else if (s == "read") {
      *scopes |= ledger::kScopeRead;
    } else if (s == "admin") {
      *scopes |= ledger::kScopeAdmin;
    } else {
      return KeyError(source, key, StrCat("unknown scope \"", s, "\" (post, read, admin)"));
    }
  }
  if (*scopes == 0) return KeyError(source, key, "needs at least one scope");
  return absl::OkStatus();
}

absl::Status ParseKeyField(std::string_view n, const toml::node& node, std::string_view source,
                           std::string_view key, ApiKey* k, bool* has_hash) {
  const std::string here = At(source, node);
  if (n == "principal") {
    PL_ASSIGN_OR_RETURN(k->principal, ReadString(node, source, key));
    if (k->principal.empty()) return KeyError(here, key, "must not be empty");
  } else if (n == "sha256") {
    PL_ASSIGN_OR_RETURN(const std::string hex, ReadString(node, source, key));
    if (!DigestFromHex(hex, &k->sha256)) {
      return KeyError(here, key,
                      "must be 64 hex digits (printf %s KEY | sha256sum)");
    }
    // A hash made from an unset variable would let a Hello with no key
    // in (found by a hostile-client review, session 19).
    if (k->sha256 == Sha256("")) {
      return KeyError(here, key, "is the SHA-256 of an empty key; a key must not be empty");
    }
    *has_hash = true;
  } else if (n == "programs") {
    PL_ASSIGN_OR_RETURN(std::vector<std::string> programs, ReadStringList(node, source, key));
    if (programs.empty()) return KeyError(here, key, "must name a program or \"*\"");
    // A name no program can have makes a key that can do nothing: a typo
    // (found in review, session 20: "ACME Corp!" was taken).
    for (const std::string& p : programs) {
      if (p != "*" && !ledger::IsValidName(p)) {
        return KeyError(here, key, StrCat("\"", p, "\" is not a program name ([a-z0-9_-], 1 to 32 bytes)"));
      }
    }
    const bool all = std::find(programs.begin(), programs.end(), "*") != programs.end();
    k->auth.programs = all ? std::vector<std::string>() : std::move(programs);
  } else if (n == "scopes") {
    PL_ASSIGN_OR_RETURN(const std::vector<std::string> scopes, ReadStringList(node, source, key));
    PL_RETURN_IF_ERROR(ParseScopes(scopes, here, key, &k->auth.scopes));
  } else {
    return KeyError(here, key, "unknown key");
  }
  return absl::OkStatus();
}

absl::Status ParseKeys(const toml::node& node, std::string_view source,
                       std::vector<ApiKey>* keys) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return KeyError(At(source, node), "key", "must be [[key]] tables");
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::table* table = (*array)[i].as_table();
    const std::string where = StrCat("key[", i, "]");
    if (table == nullptr) return KeyError(At(source, (*array)[i]), where, "must be a table");
    const std::string here = At(source, *table);
    ApiKey k;
    bool has_hash = false, has_programs = false, has_scopes = false;
    for (const auto& [name, value] : *table) {
      const std::string_view n = name.str();
      PL_RETURN_IF_ERROR(
          ParseKeyField(n, value, source, StrCat(where, ".", n), &k, &has_hash));
      has_programs |= n == "programs";
      has_scopes |= n == "scopes";
    }
    if (k.principal.empty()) return KeyError(here, where, "needs a principal");
    if (!has_hash) return KeyError(here, where, "needs sha256");
    if (!has_programs) return KeyError(here, where, "needs programs (names or \"*\")");
    if (!has_scopes) return KeyError(here, where, "needs scopes");
    for (const ApiKey& other : *keys) {
      if (other.sha256 == k.sha256) {
        return KeyError(here, where, StrCat("same key as principal ", other.principal));
      }
    }
    keys->push_back(std::move(k));
  }
  return absl::OkStatus();
}

absl::Status ParseTopLevel(std::string_view n, const toml::node& node, std::string_view source,
                           ServerConfig* config) {
  const std::string here = At(source, node);
  if (n == "listen") {
    PL_ASSIGN_OR_RETURN(config->listen, ReadString(node, source, n));
    if (absl::Status s = ParseListen(config->listen).status(); !s.ok()) return KeyError(here, n, std::string(s.message()));
  } else if (n == "data") {
    PL_ASSIGN_OR_RETURN(config->data_dir, ReadString(node, source, n));
  } else if (n == "map_size_mb") {
    PL_ASSIGN_OR_RETURN(config->map_size_mb, ReadUint(node, source, n, 1, kMapSizeMbCap));
  } else if (n == "checkpoint_interval_ms") {
    PL_ASSIGN_OR_RETURN(config->checkpoint_interval_ms,
                        ReadUint(node, source, n, kCheckpointIntervalMsMin, kCheckpointIntervalMsCap));
  } else if (n == "rebuild_memory_rows") {
    PL_ASSIGN_OR_RETURN(config->rebuild_memory_rows, ReadUint(node, source, n, 1, kRebuildMemoryRowsCap));
  } else if (n == "metrics_listen") {
    PL_ASSIGN_OR_RETURN(config->metrics_listen, ReadString(node, source, n));
    if (absl::Status s = ParseListen(config->metrics_listen).status(); !s.ok()) {
      return KeyError(here, n, std::string(s.message()));
    }
  } else if (n == "io_threads") {
    PL_RETURN_IF_ERROR(SetUint(node, source, n, 1, kIoThreadsCap, &config->io_threads));
  } else if (n == "tls_cert" || n == "tls_key") {
    // An empty path is a mistake (an unset template variable), not "no TLS":
    // leave the key out for that (found in review, session 20: two empty
    // paths served plaintext).
    PL_ASSIGN_OR_RETURN(std::string path, ReadString(node, source, n));
    if (path.empty()) return KeyError(here, n, "must not be empty (leave both TLS keys out for plain TCP)");
    (n == "tls_cert" ? config->tls_cert : config->tls_key) = std::move(path);
  } else if (n == "limits") {
    const toml::table* table = node.as_table();
    if (table == nullptr) return KeyError(here, n, "must be a [limits] table");
    PL_RETURN_IF_ERROR(ParseLimits(*table, source, &config->limits));
  } else if (n == "key") {
    PL_RETURN_IF_ERROR(ParseKeys(node, source, &config->keys));
  } else {
    return KeyError(here, n, "unknown key");
  }
  return absl::OkStatus();
}

// toml++ 3.3.0 has undefined behaviour (is_non_ascii_horizontal_whitespace
// reaches __builtin_unreachable for U+00A1..U+0499 and U+FBC6..U+FEFE) when
// it asks whether a non-ASCII character is whitespace (found by
// tests/fuzz/config_fuzz.cc). It asks outside strings and comments
// (`café = 1`), after a backslash in a basic string, after a line-ending
// backslash in a multi-line one, and anywhere in a value that starts like a
// number, quotes included (`a = 0"é"`: it scans to the next terminator to
// guess the type). So this refuses non-ASCII in all of those places before
// toml++ sees the text; a quote starts a string only where a string may
// start. Every value of the config that may be non-ASCII is a string, so the
// only valid config it refuses has a non-ASCII character right after a
// line-ending backslash.
class NonAsciiCheck {
 public:
  explicit NonAsciiCheck(std::string_view text) : text_(text) {}

  // OK, or InvalidArgument "SOURCE:LINE:COLUMN: ...".
  absl::Status Run(std::string_view source) {
    if (text_.starts_with("\xEF\xBB\xBF")) Skip(3);  // a UTF-8 byte order mark
    char last = '\n';  // the last byte outside strings and comments but blanks
    bool ok = true;
    while (ok && pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') {
        Skip(1);
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') Skip(1);
      } else if ((c == '"' || c == '\'') && std::string_view("\n=[,{.").find(last) != npos) {
        ok = String(c);
        last = c;
      } else if ((IsDigit(c) || c == '+' || c == '-') && !IsWord(last)) {
        ok = NumberLike(&last);
      } else {
        ok = static_cast<unsigned char>(c) < 0x80;
        if (ok) last = c;
        if (ok) Skip(1);
      }
    }
    if (ok) return absl::OkStatus();
    return absl::InvalidArgumentError(
        StrCat(source, ":", line_, ":", column_,
               ": a non-ASCII character outside a string or comment, or after a backslash"));
  }

 private:
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  static bool IsWord(char c) {
    return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
  }
  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  // A value that starts like a number runs to the next value terminator.
  bool NumberLike(char* last) {
    while (pos_ < text_.size() && !IsSpace(text_[pos_]) &&
           std::string_view("]},#").find(text_[pos_]) == npos) {
      if (static_cast<unsigned char>(text_[pos_]) >= 0x80) return false;
      *last = text_[pos_];
      Skip(1);
    }
    return true;
  }

  // Skips a string that starts at pos_; false at a non-ASCII byte that
  // toml++ must not see. A single-line string also ends at a line break
  // (toml++ stops there with an error).
  bool String(char quote) {
    const std::string_view triple = quote == '"' ? "\"\"\"" : "'''";
    const bool multi_line = text_.substr(pos_).starts_with(triple);
    Skip(multi_line ? 3 : 1);
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == quote && (!multi_line || text_.substr(pos_).starts_with(triple))) {
        // A closing delimiter may be preceded by up to two more quotes.
        size_t run = 0;
        while (pos_ + run < text_.size() && text_[pos_ + run] == quote && run < 5) ++run;
        Skip(multi_line ? std::max<size_t>(run, 3) : 1);
        return true;
      }
      if (c == '\n' && !multi_line) return true;
      if (c == '\\' && quote == '"') {
        Skip(1);
        const bool line_ending = multi_line && pos_ < text_.size() && IsSpace(text_[pos_]);
        while (line_ending && pos_ < text_.size() && IsSpace(text_[pos_])) Skip(1);
        if (pos_ < text_.size() && static_cast<unsigned char>(text_[pos_]) >= 0x80) return false;
        if (line_ending) continue;  // what follows is content (or the delimiter)
      }
      Skip(1);
    }
    return true;
  }

  void Skip(size_t n) {
    for (; n > 0 && pos_ < text_.size(); --n, ++pos_) {
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '\n') {
        ++line_;
        column_ = 1;
      } else if ((c & 0xC0) != 0x80) {  // not a UTF-8 continuation byte
        ++column_;
      }
    }
  }

  static constexpr size_t npos = std::string_view::npos;

  std::string_view text_;
  size_t pos_ = 0;
  uint64_t line_ = 1;
  uint64_t column_ = 1;
};

}  // namespace

absl::StatusOr<ServerConfig> ParseConfig(std::string_view text, std::string_view source) {
  PL_RETURN_IF_ERROR(NonAsciiCheck(text).Run(source));
  toml::parse_result parsed = toml::parse(text, source);
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    return absl::InvalidArgumentError(StrCat(source, ":", error.source().begin.line, ":",
                                             error.source().begin.column, ": ",
                                             error.description()));
  }
  ServerConfig config;
  for (const auto& [name, node] : parsed.table()) {
    PL_RETURN_IF_ERROR(ParseTopLevel(name.str(), node, source, &config));
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return KeyError(source, config.tls_cert.empty() ? "tls_key" : "tls_cert",
                    config.tls_cert.empty() ? "needs tls_cert too" : "needs tls_key too");
  }
  return config;
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  // A directory opens as an empty stream: it was read as an empty config.
  if (std::error_code ec; path.empty() || std::filesystem::is_directory(path, ec)) {
    return absl::NotFoundError(StrCat("cannot read config \"", path, "\": not a file"));
  }
  // With the reason (errno, which the open or the read set): a missing
  // file and one the server's user may not read looked alike (found by an
  // operator review, session 31).
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read config ", path, ": ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::NotFoundError(StrCat("cannot read config ", path, ": ", std::strerror(errno)));
  PL_ASSIGN_OR_RETURN(ServerConfig config, ParseConfig(text.str(), path));
  // Relative paths in the file are the file's directory's, whatever the
  // server's working directory (systemd's is /): a config and the
  // certificates beside it keep working wherever they are started from.
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  for (std::string* p : {&config.data_dir, &config.tls_cert, &config.tls_key}) {
    if (!p->empty() && std::filesystem::path(*p).is_relative()) *p = (dir / *p).lexically_normal().string();
  }
  return config;
}

absl::StatusOr<ListenAddress> ParseListen(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat("\"", text, "\": expected HOST:PORT, e.g. 127.0.0.1:7600"));
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return absl::InvalidArgumentError(StrCat("\"", text, "\": bad port"));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code error;
  const boost::asio::ip::address address =
      boost::asio::ip::make_address(std::string(host), error);
  if (error) {
    return absl::InvalidArgumentError(
        StrCat("\"", text, "\": the host must be an IP address or localhost"));
  }
  return ListenAddress{address.to_string(), static_cast<uint16_t>(port), address.is_loopback()};
}

absl::Status CheckStartPolicy(const ServerConfig& config) {
  absl::StatusOr<ListenAddress> parsed = ParseListen(config.listen);
  if (!parsed.ok()) return absl::InvalidArgumentError(StrCat("listen ", parsed.status().message()));
  const ListenAddress& listen = *parsed;
  if (!listen.loopback && config.keys.empty()) {
    return absl::FailedPreconditionError(
        StrCat("refusing to listen on ", config.listen,
               " (beyond loopback) without any [[key]] in the config: anyone could post"));
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::FailedPreconditionError("TLS needs both tls_cert and tls_key");
  }
  if (config.data_dir.empty()) {
    return absl::FailedPreconditionError("no data directory (--data DIR or data = \"DIR\")");
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  std::string key;
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  if (!std::getline(in, key) || key.find_first_not_of(" \t\r\v\f") == std::string::npos) {
    return absl::DataLossError(StrCat(path, " is empty (delete it to make a new one)"));
  }
  // Trailing white space is not part of a key, as `pointledger --key-file`
  // reads it (a tab here made a key the CLI could never send; found in
  // review, session 20).
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.size() > kApiKeyBytesMax) {
    return absl::DataLossError(StrCat(path, " does not hold a key (delete it to make a new one)"));
  }
  return key;
}

absl::StatusOr<std::string> CreateKeyFile(const std::string& path) {
  std::array<uint8_t, kGeneratedKeyBytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return absl::InternalError("no random bytes for the admin key");
  }
  Sha256Digest hex_source{};
  static_assert(sizeof(hex_source) == kGeneratedKeyBytes);
  std::copy(random.begin(), random.end(), hex_source.begin());
  const std::string key = DigestToHex(hex_source);
  // O_EXCL: two servers started at once must not both write a key.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::PermissionDeniedError(StrCat("cannot create ", path, ": ",
                                                       std::strerror(errno)));
  const std::string line = key + "\n";
  const ssize_t written = ::write(fd, line.data(), line.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size()) || !synced) {
    ::unlink(path.c_str());
    return absl::InternalError(StrCat("cannot write ", path));
  }
  return key;
}

}  // namespace

absl::StatusOr<std::string> EnsureAdminKey(const std::string& data_dir, std::string* path) {
  *path = data_dir + "/admin.key";
  if (::access(path->c_str(), F_OK) == 0) return ReadKeyFile(*path);
  return CreateKeyFile(*path);
}

absl::Status UseAdminKeyFile(ServerConfig* config) {
  PL_ASSIGN_OR_RETURN(const std::string key,
                      EnsureAdminKey(config->data_dir, &config->admin_key_file));
  ApiKey admin;
  admin.principal = "admin";
  admin.sha256 = Sha256(key);
  admin.auth = ledger::Auth::Admin();
  config->keys.clear();
  config->keys.push_back(std::move(admin));
  return absl::OkStatus();
}

const ApiKey* FindKey(const std::vector<ApiKey>& keys, std::string_view presented) {
  const Sha256Digest digest = Sha256(presented);
  const ApiKey* found = nullptr;
  for (const ApiKey& k : keys) {
    if (CRYPTO_memcmp(k.sha256.data(), digest.data(), digest.size()) == 0) found = &k;
  }
  return found;
}

}  // namespace pointledger::net
