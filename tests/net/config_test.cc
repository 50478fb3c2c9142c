// The config file, keys and listen policy (no server needed), and the
// shipped example config and systemd unit (tools/pointledgerd.*).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "ledger/ledger.h"
#include "ledger/limits.h"
#include "net/config.h"
#include "net/limits.h"
#include "tests/net/server_process.h"

namespace pointledger::net {
namespace {

TEST(Config, DefaultsWithoutAFile) {
  absl::StatusOr<ServerConfig> c = ParseConfig("", "empty.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:7600");
  EXPECT_EQ(c->limits.frame_bytes_max, 4u << 20);
  EXPECT_EQ(c->limits.batch_transactions_max, 8190u);
  EXPECT_EQ(c->limits.connections_max, 1024u);
  EXPECT_EQ(c->io_threads, 2u);
  EXPECT_EQ(c->checkpoint_interval_ms, 1000u);
  EXPECT_EQ(c->rebuild_memory_rows, ledger::Options().rebuild_memory_entries);
  EXPECT_TRUE(c->keys.empty());
}

TEST(Config, EveryKey) {
  const std::string text = StrCat(R"(
listen = "0.0.0.0:7700"
data = "/srv/pointledger"
map_size_mb = 1024
checkpoint_interval_ms = 250
rebuild_memory_rows = 100000
metrics_listen = "127.0.0.1:9100"
io_threads = 3
tls_cert = "/etc/pl/cert.pem"
tls_key = "/etc/pl/key.pem"

[limits]
frame_bytes_max = 1048576
batch_transactions_max = 1000
connections_max = 10
inflight_requests_max = 8
idle_timeout_s = 60
output_bytes_max = 65536

[[key]]
principal = "pos"
sha256 = ")", DigestToHex(Sha256("secret")), R"("
programs = ["acme", "beta"]
scopes = ["post", "read"]
)");
  absl::StatusOr<ServerConfig> c = ParseConfig(text, "full.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "0.0.0.0:7700");
  EXPECT_EQ(c->data_dir, "/srv/pointledger");
  EXPECT_EQ(c->map_size_mb, 1024u);
  EXPECT_EQ(c->checkpoint_interval_ms, 250u);
  EXPECT_EQ(c->rebuild_memory_rows, 100000u);
  EXPECT_EQ(c->io_threads, 3u);
  EXPECT_EQ(c->limits.frame_bytes_max, 1048576u);
  EXPECT_EQ(c->limits.batch_transactions_max, 1000u);
  EXPECT_EQ(c->limits.inflight_requests_max, 8u);
  EXPECT_EQ(c->limits.idle_timeout_s, 60u);
  EXPECT_EQ(c->limits.output_bytes_max, 65536u);
  ASSERT_EQ(c->keys.size(), 1u);
  EXPECT_EQ(c->keys[0].principal, "pos");
  EXPECT_EQ(c->keys[0].auth.scopes, ledger::kScopePost | ledger::kScopeRead);
  EXPECT_EQ(c->keys[0].auth.programs, (std::vector<std::string>{"acme", "beta"}));
  EXPECT_EQ(FindKey(c->keys, "secret"), &c->keys[0]);
  EXPECT_EQ(FindKey(c->keys, "Secret"), nullptr);
  EXPECT_TRUE(CheckStartPolicy(*c).ok());
}

TEST(Config, ErrorsNameTheKey) {
  const struct {
    const char* text;
    const char* expect;
  } cases[] = {
      {"lisen = \"127.0.0.1:1\"", "bad.toml:1: lisen: unknown key"},
      {"[limits]\nframe_bytes = 5", "bad.toml:2: limits.frame_bytes: unknown key"},
      {"[limits]\nbatch_transactions_max = 8191", "limits.batch_transactions_max: must be between"},
      {"[limits]\ninflight_requests_max = \"many\"", "limits.inflight_requests_max: must be an integer"},
      // The file, the line and the key, not only the value (found in review,
      // session 20; the line since session 32).
      {"listen = \"somewhere:7600\"", "bad.toml:1: listen: \"somewhere:7600\": the host must be an IP address or localhost"},
      {"listen = \"127.0.0.1\"", "bad.toml:1: listen: \"127.0.0.1\": expected HOST:PORT"},
      {"metrics_listen = \"127.0.0.1\"", "bad.toml:1: metrics_listen: \"127.0.0.1\": expected HOST:PORT"},
      {"tls_cert = \"a.pem\"", "bad.toml: tls_cert: needs tls_key too"},
      {"tls_key = \"a.key\"", "bad.toml: tls_key: needs tls_cert too"},
      // Empty paths are a mistake, not "no TLS" (they served plaintext).
      {"tls_cert = \"\"\ntls_key = \"\"", "bad.toml:1: tls_cert: must not be empty"},
      {"checkpoint_interval_ms = 10", "checkpoint_interval_ms: must be between 50 and 600000"},
      {"checkpoint_interval_ms = 600001", "checkpoint_interval_ms: must be between 50 and 600000"},
      {"rebuild_memory_rows = 0", "rebuild_memory_rows: must be between 1 and"},
      {"[[key]]\nprincipal = \"a\"\nsha256 = \"abc\"\nprograms = \"*\"\nscopes = [\"post\"]",
       "bad.toml:3: key[0].sha256: must be 64 hex digits"},
      {"[[key]]\nprincipal = \"a\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n"
       "programs = \"*\"\nscopes = [\"write\"]",
       "bad.toml:5: key[0].scopes: unknown scope \"write\""},
      {"[[key]]\nprincipal = \"a\"\nprograms = \"*\"\nscopes = [\"post\"]", "bad.toml:1: key[0]: needs sha256"},
      {"[[key]]\nprincipal = \"a\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n"
       "programs = [\"acme\", \"ACME Corp!\"]\nscopes = [\"post\"]",
       "key[0].programs: \"ACME Corp!\" is not a program name"},
      {"[[key]]\nprincipal = \"a\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n"
       "programs = [\"\"]\nscopes = [\"post\"]",
       "key[0].programs: \"\" is not a program name"},
      {"[[key]]\nprincipal = \"a\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n"
       "scopes = [\"post\"]\ncolour = 1",
       "bad.toml:5: key[0].colour: unknown key"},
      {"listen = ", "bad.toml:1"},
      // printf %s "$UNSET" | sha256sum: a Hello with no key would match it.
      {"[[key]]\nprincipal = \"a\"\nsha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n"
       "programs = \"*\"\nscopes = [\"post\"]",
       "key[0].sha256: is the SHA-256 of an empty key"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ServerConfig> config = ParseConfig(c.text, "bad.toml");
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_NE(config.status().message().find(c.expect), std::string::npos)
        << config.status() << " should mention " << c.expect;
  }
}

TEST(Config, ListenPolicy) {
  absl::StatusOr<ListenAddress> a = ParseListen("[::1]:7600");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->loopback);
  a = ParseListen("localhost:0");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->loopback);
  EXPECT_EQ(a->port, 0);
  a = ParseListen("10.0.0.1:7600");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->loopback);

