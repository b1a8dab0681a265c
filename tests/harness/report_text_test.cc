// Every report format stays a valid document whatever bytes a name, key, message or string holds, and
// the escaped text comes back out of an independent parser: Python's json and xml.etree, and xmllint
// (libxml2) where installed. The CLI runs on checkpoints that torch.save wrote and that were then given
// hostile names (tests/harness/make_report_seeds.py): bad input is exit 1/2 with a valid report, never 4.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "mgcheck/harness/html_report.h"
#include "mgcheck/harness/report.h"
#include "mgcheck/harness/text.h"
#include "test_support.h"

namespace {

using namespace mgcheck;
using mgcheck::test::TempDir;
using nlohmann::json;

// Invalid UTF-8, a lone surrogate's encoding, controls (C0, ESC, DEL, C1 CSI), and markup characters.
const std::string kHostile = std::string("a\xff\xfe b\xed\xa0\x80 c\x01\x1b[31m\x7f d\xc2\x9b e]]> f<g&h\"i'j\tk\nl\rm") +
                             "\xe2\x82\xac";  // ends with a valid '€'
// What every format shows for the invalid bytes (kept: valid text, euro sign included).
const std::string kShown = std::string("a\\xFF\\xFE b\\xED\\xA0\\x80 c\x01\x1b[31m\x7f d\xc2\x9b e]]> f<g&h\"i'j\tk\nl\rm") +
                           "\xe2\x82\xac";

harness::Report hostile_report() {
  harness::Report r;
  r.command = "inspect";
  r.target = "dir/\xff.pt";
  r.checks_run = {"PICKLE"};
  format::Finding f = format::make_error("MG-PICKLE-UTF8", "string " + kHostile + " is bad", "hint " + kHostile);
  f.file = "dir/\xff.pt";
  f.offset = 7;
  f.name = kHostile;
  r.findings.push(f);
  r.extra["inspect"] = {{"records", json::array({{{"name", kHostile}}})}};
  return r;
}

bool have_xmllint() { return test::run_process({"sh", "-c", "command -v xmllint"}).exit_code == 0; }

TEST(ReportText, EscapeFunctions) {
  EXPECT_EQ(harness::escape_invalid_utf8("ok \xe2\x82\xac"), "ok \xe2\x82\xac");
  EXPECT_EQ(harness::escape_invalid_utf8("a\xff"), "a\\xFF");
  EXPECT_EQ(harness::escape_invalid_utf8("\xed\xa0\x80"), "\\xED\\xA0\\x80");       // lone surrogate
  EXPECT_EQ(harness::escape_invalid_utf8("\xc0\xaf"), "\\xC0\\xAF");                 // overlong '/'
  EXPECT_EQ(harness::escape_invalid_utf8("\xe2\x82"), "\\xE2\\x82");                 // truncated
  EXPECT_EQ(harness::escape_invalid_utf8("\xf4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(harness::console_text("a\x1b[2J\n\x7f\xc2\x9b\xc3\xa9"), "a\\x1B[2J\\x0A\\x7F\\xC2\\x9B\xc3\xa9");
  EXPECT_EQ(harness::xml_text("<&>\"'\t\n\r\x01\xef\xbf\xbe", true),
            "&lt;&amp;&gt;&quot;&apos;&#9;&#10;&#13;\\x01\\xEF\\xBF\\xBE");
  EXPECT_EQ(harness::xml_text("\t\n", false), "\t\n");
  EXPECT_EQ(harness::hex_bytes(std::string("a\xff\0", 3)), "61ff00");
  json j = {{"k\xff", {"v\xfe", 1}}};
  EXPECT_EQ(harness::json_safe(j).dump(), "{\"k\\\\xFF\":[\"v\\\\xFE\",1]}");
}

// JSON and SARIF: parsed by Python's json; the name shows the escaped text and name_hex the exact bytes.
TEST(ReportText, JsonAndSarifParseAndRoundTrip) {
  TempDir dir("report-text");
  harness::Report r = hostile_report();
  std::string js, ss;
  ASSERT_NO_THROW(js = harness::to_json(r).dump(2));
  ASSERT_NO_THROW(ss = harness::to_sarif(r).dump(2));
  test::write_text(dir.file("r.json"), js);
  test::write_text(dir.file("r.sarif"), ss);
  test::write_text(dir.file("shown"), kShown);
  test::write_file(dir.file("raw"), std::vector<uint8_t>(kHostile.begin(), kHostile.end()));
  auto res = test::run_python(R"(
import json, sys
d = json.load(open(sys.argv[1], encoding='utf-8'))
shown = open(sys.argv[3], 'rb').read().decode('utf-8')
raw = open(sys.argv[4], 'rb').read()
f = d['findings'][0]
assert f['name'] == shown, (f['name'], shown)
assert bytes.fromhex(f['name_hex']) == raw
assert f['message'] == 'string ' + shown + ' is bad'
assert d['target'] == 'dir/\\xFF.pt' and f['file'] == 'dir/\\xFF.pt'
rec = d['inspect']['records'][0]
assert rec['name'] == shown
s = json.load(open(sys.argv[2], encoding='utf-8'))
res = s['runs'][0]['results'][0]
assert res['message']['text'].startswith('string ' + shown)
assert res['locations'][0]['logicalLocations'][0]['name'] == shown
print('ok')
)",
                              {dir.file("r.json"), dir.file("r.sarif"), dir.file("shown"), dir.file("raw")});
  EXPECT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(res.out.find("ok"), std::string::npos);
}

// JUnit: well-formed for xmllint and for Python's parser; the failure message attribute gives back the
// text exactly, tab/newline/CR included (character references), forbidden controls as \xNN.
TEST(ReportText, JunitIsWellFormedAndRoundTrips) {
  TempDir dir("report-text");
  std::string x = harness::to_junit(hostile_report());
  test::write_text(dir.file("r.xml"), x);
  if (have_xmllint()) {
    auto lint = test::run_process({"xmllint", "--noout", dir.file("r.xml")});
    EXPECT_EQ(lint.exit_code, 0) << lint.err;
  }
  auto res = test::run_python(R"(
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
fail = root.find('.//failure')
want = 'string a\\xFF\\xFE b\\xED\\xA0\\x80 c\\x01\\x1B[31m\x7f d\u009b e]]> f<g&h"i\'j\tk\nl\rm\u20ac is bad'
assert fail.get('message') == want, repr(fail.get('message'))
assert 'MG-PICKLE-UTF8' in fail.text
assert root.find('testsuite').get('name') == 'mgcheck inspect dir/\\xFF.pt'
print('ok')
)",
                              {dir.file("r.xml")});
  EXPECT_EQ(res.exit_code, 0) << res.err;
}

// The HTML page: well-formed XML (xmllint) and the findings cell holds the escaped message.
TEST(ReportText, HtmlIsWellFormedAndRoundTrips) {
  TempDir dir("report-text");
  test::write_text(dir.file("r.html"), harness::render_html(hostile_report(), {}));
  if (have_xmllint()) {
    auto lint = test::run_process({"xmllint", "--noout", dir.file("r.html")});
    EXPECT_EQ(lint.exit_code, 0) << lint.err;
    auto lint_html = test::run_process({"xmllint", "--html", "--noout", dir.file("r.html")});
    EXPECT_EQ(lint_html.exit_code, 0) << lint_html.err;
  }
  auto res = test::run_python(R"(
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cells = [td for td in root.iter('td')]
want = 'string a\\xFF\\xFE b\\xED\\xA0\\x80 c\\x01\\x1B[31m\x7f d\u009b e]]> f<g&h"i\'j\tk\nl\rm\u20ac is bad'
assert any(td.text == want for td in cells), [td.text for td in cells][:8]
print('ok')
)",
                              {dir.file("r.html")});
  EXPECT_EQ(res.exit_code, 0) << res.err;
}

// Console: valid UTF-8, no control character but newline, the invalid bytes and controls as \xNN.
TEST(ReportText, ConsoleHasNoRawControlsOrInvalidBytes) {
  std::ostringstream out;
  harness::print_console(hostile_report(), out, harness::ConsoleOptions{});
  const std::string s = out.str();
  for (unsigned char c : s) EXPECT_FALSE((c < 0x20 && c != '\n') || c == 0x7F) << int(c);
  EXPECT_EQ(harness::escape_invalid_utf8(s), s);  // valid UTF-8
  EXPECT_NE(s.find("a\\xFF\\xFE b\\xED\\xA0\\x80 c\\x01\\x1B[31m\\x7F d\\xC2\\x9B e]]> f<g&h\"i'j\\x09k\\x0Al\\x0Dm"),
            std::string::npos)
      << s;
}

// The CLI on torch.save files with hostile names: exit 1 (or 2 for the refused pickle), never 4, and every
// report parses. The refused file's inspect lists what it tried.
class CliHostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::python_torch_available()) return;
    dir_ = new TempDir("report-text-cli");
    auto r = test::run_process({"/usr/bin/python3", test::source_dir() + "/tests/harness/make_report_seeds.py",
                                dir_->path()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(dir_ != nullptr, "needs /usr/bin/python3 with torch");
  }
  static TempDir* dir_;
};
TempDir* CliHostile::dir_ = nullptr;

TEST_F(CliHostile, BadNamesFailWithValidReports) {
  struct Case {
    const char* file;
    const char* code;  // a finding the file must get
  } cases[] = {{"key_invalid.pt", "MG-PICKLE-UTF8"},
               {"key_surrogate.pt", "MG-PICKLE-UTF8"},
               {"record_invalid.pt", "MG-ZIP-NAME-UTF8"},
               {"key_markup.pt", "MG-ZIP-ZIP64-MISSING"}};
  for (const auto& c : cases) {
    for (const char* command : {"inspect", "quick"}) {
      SCOPED_TRACE(std::string(command) + " " + c.file);
      const std::string path = dir_->file(c.file);
      auto r = test::run_process({test::mgcheck_binary(), command, path, "--json", "-", "--quiet"});
      EXPECT_EQ(r.exit_code, 1) << r.err;
      json d;
      ASSERT_NO_THROW(d = json::parse(r.out));
      EXPECT_EQ(d["exit_code"], 1);
      bool found = false;
      for (const auto& f : d["findings"]) found = found || f["code"] == c.code;
      EXPECT_TRUE(found);
      for (const char* fmt : {"--junit", "--sarif"}) {
        auto o = test::run_process({test::mgcheck_binary(), command, path, fmt, dir_->file("out"), "--quiet"});
        EXPECT_EQ(o.exit_code, 1) << o.err;
        if (std::string(fmt) == "--junit" && have_xmllint()) {
          auto lint = test::run_process({"xmllint", "--noout", dir_->file("out")});
          EXPECT_EQ(lint.exit_code, 0) << lint.err;
        }
        if (std::string(fmt) == "--sarif") EXPECT_NO_THROW((void)json::parse(test::read_text(dir_->file("out"))));
      }
    }
  }
  // The key with invalid bytes: the tensor's name escaped, name_hex its exact bytes.
  auto r = test::run_process({test::mgcheck_binary(), "inspect", dir_->file("key_invalid.pt"), "--json", "-"});
  json d = json::parse(r.out);
  bool found = false;
  for (const auto& t : d["inspect"]["tensors"])
    if (t.contains("name_hex")) {
      found = true;
      EXPECT_EQ(t["name"], "key\\xFF\\xFEACEHOLDERXYZ");
      EXPECT_EQ(t["name_hex"], harness::hex_bytes("key\xff\xfe" "ACEHOLDERXYZ"));
    }
  EXPECT_TRUE(found);
  // A record name with invalid bytes: MG-ZIP-NAME-UTF8 carries the name's bytes, the records list too.
  r = test::run_process({test::mgcheck_binary(), "inspect", dir_->file("record_invalid.pt"), "--json", "-"});
  d = json::parse(r.out);
  const std::string rec_bytes = "n\xff\x01<&" "ACEHOLDERXYZ";
  found = false;
  for (const auto& f : d["findings"])
    if (f["code"] == "MG-ZIP-NAME-UTF8") {
      found = true;
      EXPECT_EQ(f["name_hex"], harness::hex_bytes("archive/" + rec_bytes));
    }
  EXPECT_TRUE(found);
  found = false;
  for (const auto& rec : d["inspect"]["records"])
    if (rec.contains("name_hex")) found = rec["name_hex"] == harness::hex_bytes(rec_bytes);
  EXPECT_TRUE(found);
}

// A data.pkl that references an allowed global, then os.system + REDUCE, then stops on a byte that is no
// opcode: the verdict is unsafe, and inspect lists both globals with their offsets and the records.
TEST_F(CliHostile, RefusedFileShowsWhatItTried) {
  auto r = test::run_process({test::mgcheck_binary(), "inspect", dir_->file("refused.pt"), "--json", "-"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  json d = json::parse(r.out);
  const json& ins = d["inspect"];
  EXPECT_EQ(ins["complete"], false);
  EXPECT_EQ(ins["stopped_at"]["code"], "MG-PICKLE-UNKNOWN-OPCODE");
  EXPECT_EQ(ins["format"], "zip");
  ASSERT_EQ(ins["records"].size(), 2u);
  EXPECT_EQ(ins["records"][0]["name"], "data.pkl");
  EXPECT_EQ(ins["records"][1]["name"], "version");
  // Offsets from the archive's own layout: data.pkl's data starts after its local header.
  const uint64_t data = ins["records"][0]["offset"].get<uint64_t>();
  ASSERT_EQ(ins["globals"].size(), 2u);
  EXPECT_EQ(ins["globals"][0]["name"], "collections.OrderedDict");
  EXPECT_EQ(ins["globals"][0]["class"], "allowed");
  EXPECT_EQ(ins["globals"][0]["first_offset"].get<uint64_t>(), data + 2);  // after PROTO 2
  EXPECT_EQ(ins["globals"][1]["name"], "os.system");
  EXPECT_EQ(ins["globals"][1]["class"], "unsafe");
  EXPECT_EQ(ins["globals"][1]["first_offset"].get<uint64_t>(), data + 32);
  // Console shows the same.
  auto c = test::run_process({test::mgcheck_binary(), "inspect", dir_->file("refused.pt")});
  EXPECT_NE(c.out.find("os.system  unsafe"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("collections.OrderedDict  allowed"), std::string::npos) << c.out;
}

// The same refused pickle as the object pickle of a legacy file (header pickles written by Python's pickle
// module as torch.save writes them), and as a raw pickle file: inspect lists both globals at the file
// offsets Python's pickletools reports, and the verdict is unsafe.
TEST(InspectRefused, LegacyAndRawPickleShowWhatTheyTried) {
  TempDir dir("inspect-refused-legacy");
  auto py = test::run_python(R"PY(
import io, pickle, pickletools, sys
obj = b"\x80\x02ccollections\nOrderedDict\n)Rq\x000cos\nsystem\nX\x04\x00\x00\x00echo\x85R\xff"
head = io.BytesIO()
pickle.dump(0x1950a86a20f9469cfc6c, head, protocol=2)
pickle.dump(1001, head, protocol=2)
pickle.dump({'protocol_version': 1001, 'little_endian': True,
             'type_sizes': {'short': 2, 'int': 4, 'long': 4}}, head, protocol=2)
head = head.getvalue()
open(sys.argv[1] + '/legacy.pt', 'wb').write(head + obj)
open(sys.argv[1] + '/raw.pkl', 'wb').write(obj)
pos = []
try:
    for op, arg, p in pickletools.genops(obj):
        if op.name == 'GLOBAL':
            pos.append(p)
except ValueError:
    pass  # the byte that is no opcode
print(len(head), *pos)
)PY",
                             {dir.path()});
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(py.exit_code == 0, "python3 not available");
  std::istringstream nums(py.out);
  uint64_t head = 0, g1 = 0, g2 = 0;
  ASSERT_TRUE(nums >> head >> g1 >> g2) << py.out;
  struct Case {
    const char* file;
    const char* format;
    uint64_t base;  // file offset of the object pickle
  } cases[] = {{"legacy.pt", "legacy", head}, {"raw.pkl", "unknown", 0}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto r = test::run_process({test::mgcheck_binary(), "inspect", dir.file(c.file), "--json", "-"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    json d;
    ASSERT_NO_THROW(d = json::parse(r.out)) << r.out;
    const json& ins = d["inspect"];
    ASSERT_TRUE(ins.is_object()) << r.out;
    EXPECT_EQ(ins["complete"], false);
    EXPECT_EQ(ins["format"], c.format);
    EXPECT_TRUE(ins.contains("stopped_at")) << r.out;
    ASSERT_EQ(ins["globals"].size(), 2u) << r.out;
    EXPECT_EQ(ins["globals"][0]["name"], "collections.OrderedDict");
    EXPECT_EQ(ins["globals"][0]["class"], "allowed");
    EXPECT_EQ(ins["globals"][0]["first_offset"].get<uint64_t>(), c.base + g1);
    EXPECT_EQ(ins["globals"][1]["name"], "os.system");
    EXPECT_EQ(ins["globals"][1]["class"], "unsafe");
    EXPECT_EQ(ins["globals"][1]["first_offset"].get<uint64_t>(), c.base + g2);
    bool unsafe_global = false;
    for (const auto& f : d["findings"])
      unsafe_global = unsafe_global || (f["code"] == "MG-PICKLE-UNSAFE-GLOBAL" && f["offset"] == c.base + g2);
    EXPECT_TRUE(unsafe_global) << r.out;
  }
}

}  // namespace
