#include "mgcheck/harness/cli_common.h"

#include <unistd.h>

#include <iostream>

namespace mgcheck::harness {

void add_report_options(CLI::App* cmd, ReportOptions& o) {
  cmd->add_option("--json", o.json, "write the JSON report to FILE ('-' = stdout)")->type_name("FILE");
  cmd->add_option("--junit", o.junit, "write a JUnit XML report to FILE ('-' = stdout)")->type_name("FILE");
  cmd->add_option("--sarif", o.sarif, "write a SARIF 2.1.0 report to FILE ('-' = stdout)")->type_name("FILE");
  cmd->add_flag("--strict", o.strict, "warnings fail the check (exit 1)");
  cmd->add_flag("--quiet,-q", o.quiet, "print only the verdict line");
  cmd->add_option("--color", o.color, "colour the console output")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");
  cmd->add_option("--limit", o.limits,
                  "override a limit, NAME=VALUE (repeatable; K/M/G/T suffixes; see docs/limits.md)")
      ->type_name("NAME=VALUE");
}

bool apply_limits(Report& report, const ReportOptions& o) {
  report.strict = o.strict;
  for (const auto& a : o.limits) {
    auto st = report.limits.set(a);
    if (!st) {
      report.findings.push(st.error());
      report.forced = Verdict::usage;
      return false;
    }
  }
  report.findings.set_cap(static_cast<size_t>(report.limits.max_findings));
  return true;
}

int finish_report(Report& report, const ReportOptions& o,
                  const std::function<void(const Report&, std::ostream&)>& print_body) {
  bool stdout_taken = o.json == "-" || o.junit == "-" || o.sarif == "-";
  int code = report.exit_code();
  std::string err;
  bool ok = true;
  // to_json/to_sarif escape every string (text.h); the replace handler only backs that up, so that no
  // byte from a file can turn a report into an internal error.
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  if (!o.json.empty()) ok = write_output(o.json, to_json(report).dump(2, ' ', false, kReplace), err) && ok;
  if (ok && !o.junit.empty()) ok = write_output(o.junit, to_junit(report), err) && ok;
  if (ok && !o.sarif.empty()) ok = write_output(o.sarif, to_sarif(report).dump(2, ' ', false, kReplace), err) && ok;
  if (!ok) {
    std::cerr << "mgcheck: " << err << "\n";
    return exit_code_of(Verdict::usage);
  }
  // The console summary goes to stdout, or to stderr when stdout carries a machine-readable report.
  std::ostream& out = stdout_taken ? std::cerr : std::cout;
  ConsoleOptions co;
  co.quiet = o.quiet;
  co.color = o.color == "always" || (o.color == "auto" && isatty(stdout_taken ? 2 : 1) && getenv("NO_COLOR") == nullptr);
  if (print_body && !o.quiet) print_body(report, out);
  print_console(report, out, co);
  return code;
}

int usage_error(Report& report, const ReportOptions& o, const std::string& message, const std::string& hint) {
  report.findings.push(format::make_error("MG-IO-USAGE", message, hint));
  report.forced = Verdict::usage;
  return finish_report(report, o);
}

}  // namespace mgcheck::harness

namespace mgcheck::harness {
int run_guarded(Report& report, const ReportOptions& o, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    report.findings.push(format::make_error("MG-IO-INTERNAL", std::string("internal error: ") + e.what(),
                                           "this is a bug in mgcheck: please report it with the file"));
    report.forced = Verdict::error;
    try {
      return finish_report(report, o);
    } catch (const std::exception& again) {
      std::cerr << "mgcheck: internal error while writing the report: " << again.what() << "\n";
      return exit_code_of(Verdict::error);
    }
  }
}
}  // namespace mgcheck::harness
