// Every finding code used in the source is documented exactly once in docs/error-codes.md (contract §6).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "test_support.h"

namespace fs = std::filesystem;
using mgcheck::test::read_text;
using mgcheck::test::source_dir;

namespace {
std::set<std::string> codes_in_source() {
  static const std::regex code_re(R"(MG-(IO|ZIP|PICKLE|TENSOR|SCHEMA|CONFIG|SHAPE|WEIGHTS|MODEL|AUDIO|REF)-[A-Z0-9]+(-[A-Z0-9]+)*)");
  std::set<std::string> codes;
  for (const char* dir : {"format", "model", "harness"}) {
    fs::path root = fs::path(source_dir()) / dir;
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      auto ext = e.path().extension().string();
      if (ext != ".cc" && ext != ".h") continue;
      std::string text = read_text(e.path().string());
      for (std::sregex_iterator it(text.begin(), text.end(), code_re), end; it != end; ++it) {
        std::string c = it->str();
        // A prefix used to build codes (e.g. "MG-PICKLE-LIMIT-" + name) ends with '-' and is not a code.
        size_t after = static_cast<size_t>(it->position() + it->length());
        if (after < text.size() && text[after] == '-') continue;
        codes.insert(c);
      }
    }
  }
  return codes;
}
}  // namespace

TEST(ErrorCodes, EveryCodeInSourceIsDocumentedOnce) {
  std::string doc = read_text(source_dir() + "/docs/error-codes.md");
  std::map<std::string, int> rows;
  static const std::regex row_re(R"(^\| (MG-[A-Z0-9-]+) \|)", std::regex::multiline);
  for (std::sregex_iterator it(doc.begin(), doc.end(), row_re), end; it != end; ++it) rows[(*it)[1]]++;
  auto codes = codes_in_source();
  ASSERT_FALSE(codes.empty());
  for (const auto& c : codes) {
    int n = rows.count(c) ? rows.at(c) : 0;
    EXPECT_EQ(n, 1) << c << " is used in the source but documented " << n
                    << " times in docs/error-codes.md (run scripts/gen-error-codes)";
  }
  for (const auto& [c, n] : rows) EXPECT_EQ(n, 1) << c << " listed " << n << " times";
}
