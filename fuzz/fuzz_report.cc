// Fuzz target: the fuzzed bytes are one checkpoint file. It goes through the code `mgcheck inspect` and
// `mgcheck quick FILE` ship (run_inspect, run_quick_checks: harness/src/inspect.cc, quick.cc), and both
// reports are rendered in every format mgcheck writes — console text, JSON, JUnit XML, SARIF and the HTML
// page — and each rendering is read back. Aborts when a rendering throws, when JSON/SARIF does not parse
// or its verdict/exit code differ from the report's, when a name's `name_hex` does not give back its
// bytes, when JUnit or the HTML page is not well-formed XML (markup_check.h), or when the console text
// is not valid UTF-8 or carries a control character other than newline.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "markup_check.h"
#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/utf8.h"
#include "mgcheck/harness/html_report.h"
#include "mgcheck/harness/inspect.h"
#include "mgcheck/harness/quick.h"
#include "mgcheck/harness/report.h"
#include "mgcheck/harness/text.h"

namespace {

using namespace mgcheck;
using nlohmann::json;

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_report: %s %s\n", what, detail.substr(0, 300).c_str());
  std::abort();
}

// name / name_hex of one JSON object against the bytes it names.
void check_name(const json& j, const std::string& bytes) {
  if (!j.contains("name") || !j["name"].is_string()) fail("a name is missing");
  if (j["name"].get<std::string>() != harness::escape_invalid_utf8(bytes)) fail("name is not the escaped bytes");
  if (format::valid_utf8(bytes)) {
    if (j.contains("name_hex")) fail("name_hex on a valid name");
  } else if (!j.contains("name_hex") || j["name_hex"].get<std::string>() != harness::hex_bytes(bytes)) {
    fail("name_hex does not give back the bytes");
  }
}

void check_console(const std::string& text) {
  if (!format::valid_utf8(text)) fail("console text is not valid UTF-8");
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\n') || c == 0x7F) fail("console text carries a control character");
}

void render_all(const harness::Report& r) {
  // Console (with the inspect body, as the CLI prints it), colourless.
  std::ostringstream console;
  harness::print_inspect(r, console);
  harness::print_console(r, console, harness::ConsoleOptions{});
  check_console(console.str());

  // JSON: strict dump (throws on invalid UTF-8), parse back, compare what the verdict says.
  const std::string text = harness::to_json(r).dump(2);
  const json doc = json::parse(text);
  if (doc.at("exit_code").get<int>() != r.exit_code()) fail("JSON exit_code differs");
  if (doc.at("verdict").get<std::string>() != harness::verdict_name(r.verdict())) fail("JSON verdict differs");
  const auto& items = r.findings.items();
  if (doc.at("findings").size() != items.size()) fail("JSON finding count differs");
  for (size_t i = 0; i < items.size(); ++i) {
    check_name(doc["findings"][i], items[i].name);
    if (doc["findings"][i].at("message").get<std::string>() != harness::escape_invalid_utf8(items[i].message))
      fail("a message is not its escaped bytes");
  }

  // SARIF: one result per finding.
  const json sarif = json::parse(harness::to_sarif(r).dump(2));
  if (sarif.at("runs").at(0).at("results").size() != items.size()) fail("SARIF result count differs");

  // JUnit and the HTML page: well-formed XML.
  if (auto why = fuzz::xml_wellformed(harness::to_junit(r)); !why.empty()) fail("JUnit:", why);
  if (auto why = fuzz::xml_wellformed(harness::render_html(r, {})); !why.empty()) fail("HTML:", why);
}

// inspect's records, tensors and globals in the JSON against the raw names run_inspect stored.
void check_inspect_names(const harness::Report& r) {
  if (!r.extra.contains("inspect") || r.extra["inspect"].empty()) return;
  const json doc = json::parse(harness::to_json(r).dump());
  const json& raw = r.extra["inspect"];
  for (const char* list : {"records", "tensors", "globals"}) {
    if (doc["inspect"].at(list).size() != raw.at(list).size()) fail("inspect list size differs:", list);
    for (size_t i = 0; i < raw[list].size(); ++i)
      check_name(doc["inspect"][list][i], raw[list][i].at("name").get<std::string>());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // inspect, from memory, through the function `mgcheck inspect` calls after mapping the file.
    format::MemorySource src(data, size, "fuzz.pt");
    harness::Report ri;
    ri.limits.max_pickle_opcodes = 1000000;
    harness::run_inspect(src, "fuzz.pt", ri);
    render_all(ri);
    check_inspect_names(ri);

    // quick FILE: the pipeline `mgcheck quick` runs, serving the one file from memory.
    harness::MemoryFiles files;
    format::Target target;
    target.kind = format::TargetKind::file;
    target.arg = target.lm_path = target.compression_path = "state_dict.bin";
    target.lm_exists = true;
    files.add(target.lm_path, std::span<const uint8_t>(data, size));
    harness::QuickOptions opts;
    opts.env = format::Env{};
    opts.hash = false;
    harness::Report rq;
    rq.command = "quick";
    rq.limits.max_pickle_opcodes = 1000000;
    rq.findings.set_cap(static_cast<size_t>(rq.limits.max_findings));
    (void)harness::run_quick_checks(target, files, opts, rq);
    render_all(rq);
  } catch (const std::exception& e) {
    fail("exception:", e.what());
  }
  return 0;
}
