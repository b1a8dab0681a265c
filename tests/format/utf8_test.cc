// The format layer's one strict UTF-8 validator (utf8.h) against CPython's strict UTF-8 decoder, and the
// one hex formatter (hex.h). The pickle machine, the zip reader and the pickle writer all use these.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mgcheck/format/hex.h"
#include "mgcheck/format/utf8.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

namespace t = mgcheck::test;

// Every 1- and 2-byte string, every 3-byte string whose last byte is at a continuation boundary, and
// every 4-byte string whose last two bytes are at one: covers overlong forms (C0/C1, E0 80..9F,
// F0 80..8F), surrogates (ED A0..BF), values above U+10FFFF (F4 90.., F5..F7), stray continuation bytes
// and truncated sequences.
std::vector<std::string> candidates() {
  std::vector<std::string> out;
  for (int a = 0; a < 256; ++a) out.push_back(std::string(1, static_cast<char>(a)));
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) out.push_back({static_cast<char>(a), static_cast<char>(b)});
  const int edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  for (int a = 0xC0; a < 256; ++a)
    for (int b = 0; b < 256; ++b)
      for (int c : edges) {
        out.push_back({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
        if (a >= 0xF0)
          for (int d : {0x41, 0x80, 0xBF})
            out.push_back({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c), static_cast<char>(d)});
      }
  return out;
}

std::string to_hex(const std::string& s) {
  static constexpr char d[] = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += d[c >> 4];
    h += d[c & 15];
  }
  return h;
}

TEST(Utf8, AgreesWithPythonStrictDecoder) {
  const auto all = candidates();
  t::TempDir dir("utf8");
  std::string text;
  for (const auto& s : all) text += to_hex(s) + "\n";
  t::write_text(dir.file("in.txt"), text);
  auto r = t::run_python(
      "import sys\n"
      "out = []\n"
      "for line in open(sys.argv[1]):\n"
      "    b = bytes.fromhex(line.strip())\n"
      "    try:\n"
      "        b.decode('utf-8', 'strict'); out.append('1')\n"
      "    except UnicodeDecodeError:\n"
      "        out.append('0')\n"
      "print(''.join(out))\n",
      {dir.file("in.txt")});
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(r.exit_code == 0, "python3 not available");
  std::string want = r.out;
  while (!want.empty() && (want.back() == '\n' || want.back() == '\r')) want.pop_back();
  ASSERT_EQ(want.size(), all.size());
  size_t valid = 0, mismatches = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const bool ours = valid_utf8(all[i]);
    valid += ours;
    if (ours != (want[i] == '1') && ++mismatches <= 10)
      ADD_FAILURE() << to_hex(all[i]) << ": mgcheck " << ours << ", Python " << want[i];
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(valid, 1000u);  // the candidate set holds valid strings as well as invalid ones
}

TEST(Utf8, SequenceLengthAtBoundaries) {
  EXPECT_EQ(utf8_sequence_length("A", 0), 1u);
  EXPECT_EQ(utf8_sequence_length("\xC2\x80", 0), 2u);
  EXPECT_EQ(utf8_sequence_length("\xC1\xBF", 0), 0u);              // overlong U+007F
  EXPECT_EQ(utf8_sequence_length("\xE0\x9F\xBF", 0), 0u);          // overlong U+07FF
  EXPECT_EQ(utf8_sequence_length("\xED\x9F\xBF", 0), 3u);          // U+D7FF
  EXPECT_EQ(utf8_sequence_length("\xED\xA0\x80", 0), 0u);          // U+D800, a surrogate
  EXPECT_EQ(utf8_sequence_length("\xEE\x80\x80", 0), 3u);          // U+E000
  EXPECT_EQ(utf8_sequence_length("\xF0\x8F\xBF\xBF", 0), 0u);      // overlong U+FFFF
  EXPECT_EQ(utf8_sequence_length("\xF4\x8F\xBF\xBF", 0), 4u);      // U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xF4\x90\x80\x80", 0), 0u);      // U+110000
  EXPECT_EQ(utf8_sequence_length(std::string_view("\xE2\x82", 2), 0), 0u);  // truncated
}

TEST(Hex, Formats) {
  EXPECT_EQ(hex_string(0), "0x0");
  EXPECT_EQ(hex_string(0x8a), "0x8a");
  EXPECT_EQ(hex_string(5, 2), "0x05");
  EXPECT_EQ(hex_string(0xff, 2), "0xff");
  EXPECT_EQ(hex_string(0x04034b50), "0x4034b50");
  EXPECT_EQ(hex_string(0xffffffffffffffffull), "0xffffffffffffffff");
  EXPECT_EQ(hex_string(0x1, 8), "0x00000001");
}

}  // namespace
}  // namespace mgcheck::format
