// Inputs found by the fuzz targets (tests/fuzz/, docs/testing.md), each fed
// to the code that mishandled it. They are also in the fuzzers' seed
// corpora; these tests keep them fixed in the ordinary suites (`make asan`
// runs them with assertions and UBSan on, where most of them crashed).
#include <string>
#include <string_view>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/config.h"

namespace pointledger::net {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::string_view s) { return std::string(s); }

// config_fuzz: toml++ 3.3.0 asserts on a value that starts with a closing
// brace in an array; with assert() on, the server aborted on such a config.
TEST(ConfigFuzzRegression, ArrayOfClosingBraceIsAnError) {
  for (const char* text : {"a = [}\n", "a = [1,}\n",
                           "limits = { frame_bytes_max = 1024, scopes = [}\n"}) {
    absl::StatusOr<ServerConfig> c = ParseConfig(text, "bad.toml");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("could not determine value type"));
  }
}

// config_fuzz: toml++ 3.3.0 reaches __builtin_unreachable when it asks
// whether a non-ASCII character outside a string is whitespace. The first
// input is the fuzzer's (U+FE7F after "lis").
TEST(ConfigFuzzRegression, NonAsciiOutsideStringsIsRefusedBeforeToml) {
  const std::string crash = Bytes("lis\xef\xb9\xbf = \"0.0.0.0lis:76p0\"ten \nd");
  for (const std::string& text :
       {crash, Bytes("caf\xc3\xa9 = 1\n"), Bytes("listen = \"127.0.0.1:1\" \xc3\xa9\n"),
        Bytes("a = \"\\\xc3\xa9\"\n"), Bytes("a = \"\"\"x\\\n  \xc3\xa9\"\"\"\n"),
        Bytes("a = \"\"\"x\"\"\"\"\xc3\xa9\n"), Bytes("a = 0\"\\u00e9\\U\xd0\xa3" "9\"\n"),
        Bytes("a = 1=\"\xc3\xa9\"\n"), Bytes("a = [0\"\xc3\xa9\"]\n")}) {
    absl::StatusOr<ServerConfig> c = ParseConfig(text, "bad.toml");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("non-ASCII")) << text;
  }
  absl::StatusOr<ServerConfig> c = ParseConfig(crash, "crash.toml");
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("crash.toml:1:4: "));
}

// The check leaves what TOML allows alone: non-ASCII in strings of every
// kind, in comments, and a byte order mark.
TEST(ConfigFuzzRegression, NonAsciiInStringsAndCommentsStillParses) {
  const std::string text = Bytes(
      "\xef\xbb\xbf# caf\xc3\xa9 \xef\xb9\xbf\n"
      "data = \"/srv/caf\xc3\xa9\"  # \xc3\xa9\n"
      "tls_cert = '/etc/\xc3\xa9.pem'\n"
      "tls_key = \"\"\"/etc/\n\xc3\xa9\\\n   .pem\"\"\"\n"
      "metrics_listen = '''127.0.0.1:9100'''  # \xc3\xa9\n"
      "\"listen\" = \"127.0.0.1:7600\"\n");
  absl::StatusOr<ServerConfig> c = ParseConfig(text, "ok.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, "/srv/caf\xc3\xa9");
  EXPECT_EQ(c->tls_cert, "/etc/\xc3\xa9.pem");
  EXPECT_EQ(c->tls_key, "/etc/\n\xc3\xa9.pem");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9100");
  // metrics_listen is an address now: non-ASCII there is refused by name.
  EXPECT_FALSE(ParseConfig(Bytes("metrics_listen = '''\xc3\xa9'''\n"), "bad.toml").ok());
}

}  // namespace
}  // namespace pointledger::net
