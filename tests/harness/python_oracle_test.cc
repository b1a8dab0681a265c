// MGCHECK_REQUIRE_PYTHON_OR_SKIP (tests/support/test_support.h): a test whose Python oracle is missing
// skips and is recorded in the skip log, or fails under MGCHECK_REQUIRE_PYTHON=1. Checked on a child run
// of this very binary whose oracle is forced missing, with the environment set each way.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_support.h"

namespace mgcheck {
namespace {

// Run only as a child of the tests below (disabled otherwise): the oracle is forced missing.
TEST(PythonOracleChild, DISABLED_ForcedMissingOracle) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(false, "forced missing for the helper's own test");
  ADD_FAILURE() << "the helper let a test with a missing oracle run on";
}

test::RunResult run_child(const std::string& require, const std::string& log) {
  std::vector<std::string> argv = {"/usr/bin/env", "-u", "MGCHECK_REQUIRE_PYTHON"};
  if (!require.empty()) argv.push_back("MGCHECK_REQUIRE_PYTHON=" + require);
  argv.push_back("MGCHECK_PYTHON_SKIP_LOG=" + log);
  argv.push_back(std::filesystem::read_symlink("/proc/self/exe").string());
  argv.push_back("--gtest_also_run_disabled_tests");
  argv.push_back("--gtest_filter=PythonOracleChild.DISABLED_ForcedMissingOracle");
  return test::run_process(argv);
}

TEST(PythonOracle, MissingOracleSkipsAndIsCountedByDefault) {
  test::TempDir dir("python-oracle");
  const std::string log = dir.file("skips.log");
  for (const std::string require : {"", "0"}) {
    SCOPED_TRACE("MGCHECK_REQUIRE_PYTHON='" + require + "'");
    auto r = run_child(require, log);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("[  SKIPPED ] PythonOracleChild.DISABLED_ForcedMissingOracle"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("the helper let a test"), std::string::npos) << r.out;
  }
  // One line per skip, naming the test and the reason.
  const std::string text = test::read_text(log);
  EXPECT_EQ(text,
            "PythonOracleChild.DISABLED_ForcedMissingOracle: forced missing for the helper's own test\n"
            "PythonOracleChild.DISABLED_ForcedMissingOracle: forced missing for the helper's own test\n");
}

TEST(PythonOracle, MissingOracleFailsWhenRequired) {
  test::TempDir dir("python-oracle");
  const std::string log = dir.file("skips.log");
  auto r = run_child("1", log);
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[  FAILED  ] PythonOracleChild.DISABLED_ForcedMissingOracle"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MGCHECK_REQUIRE_PYTHON=1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("the helper let a test"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(log)) << "a failure is not a skip";
}

}  // namespace
}  // namespace mgcheck