  ServerConfig open;
  open.data_dir = "/tmp/x";
  open.listen = "0.0.0.0:7600";
  absl::Status s = CheckStartPolicy(open);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("beyond loopback"), std::string::npos);
  open.listen = "127.0.0.1:7600";
  EXPECT_TRUE(CheckStartPolicy(open).ok());
  open.tls_cert = "cert.pem";
  EXPECT_EQ(CheckStartPolicy(open).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Config, HashesMatchSha256sum) {
  // printf %s secret | sha256sum
  EXPECT_EQ(DigestToHex(Sha256("secret")),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
  Sha256Digest d;
  EXPECT_TRUE(DigestFromHex("2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6A25FE97BF527A25B", &d));
  EXPECT_EQ(d, Sha256("secret"));
}

// Every [limits] bound is inclusive at both ends: the documented minimum and
// the cap of net/limits.h are accepted, one past either is refused.
TEST(Config, LimitBoundsAreInclusive) {
  const struct {
    const char* key;
    uint64_t min;
    uint64_t max;
  } bounds[] = {
      {"frame_bytes_max", kFrameBytesMinCap, kFrameBytesMaxCap},
      {"batch_transactions_max", 1, ledger::kBatchTransactionsMax},
      {"connections_max", 1, kConnectionsMaxCap},
      {"inflight_requests_max", 1, kInflightRequestsMaxCap},
      {"idle_timeout_s", 1, kIdleTimeoutSecondsCap},
      {"output_bytes_max", 4096, kOutputBytesMaxCap},
  };
  for (const auto& b : bounds) {
    for (const uint64_t v : {b.min, b.max}) {
      absl::StatusOr<ServerConfig> c = ParseConfig(StrCat("[limits]\n", b.key, " = ", v, "\n"), "l.toml");
      EXPECT_TRUE(c.ok()) << b.key << " = " << v << ": " << c.status();
    }
    for (const uint64_t v : {b.min - 1, b.max + 1}) {
      absl::StatusOr<ServerConfig> c = ParseConfig(StrCat("[limits]\n", b.key, " = ", v, "\n"), "l.toml");
      EXPECT_FALSE(c.ok()) << b.key << " = " << v << " was accepted";
    }
  }
}

// A [[key]] must say who it is, what it may touch and how: a missing
// principal or programs, an empty programs list (which would otherwise mean
// every program) or an empty scopes list, and a key given twice are refused.
TEST(Config, KeysMustBeCompleteAndDistinct) {
  const std::string hash = StrCat("sha256 = \"", DigestToHex(Sha256("k1")), "\"\n");
  const struct {
    std::string text;
    const char* expect;
  } cases[] = {
      {StrCat("[[key]]\n", hash, "programs = \"*\"\nscopes = [\"post\"]"), "key[0]: needs a principal"},
      {StrCat("[[key]]\nprincipal = \"a\"\n", hash, "scopes = [\"post\"]"), "key[0]: needs programs"},
      {StrCat("[[key]]\nprincipal = \"a\"\n", hash, "programs = []\nscopes = [\"post\"]"),
       "key[0].programs: must name a program"},
      {StrCat("[[key]]\nprincipal = \"a\"\n", hash, "programs = \"*\"\nscopes = []"),
       "key[0].scopes: needs at least one scope"},
      {StrCat("[[key]]\nprincipal = \"a\"\n", hash, "programs = \"*\"\nscopes = [\"post\"]\n\n",
              "[[key]]\nprincipal = \"b\"\n", hash, "programs = \"*\"\nscopes = [\"read\"]"),
       "bad.toml:7: key[1]: same key as principal a"},
      // 65 hex digits: not a SHA-256 with a digit to spare.
      {StrCat("[[key]]\nprincipal = \"a\"\nsha256 = \"", DigestToHex(Sha256("k1")),
              "0\"\nprograms = \"*\"\nscopes = [\"post\"]"),
       "key[0].sha256: must be 64 hex digits"},
      {"listen = \"127.0.0.1:65536\"", "bad.toml:1: listen: \"127.0.0.1:65536\": bad port"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ServerConfig> config = ParseConfig(c.text, "bad.toml");
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_NE(config.status().message().find(c.expect), std::string::npos)
        << config.status() << " should mention " << c.expect;
  }
}

// FindKey compares the whole SHA-256, not a prefix of it.
TEST(Config, FindKeyComparesTheWholeDigest) {
  std::vector<ApiKey> keys(1);
  keys[0].principal = "near";
  keys[0].sha256 = Sha256("secret");
  keys[0].sha256[31] ^= 1;
  EXPECT_EQ(FindKey(keys, "secret"), nullptr);
  keys[0].sha256[31] ^= 1;
  EXPECT_EQ(FindKey(keys, "secret"), &keys[0]);
}

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(StrCat(PL_SOURCE_DIR, "/", relative));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A config that cannot be read says why (found by an operator review,
// session 31: a missing and an unreadable file looked alike).
TEST(Config, AFileThatCannotBeReadSaysWhy) {
  absl::StatusOr<ServerConfig> missing = LoadConfigFile("/nonexistent/pointledgerd.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "cannot read config /nonexistent/pointledgerd.toml: No such file or directory");
}

// Relative paths in a config file are its directory's, not the working
// directory's (systemd starts the server in /): since session 32.
// Absolute ones, and a config given as a bare file name, stay as written.
TEST(Config, RelativePathsAreTheConfigFilesDirectorys) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.Sub("etc/pl"));
  std::ofstream(dir.Sub("etc/pl/server.toml")) << "data = \"../../var/ledger\"\n"
                                                  "tls_cert = \"cert.pem\"\n"
                                                  "tls_key = \"/abs/key.pem\"\n";
  absl::StatusOr<ServerConfig> c = LoadConfigFile(dir.Sub("etc/pl/server.toml"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, dir.Sub("var/ledger"));
  EXPECT_EQ(c->tls_cert, dir.Sub("etc/pl/cert.pem"));
  EXPECT_EQ(c->tls_key, "/abs/key.pem");
  // From the working directory, a bare name: the paths stay relative to it.
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.Sub("etc/pl"));
  absl::StatusOr<ServerConfig> here = LoadConfigFile("server.toml");
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(here.ok()) << here.status();
  EXPECT_EQ(here->data_dir, "../../var/ledger");
  EXPECT_EQ(here->tls_cert, "cert.pem");
}

// The example a service install starts from loads as it is, passes the
// start policy, and the unit's LimitNOFILE covers its connections_max
// (served, refused, and the server's own descriptors).
TEST(Config, TheShippedExampleLoadsAndTheUnitLeavesItRoom) {
  absl::StatusOr<ServerConfig> c = LoadConfigFile(StrCat(PL_SOURCE_DIR, "/tools/pointledgerd.toml"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, "/var/lib/pointledger");
  EXPECT_EQ(c->listen, "127.0.0.1:7600");
  ASSERT_EQ(c->keys.size(), 1u);
  EXPECT_TRUE(CheckStartPolicy(*c).ok()) << CheckStartPolicy(*c);
  const std::string unit = ReadSourceFile("tools/pointledgerd.service");
  const size_t at = unit.find("\nLimitNOFILE=");
  ASSERT_NE(at, std::string::npos) << unit;
  const uint64_t nofile = std::strtoull(unit.c_str() + at + 13, nullptr, 10);
  EXPECT_GE(nofile, c->limits.connections_max + kRefusedConnectionsMax + 256);
  EXPECT_NE(unit.find("ExecStart=/usr/local/bin/pointledgerd --config /etc/pointledger/pointledgerd.toml\n"),
            std::string::npos);
  EXPECT_NE(unit.find("StateDirectory=pointledger\n"), std::string::npos);
}

// systemd reads the unit without a warning (an unknown or misspelt key is
// only a warning at start, so it is looked for here), with ExecStart
// pointed at the built server. Skipped where systemd-analyze is missing
// or cannot verify even a minimal unit.
TEST(Config, TheShippedServiceUnitVerifies) {
  if (std::system("command -v systemd-analyze > /dev/null 2>&1") != 0) GTEST_SKIP() << "no systemd-analyze";
  testing::TempDir dir;
  const auto verify = [&](const std::string& name, const std::string& text, std::string* out) {
    const std::string path = dir.Sub(name);
    std::ofstream(path) << text;
    const std::string log = dir.Sub(name + ".log");
    const int rc = std::system(StrCat("systemd-analyze verify ", path, " > ", log, " 2>&1").c_str());
    std::ifstream in(log);
    std::stringstream text_out;
    text_out << in.rdbuf();
    *out = text_out.str();
    return rc;
  };
  std::string out;
  if (verify("control.service", "[Service]\nExecStart=/bin/true\n", &out) != 0 || !out.empty()) {
    GTEST_SKIP() << "systemd-analyze cannot verify here: " << out;
  }
  std::string unit = ReadSourceFile("tools/pointledgerd.service");
  const std::string shipped = "ExecStart=/usr/local/bin/pointledgerd ";
  const size_t at = unit.find(shipped);
  ASSERT_NE(at, std::string::npos);
  unit.replace(at, shipped.size(), StrCat("ExecStart=", PL_BIN_DIR, "/pointledgerd "));
  EXPECT_EQ(verify("pointledgerd.service", unit, &out), 0) << out;
  EXPECT_EQ(out, "");
  // And the check can fail: a misspelt key is reported.
  unit.replace(unit.find("RestartSec="), 11, "RestartSecs=");
  verify("misspelt.service", unit, &out);
  EXPECT_NE(out.find("Unknown key 'RestartSecs'"), std::string::npos) << out;
}

}  // namespace
}  // namespace pointledger::net
