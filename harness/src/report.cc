#include "mgcheck/harness/report.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "mgcheck/format/utf8.h"
#include "mgcheck/harness/text.h"

namespace mgcheck::harness {

using format::Finding;
using format::Impact;
using format::Severity;
using nlohmann::json;

const char* verdict_name(Verdict v) noexcept {
  switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::fail: return "fail";
    case Verdict::unsafe: return "unsafe";
    case Verdict::usage: return "usage";
    case Verdict::error: return "error";
  }
  return "error";
}

int exit_code_of(Verdict v) noexcept {
  switch (v) {
    case Verdict::pass: return 0;
    case Verdict::fail: return 1;
    case Verdict::unsafe: return 2;
    case Verdict::usage: return 3;
    case Verdict::error: return 4;
  }
  return 4;
}

Verdict Report::verdict() const {
  if (forced) return *forced;
  if (findings.has_unsafe()) return Verdict::unsafe;  // unsafe wins over fail (contract §3)
  if (findings.has_errors()) return Verdict::fail;
  for (const auto& c : cells)
    if (c.status == "fail") return Verdict::fail;
  for (const auto& s : reference)
    if (s.status == "fail") return Verdict::fail;
  if (strict && findings.has_warnings()) return Verdict::fail;
  return Verdict::pass;
}

std::string code_layer(const std::string& code) {
  // MG-<LAYER>-<NAME>
  if (code.rfind("MG-", 0) != 0) return "";
  auto end = code.find('-', 3);
  return code.substr(3, end == std::string::npos ? std::string::npos : end - 3);
}

static json finding_json(const Finding& f) {
  json j = {{"code", f.code},
            {"severity", format::severity_name(f.severity)},
            {"file", f.file},
            {"offset", f.offset ? json(*f.offset) : json(nullptr)},
            {"name", f.name},
            {"message", f.message},
            {"hint", f.hint}};
  // The exact bytes of a name that is not valid UTF-8 ("name" then shows them as \xNN).
  if (!format::valid_utf8(f.name)) j["name_hex"] = hex_bytes(f.name);
  if (f.impact == Impact::unsafe) j["unsafe"] = true;
  return j;
}

json to_json(const Report& r) {
  json j;
  j["tool"] = "mgcheck";
  j["tool_version"] = MGCHECK_VERSION;
  j["command"] = r.command;
  j["target"] = r.target;
  Verdict v = r.verdict();
  j["verdict"] = verdict_name(v);
  j["exit_code"] = exit_code_of(v);
  j["findings"] = json::array();
  for (const auto& f : r.findings.items()) j["findings"].push_back(finding_json(f));
  if (r.findings.dropped() > 0) j["findings_dropped"] = r.findings.dropped();
  j["files"] = json::array();
  for (const auto& f : r.files)
    j["files"].push_back({{"path", f.path}, {"bytes", f.bytes}, {"sha256", f.sha256},
                          {"format", f.format}, {"tensors", f.tensors}});
  j["model"] = r.model;
  j["cells"] = json::array();
  for (const auto& c : r.cells) {
    json cj = {{"device", c.device}, {"precision", c.precision}, {"config", c.config},
               {"status", c.status}, {"reason", c.reason}, {"seconds", c.seconds},
               {"steps_per_s", c.steps_per_s}, {"rtf", c.rtf}, {"codes_shape", c.codes_shape}};
    if (c.audio) {
      const auto& a = *c.audio;
      cj["audio"] = {{"nan", a.nan}, {"inf", a.inf}, {"peak", a.peak}, {"rms_dbfs", a.rms_dbfs},
                     {"silent_run_s", a.silent_run_s}, {"clip_fraction", a.clip_fraction},
                     {"dc", a.dc}, {"stuck_fraction", a.stuck_fraction}};
    } else {
      cj["audio"] = nullptr;
    }
    for (auto it = c.extra.begin(); it != c.extra.end(); ++it) cj[it.key()] = it.value();
    j["cells"].push_back(cj);
  }
  j["reference"] = json::array();
  for (const auto& s : r.reference) {
    json sj = {{"stage", s.stage}, {"max_abs", s.max_abs}, {"tolerance", s.tolerance}, {"status", s.status}};
    if (!s.first_diff_index.empty()) sj["first_diff_index"] = s.first_diff_index;
    if (!s.note.empty()) sj["note"] = s.note;
    j["reference"].push_back(sj);
  }
  j["limits"] = json::object();
  for (const auto& e : format::Limits::table()) j["limits"][e.name] = r.limits.*(e.field);
  j["environment"] = r.environment;
  for (auto it = r.extra.begin(); it != r.extra.end(); ++it) j[it.key()] = it.value();
  return json_safe(j);  // names and messages carry bytes from the file: dump() must never throw
}

// ---- JUnit -----------------------------------------------------------------------------------------

// Attribute values and character data: text.h's xml_text (invalid UTF-8 and forbidden controls as \xNN).
static std::string xml_attr(const std::string& s) { return xml_text(s, true); }
static std::string xml_escape(const std::string& s) { return xml_text(s, false); }

