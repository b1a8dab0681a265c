// The one report every checking command fills, and its renderings: console, JSON (contract §6), JUnit XML
// and SARIF 2.1.0. The verdict and exit code are derived here and nowhere else (contract §3).
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"

namespace mgcheck::harness {

enum class Verdict { pass, fail, unsafe, usage, error };
const char* verdict_name(Verdict v) noexcept;
int exit_code_of(Verdict v) noexcept;

struct FileInfo {
  std::string path;
  uint64_t bytes = 0;
  std::string sha256;
  std::string format;   // zip | legacy | ... | "" when unreadable
  uint64_t tensors = 0;
};

struct AudioMetrics {
  uint64_t nan = 0, inf = 0;
  double peak = 0, rms_dbfs = 0, silent_run_s = 0, clip_fraction = 0, dc = 0, stuck_fraction = 0;
};

struct CellResult {
  std::string device, precision, config;
  std::string status;  // pass | fail | skip
  std::string reason;
  double seconds = 0, steps_per_s = 0, rtf = 0;
  std::vector<int64_t> codes_shape;
  std::optional<AudioMetrics> audio;
  nlohmann::json extra = nlohmann::json::object();  // e.g. error vs fp32, tolerances
};

struct ReferenceStage {
  std::string stage;
  double max_abs = 0, tolerance = 0;
  std::string status;  // pass | fail | info
  std::vector<int64_t> first_diff_index;
  std::string note;
};

// A named check for JUnit (one testcase per check): which findings codes belong to it is decided by the
// code's layer (MG-ZIP-* → "container", ...), see report.cc.
struct Report {
  std::string command;
  std::string target;
  std::vector<std::string> checks_run;  // layers/checks that ran, for JUnit testcases
  format::Findings findings;
  std::vector<FileInfo> files;
  nlohmann::json model = nlohmann::json::object();
  std::vector<CellResult> cells;
  std::vector<ReferenceStage> reference;
  format::Limits limits;
  nlohmann::json environment = nlohmann::json::object();
  nlohmann::json extra = nlohmann::json::object();  // command-specific structure (inspect's tree, ...)
  bool strict = false;
  std::optional<Verdict> forced;  // usage / error set by the CLI edge

  Verdict verdict() const;
  int exit_code() const { return exit_code_of(verdict()); }
};

nlohmann::json to_json(const Report& r);
std::string to_junit(const Report& r);
nlohmann::json to_sarif(const Report& r);

struct ConsoleOptions {
  bool color = false;
  bool quiet = false;
};
void print_console(const Report& r, std::ostream& out, const ConsoleOptions& opts);

// Writes `text` to `path` ("-" = stdout). Returns false with a message on failure.
bool write_output(const std::string& path, const std::string& text, std::string& error);

// The layer of a code: "MG-ZIP-CRC" → "ZIP".
std::string code_layer(const std::string& code);

}  // namespace mgcheck::harness
