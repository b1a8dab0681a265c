// What every checking command shares at the CLI edge: report options, limits, rendering and exit codes.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

struct ReportOptions {
  std::string json, junit, sarif;
  bool strict = false;
  bool quiet = false;
  std::string color = "auto";
  std::vector<std::string> limits;  // NAME=VALUE
};

void add_report_options(CLI::App* cmd, ReportOptions& o);

// Applies --limit assignments to report.limits; on a bad one, records the finding, forces `usage`.
bool apply_limits(Report& report, const ReportOptions& o);

// Renders the console summary (unless a machine-readable report goes to stdout) and the requested
// files; returns the process exit code. `print_body` prints command-specific text before the findings.
int finish_report(Report& report, const ReportOptions& o,
                  const std::function<void(const Report&, std::ostream&)>& print_body = nullptr);

// A usage error (exit 3) for a TARGET that does not exist at all, etc.
int usage_error(Report& report, const ReportOptions& o, const std::string& message, const std::string& hint);

}  // namespace mgcheck::harness

namespace mgcheck::harness {
// Runs a command body; an escaped exception (a bug) becomes verdict `error` (exit 4) with finding
// MG-IO-INTERNAL, and the requested reports are still written as valid documents.
int run_guarded(Report& report, const ReportOptions& o, const std::function<int()>& body);
}  // namespace mgcheck::harness