std::string to_junit(const Report& r) {
  // One testcase per check (layer) that ran, plus one per matrix cell and per reference stage.
  std::map<std::string, std::vector<const Finding*>> by_layer;
  for (const auto& f : r.findings.items()) by_layer[code_layer(f.code)].push_back(&f);
  std::vector<std::string> checks = r.checks_run;
  for (const auto& [layer, _] : by_layer) {
    bool known = false;
    for (const auto& c : checks) known = known || c == layer;
    if (!known) checks.push_back(layer);
  }
  std::ostringstream cases;
  int tests = 0, failures = 0, skipped = 0;
  for (const auto& check : checks) {
    ++tests;
    cases << "    <testcase classname=\"mgcheck." << xml_attr(r.command) << "\" name=\"" << xml_attr(check)
          << "\">\n";
    bool failed = false;
    std::ostringstream body;
    for (const Finding* f : by_layer[check]) {
      bool counts = f->severity == Severity::error || (r.strict && f->severity == Severity::warning);
      if (!counts) continue;
      failed = true;
      body << f->code << " " << f->file;
      if (f->offset) body << "@" << *f->offset;
      if (!f->name.empty()) body << " [" << f->name << "]";
      body << ": " << f->message << " (hint: " << f->hint << ")\n";
    }
    if (failed) {
      ++failures;
      const Finding* first = nullptr;
      for (const Finding* f : by_layer[check])
        if (!first && (f->severity == Severity::error || (r.strict && f->severity == Severity::warning))) first = f;
      cases << "      <failure type=\"" << xml_attr(first->code) << "\" message=\"" << xml_attr(first->message)
            << "\">" << xml_escape(body.str()) << "</failure>\n";
    }
    std::ostringstream notes;
    for (const Finding* f : by_layer[check])
      if (f->severity != Severity::error) notes << f->code << ": " << f->message << "\n";
    if (!notes.str().empty()) cases << "      <system-out>" << xml_escape(notes.str()) << "</system-out>\n";
    cases << "    </testcase>\n";
  }
  for (const auto& c : r.cells) {
    ++tests;
    std::string name = c.device + "/" + c.precision + "/" + c.config;
    cases << "    <testcase classname=\"mgcheck." << xml_attr(r.command) << ".cell\" name=\"" << xml_attr(name)
          << "\" time=\"" << c.seconds << "\">\n";
    if (c.status == "fail") {
      ++failures;
      cases << "      <failure type=\"cell\" message=\"" << xml_attr(c.reason) << "\"/>\n";
    } else if (c.status == "skip") {
      ++skipped;
      cases << "      <skipped message=\"" << xml_attr(c.reason) << "\"/>\n";
    }
    cases << "    </testcase>\n";
  }
  for (const auto& s : r.reference) {
    ++tests;
    cases << "    <testcase classname=\"mgcheck." << xml_attr(r.command) << ".reference\" name=\""
          << xml_attr(s.stage) << "\">\n";
    if (s.status == "fail") {
      ++failures;
      std::ostringstream m;
      m << "max_abs " << s.max_abs << " > tolerance " << s.tolerance;
      cases << "      <failure type=\"MG-REF-MISMATCH\" message=\"" << xml_attr(m.str()) << "\"/>\n";
    }
    cases << "    </testcase>\n";
  }
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites name=\"mgcheck\" tests=\"" << tests << "\" failures=\"" << failures << "\">\n";
  x << "  <testsuite name=\"mgcheck " << xml_attr(r.command) << " " << xml_attr(r.target) << "\" tests=\""
    << tests << "\" failures=\"" << failures << "\" errors=\"0\" skipped=\"" << skipped << "\">\n";
  x << cases.str();
  x << "  </testsuite>\n</testsuites>\n";
  return x.str();
}

// ---- SARIF 2.1.0 -----------------------------------------------------------------------------------

