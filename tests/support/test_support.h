// Shared helpers for the GoogleTest suites: where the corpus is, scratch directories, running the
// Python peer (/usr/bin/python3 with Debian's python3-torch) and the built mgcheck binary.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mgcheck::test {

std::string source_dir();                 // repository root
std::string binary_dir();                 // CMake build root
std::string corpus_dir();                 // <root>/corpus
std::string fixture_dir(const std::string& name);  // corpus/audiocraft-tiny/<name>
std::string mgcheck_binary();             // <build>/harness/mgcheck

// A fresh empty directory under the build tree's Testing/tmp, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `argv` (no shell), capturing stdout and stderr. Optional stdin text.
RunResult run_process(const std::vector<std::string>& argv, const std::string& stdin_text = "");
// Runs a Python snippet with /usr/bin/python3 (torch importable). `args` are passed as sys.argv[1:].
RunResult run_python(const std::string& code, const std::vector<std::string>& args = {});
bool python_torch_available();

// The Python peer is the independent reference of many tests. Where it is missing such a test skips,
// unless MGCHECK_REQUIRE_PYTHON=1 (scripts/test and scripts/sanitize set it): then the missing oracle
// fails the test, so CI never passes on skipped oracles. Every skip appends one line "<suite>.<test>: why"
// to python_skip_log(), which scripts/test counts. Use MGCHECK_REQUIRE_PYTHON_OR_SKIP at every such site.
bool python_required();          // MGCHECK_REQUIRE_PYTHON is "1"
std::string python_skip_log();   // $MGCHECK_PYTHON_SKIP_LOG, else <build>/Testing/python-oracle-skips.log
void record_python_skip(const std::string& why);

std::vector<uint8_t> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace mgcheck::test

// `available`: whether the Python oracle this test needs is there. If not: GTEST_SKIP (recorded), or FAIL
// under MGCHECK_REQUIRE_PYTHON=1. Returns from the enclosing void function (a TEST body or SetUp) either way.
#define MGCHECK_REQUIRE_PYTHON_OR_SKIP(available, why)                                                 \
  do {                                                                                                 \
    if (!(available)) {                                                                                \
      if (::mgcheck::test::python_required()) {                                                        \
        FAIL() << "the Python oracle is missing (" << (why) << ") and MGCHECK_REQUIRE_PYTHON=1";         \
      } else {                                                                                         \
        ::mgcheck::test::record_python_skip(why);                                                      \
        GTEST_SKIP() << (why);                                                                         \
      }                                                                                                \
    }                                                                                                  \
  } while (0)