json to_sarif(const Report& r) {
  json rules = json::array();
  std::map<std::string, bool> seen;
  json results = json::array();
  for (const auto& f : r.findings.items()) {
    if (!seen[f.code]) {
      seen[f.code] = true;
      rules.push_back({{"id", f.code},
                       {"shortDescription", {{"text", f.code}}},
                       {"help", {{"text", f.hint}}},
                       {"helpUri", "docs/error-codes.md#" + f.code}});
    }
    std::string level = f.severity == Severity::error ? "error"
                        : f.severity == Severity::warning ? "warning" : "note";
    json loc = {{"physicalLocation", {{"artifactLocation", {{"uri", f.file.empty() ? r.target : f.file}}}}}};
    if (f.offset) loc["physicalLocation"]["region"] = {{"byteOffset", *f.offset}};
    if (!f.name.empty()) loc["logicalLocations"] = json::array({{{"name", f.name}}});
    results.push_back({{"ruleId", f.code},
                       {"level", level},
                       {"message", {{"text", f.message + (f.hint.empty() ? "" : " Hint: " + f.hint)}}},
                       {"locations", json::array({loc})}});
  }
  json run = {{"tool", {{"driver", {{"name", "mgcheck"},
                                    {"version", MGCHECK_VERSION},
                                    {"informationUri", "docs/error-codes.md"},
                                    {"rules", rules}}}}},
              {"results", results}};
  return json_safe({{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"}, {"version", "2.1.0"},
          {"runs", json::array({run})}});
}

// ---- console ---------------------------------------------------------------------------------------

void print_console(const Report& r, std::ostream& out, const ConsoleOptions& o) {
  auto paint = [&](const char* code, const std::string& s) {
    return o.color ? std::string("\x1b[") + code + "m" + s + "\x1b[0m" : s;
  };
  if (!o.quiet) {
    for (const auto& f : r.files) {
      out << "file " << console_text(f.path) << "  " << f.bytes << " bytes  "
          << (f.format.empty() ? "?" : console_text(f.format)) << "  "
          << f.tensors << " tensors\n";
    }
    // Findings grouped by severity: errors first.
    for (Severity sev : {Severity::error, Severity::warning, Severity::note}) {
      for (const auto& f : r.findings.items()) {
        if (f.severity != sev) continue;
        const char* color = sev == Severity::error ? (f.impact == Impact::unsafe ? "1;35" : "1;31")
                            : sev == Severity::warning ? "1;33" : "36";
        out << paint(color, std::string(format::severity_name(sev))) << " " << paint("1", console_text(f.code)) << " ";
        if (!f.file.empty()) out << console_text(f.file);
        if (f.offset) out << "@" << *f.offset;
        if (!f.name.empty()) out << " [" << console_text(f.name) << "]";
        out << (f.file.empty() && !f.offset && f.name.empty() ? "" : ": ") << console_text(f.message) << "\n";
        if (!f.hint.empty()) out << "    hint: " << console_text(f.hint) << "\n";
      }
    }
    if (r.findings.dropped() > 0) out << r.findings.dropped() << " further findings not shown (max_findings)\n";
    if (!r.cells.empty()) {
      char line[512];
      std::snprintf(line, sizeof line, "%-6s %-5s %-14s %-5s %8s %9s %7s %6s %6s %9s %8s %8s %7s %7s\n", "device",
                    "prec", "config", "status", "time_s", "steps/s", "rtf", "nan", "inf", "peak", "rms_dB",
                    "clip", "dc", "stuck");
      out << line;
      for (const auto& c : r.cells) {
        if (c.audio) {
          const auto& a = *c.audio;
          std::snprintf(line, sizeof line,
                        "%-6s %-5s %-14s %-5s %8.2f %9.1f %7.2f %6llu %6llu %9.4f %8.1f %8.5f %7.4f %7.3f\n",
                        c.device.c_str(), c.precision.c_str(), c.config.c_str(), c.status.c_str(), c.seconds,
                        c.steps_per_s, c.rtf, static_cast<unsigned long long>(a.nan),
                        static_cast<unsigned long long>(a.inf), a.peak, a.rms_dbfs, a.clip_fraction, a.dc,
                        a.stuck_fraction);
        } else {
          std::snprintf(line, sizeof line, "%-6s %-5s %-14s %-5s %8.2f %9.1f %7.2f\n", c.device.c_str(),
                        c.precision.c_str(), c.config.c_str(), c.status.c_str(), c.seconds, c.steps_per_s, c.rtf);
        }
        out << line;
        if (!c.reason.empty()) out << "    " << console_text(c.reason) << "\n";
      }
    }
    for (const auto& s : r.reference) {
      out << "reference " << console_text(s.stage) << ": " << console_text(s.status) << " max_abs " << s.max_abs << " tol " << s.tolerance;
      if (!s.first_diff_index.empty()) {
        out << " first diff at [";
        for (size_t i = 0; i < s.first_diff_index.size(); ++i) out << (i ? "," : "") << s.first_diff_index[i];
        out << "]";
      }
      out << "\n";
    }
  }
  Verdict v = r.verdict();
  size_t errors = 0, warnings = 0, notes = 0;
  for (const auto& f : r.findings.items())
    (f.severity == Severity::error ? errors : f.severity == Severity::warning ? warnings : notes)++;
  const char* color = v == Verdict::pass ? "1;32" : v == Verdict::unsafe ? "1;35" : "1;31";
  out << paint(color, std::string("verdict: ") + verdict_name(v)) << " (" << errors << " errors, " << warnings
      << " warnings, " << notes << " notes)  " << console_text(r.command) << " " << console_text(r.target) << "\n";
}

bool write_output(const std::string& path, const std::string& text, std::string& error) {
  if (path == "-") {
    std::cout << text;
    if (!text.empty() && text.back() != '\n') std::cout << "\n";
    std::cout.flush();
    return true;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  f << text;
  if (!text.empty() && text.back() != '\n') f << "\n";
  f.close();
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace mgcheck::harness
