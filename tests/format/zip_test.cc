// The strict zip reader against archives written by torch 1.13 (torch.save, torch.jit.save and torch's
// own PyTorchFileWriter) and by Python's zipfile, and against byte patches of them. Expected offsets come
// from tests/format/zip_fixtures.py, which walks each archive with struct and cross-checks with zipfile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "mgcheck/format/container.h"
#include "test_support.h"

namespace mf = mgcheck::format;
namespace mt = mgcheck::test;

namespace {

struct Entry {
  std::string name;
  uint64_t cd = 0, lho = 0, extra = 0, data = 0, size = 0, usize = 0;
  uint32_t crc = 0;
  uint16_t flags = 0, method = 0;
  std::optional<uint64_t> dd;
};

struct Layout {
  uint64_t size = 0, eocd = 0, cd_offset = 0, cd_size = 0;
  std::optional<uint64_t> loc, z64;
  std::vector<Entry> entries;
  const Entry& entry(const std::string& name) const {
    for (const auto& e : entries)
      if (e.name == name) return e;
    throw std::runtime_error("no entry " + name);
  }
};

struct Outcome {
  bool ok = false;
  std::optional<mf::Finding> fatal;
  mf::Findings findings;
  std::optional<mf::ZipArchive> archive;

  // The finding with `code` (the fatal one or a pushed one); nullptr when absent.
  const mf::Finding* get(const std::string& code) const {
    if (fatal && fatal->code == code) return &*fatal;
    for (const auto& f : findings.items())
      if (f.code == code) return &f;
    return nullptr;
  }
  bool has(const std::string& code, uint64_t offset) const {
    if (fatal && fatal->code == code && fatal->offset == offset) return true;
    for (const auto& f : findings.items())
      if (f.code == code && f.offset == offset) return true;
    return false;
  }
  std::string dump() const {
    std::string s = "ok;";
    if (!ok) s = "fatal " + fatal->code + "@" + std::to_string(fatal->offset.value_or(~0ull)) + " " + fatal->message + ";";
    for (const auto& f : findings.items())
      s += " " + f.code + "@" + std::to_string(f.offset.value_or(~0ull)) + " (" + f.message + ")";
    return s;
  }
};

Outcome read(const std::vector<uint8_t>& bytes, const mf::Limits& limits = {}, mf::ZipOptions opts = {}) {
  mf::MemorySource src(bytes, "test.th");
  Outcome o;
  auto r = mf::read_zip(src, limits, opts, o.findings);
  o.ok = r.ok();
  if (r.ok())
    o.archive = std::move(r).value();
  else
    o.fatal = r.error();
  for (const auto& f : o.findings.items()) EXPECT_EQ(f.file, "test.th") << f.code;
  if (o.fatal) {
    EXPECT_EQ(o.fatal->file, "test.th");
  }
  return o;
}

void put16(std::vector<uint8_t>& b, uint64_t off, uint16_t v) {
  for (int i = 0; i < 2; ++i) b.at(off + i) = static_cast<uint8_t>(v >> (8 * i));
}
void put32(std::vector<uint8_t>& b, uint64_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.at(off + i) = static_cast<uint8_t>(v >> (8 * i));
}
void put64(std::vector<uint8_t>& b, uint64_t off, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.at(off + i) = static_cast<uint8_t>(v >> (8 * i));
}
// Renames an entry in both its central and local header (same length).
void rename(std::vector<uint8_t>& b, const Entry& e, const std::string& to) {
  ASSERT_EQ(to.size(), e.name.size());
  std::copy(to.begin(), to.end(), b.begin() + static_cast<long>(e.cd + 46));
  std::copy(to.begin(), to.end(), b.begin() + static_cast<long>(e.lho + 30));
}

// The fixture script's output, generated once per script version and shared by every test process
// (ctest runs each test case in its own process). Returns "" and sets `err` when generation fails.
std::string cached_fixtures(const std::string& script_rel, const std::string& tag, std::string& err) {
  namespace fs = std::filesystem;
  const std::string script = mt::source_dir() + "/" + script_rel;
  const size_t h = std::hash<std::string>{}(mt::read_text(script));
  const fs::path dir = fs::path(mt::binary_dir()) / "Testing" / (tag + "-fixtures-" + std::to_string(h));
  if (fs::exists(dir / "layout.json")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::create_directories(tmp);
  // Run as a file, not with -c: torch.jit.script needs the module's source.
  auto r = mt::run_process({"/usr/bin/python3", script, tmp.string()});
  if (r.exit_code != 0) {
    err = r.err;
    fs::remove_all(tmp);
    return "";
  }
  std::error_code ec;
  fs::rename(tmp, dir, ec);  // another process may have won the race: then use its copy
  if (ec) fs::remove_all(tmp);
  return dir.string();
}

class ZipTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string err;
    dir_ = cached_fixtures("tests/format/zip_fixtures.py", "zip", err);
    ASSERT_FALSE(dir_.empty()) << err;
    auto j = nlohmann::json::parse(mt::read_text(dir_ + "/layout.json"));
    for (auto& [name, v] : j.items()) {
      Layout l;
      l.size = v["size"];
      l.eocd = v["eocd"];
      l.cd_offset = v["cd_offset"];
      l.cd_size = v["cd_size"];
      if (!v["loc"].is_null()) l.loc = v["loc"].get<uint64_t>();
      if (!v["z64"].is_null()) l.z64 = v["z64"].get<uint64_t>();
      for (auto& e : v["entries"]) {
        Entry x;
        x.name = e["name"];
        x.cd = e["cd"];
        x.lho = e["lho"];
        x.extra = e["extra"];
        x.data = e["data"];
        x.size = e["size"];
        x.usize = e["usize"];
        x.crc = e["crc"];
        x.flags = e["flags"];
        x.method = e["method"];
        if (!e["dd"].is_null()) x.dd = e["dd"].get<uint64_t>();
        l.entries.push_back(x);
      }
      layouts_[name] = l;
    }
  }
  static std::vector<uint8_t> bytes(const std::string& c) { return mt::read_file(dir_ + "/" + c + ".th"); }
  static const Layout& layout(const std::string& c) { return layouts_.at(c); }

  static std::string dir_;
  static std::map<std::string, Layout> layouts_;
};
std::string ZipTest::dir_;
std::map<std::string, Layout> ZipTest::layouts_;

}  // namespace

TEST_F(ZipTest, ReadsTorchSaveArchiveExactlyAsPythonSeesIt) {
  auto b = bytes("pkg");
  const Layout& l = layout("pkg");
  Outcome o = read(b);
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_EQ(o.findings.size(), 0u) << o.dump();
  const mf::ZipArchive& za = *o.archive;
  EXPECT_EQ(za.folder, "pkg");
  EXPECT_FALSE(za.torchscript);
  EXPECT_EQ(za.central_directory_offset, l.cd_offset);
  EXPECT_EQ(za.central_directory_size, l.cd_size);
  ASSERT_EQ(za.records.size(), l.entries.size());
  for (size_t i = 0; i < l.entries.size(); ++i) {
    const auto& r = za.records[i];
    const auto& e = l.entries[i];
    EXPECT_EQ("pkg/" + r.name, e.name);
    EXPECT_EQ(r.header_offset, e.lho);
    EXPECT_EQ(r.data_offset, e.data);
    EXPECT_EQ(r.size, e.size);
    EXPECT_EQ(r.crc32, e.crc);
    EXPECT_TRUE(r.crc_ok) << r.name;
    EXPECT_EQ(r.data_offset % 64, 0u);
    EXPECT_EQ(za.find(r.name), &r);
  }
  EXPECT_EQ(za.find("nope"), nullptr);
  EXPECT_EQ(za.find("DATA.PKL"), nullptr);  // find is exact
  mf::MemorySource src(b);
  auto v = za.data(src, *za.find("version"));
  EXPECT_EQ(std::string(v.begin(), v.end()), "3\n");
}

TEST_F(ZipTest, FindFallsBackToLinearScanForHandBuiltArchives) {
  mf::ZipArchive za;
  za.records.push_back({.name = "b"});
  za.records.push_back({.name = "a"});
  ASSERT_NE(za.find("a"), nullptr);
  EXPECT_EQ(za.find("a")->name, "a");
  EXPECT_EQ(za.find("c"), nullptr);
}

TEST_F(ZipTest, TorchWriterMetaRecordsAreAccepted) {
  Outcome o = read(bytes("little"));
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_EQ(o.findings.size(), 0u) << o.dump();
  EXPECT_NE(o.archive->find(".data/serialization_id"), nullptr);
}

TEST_F(ZipTest, EveryCorpusArchiveReadsWithoutFindings) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& d : fs::directory_iterator(mt::corpus_dir() + "/audiocraft-tiny")) {
    if (!d.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(d.path())) {
      auto ext = f.path().extension().string();
      if (ext != ".bin" && ext != ".pt" && ext != ".th") continue;
      auto b = mt::read_file(f.path().string());
      Outcome o = read(b);
      EXPECT_TRUE(o.ok) << f.path() << o.dump();
      EXPECT_EQ(o.findings.size(), 0u) << f.path() << o.dump();
      // Python's zipfile is the reference for names, offsets, sizes and CRCs.
      auto py = mt::run_python(
          "import sys,zipfile\n"
          "for i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, i.header_offset, i.file_size, i.CRC)\n",
          {f.path().string()});
      ASSERT_EQ(py.exit_code, 0) << py.err;
      std::string mine;
      if (o.ok)
        for (const auto& r : o.archive->records)
          mine += o.archive->folder + "/" + r.name + " " + std::to_string(r.header_offset) + " " +
                  std::to_string(r.size) + " " + std::to_string(r.crc32) + "\n";
      EXPECT_EQ(mine, py.out) << f.path();
      ++n;
    }
  }
  EXPECT_GE(n, 13);
}

// ---- end records ------------------------------------------------------------------------------

TEST_F(ZipTest, TruncationAtEveryStructuralBoundaryFails) {
  auto b = bytes("pkg");
  const Layout& l = layout("pkg");
  std::vector<uint64_t> cuts = {0, 1, 4, 30, l.cd_offset, *l.z64, *l.loc, l.eocd, l.size - 1};
  for (const auto& e : l.entries) {
    cuts.insert(cuts.end(), {e.lho, e.lho + 30, e.extra, e.data, e.data + e.size, e.cd, e.cd + 46});
    if (e.dd) cuts.insert(cuts.end(), {*e.dd, *e.dd + 8});
  }
  for (uint64_t cut : cuts) {
    std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(cut));
    Outcome o = read(t);
    ASSERT_FALSE(o.ok) << cut;
    EXPECT_EQ(o.fatal->code, "MG-ZIP-NO-EOCD") << cut << o.dump();
    EXPECT_EQ(o.fatal->offset, cut);
  }
  // And every other prefix (and every prefix with the original end records glued back on) fails
  // without crashing.
  std::vector<uint8_t> tail(b.begin() + static_cast<long>(*l.z64), b.end());
  for (uint64_t cut = 0; cut < l.size; ++cut) {
    std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(cut));
    EXPECT_FALSE(read(t).ok) << cut;
    if (cut < *l.z64) {
      t.insert(t.end(), tail.begin(), tail.end());
      Outcome o = read(t);
      EXPECT_TRUE(!o.ok || o.findings.has_errors()) << cut;
    }
  }
}

TEST_F(ZipTest, TrailingDataAfterEocd) {
  auto b = bytes("pkg");
  b.insert(b.end(), 100, 'x');
  Outcome o = read(b);
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-TRAILING-DATA", layout("pkg").size)) << o.dump();
}

TEST_F(ZipTest, EocdCommentLengthWithoutComment) {
  auto b = bytes("pkg");
  put16(b, layout("pkg").eocd + 20, 5);
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-EOCD", layout("pkg").eocd + 20)) << o.dump();
}

TEST_F(ZipTest, MultiDisk) {
  auto b = bytes("pkg");
  put16(b, layout("pkg").eocd + 4, 1);
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-MULTI-DISK", layout("pkg").eocd)) << o.dump();
  b = bytes("pkg");
  put32(b, *layout("pkg").loc + 16, 2);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-MULTI-DISK", *layout("pkg").loc)) << o.dump();
}

TEST_F(ZipTest, ZipWithoutZip64EndRecords) {
  Outcome o = read(bytes("pystored"));
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-MISSING", layout("pystored").eocd)) << o.dump();
  // Sentinels without a locator are fatal.
  auto b = bytes("pystored");
  put32(b, layout("pystored").eocd + 16, 0xFFFFFFFF);
  o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-MISSING", layout("pystored").eocd)) << o.dump();
}

TEST_F(ZipTest, Zip64LocatorPointingElsewhere) {
  auto b = bytes("pkg");
  const Layout& l = layout("pkg");
  put64(b, *l.loc + 8, *l.z64 - 1);
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-LOCATOR", *l.loc)) << o.dump();
}

TEST_F(ZipTest, Zip64EndRecordDamaged) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  b[*l.z64 + 3] = 0x07;
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-EOCD", *l.z64)) << o.dump();
  b = bytes("pkg");
  put64(b, *l.z64 + 4, 45);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-EOCD", *l.z64 + 4)) << o.dump();
}

TEST_F(ZipTest, ClassicAndZip64EndRecordsDisagree) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  put16(b, l.eocd + 8, static_cast<uint16_t>(l.entries.size() - 1));
  put16(b, l.eocd + 10, static_cast<uint16_t>(l.entries.size() - 1));
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-EOCD-MISMATCH", l.eocd)) << o.dump();
  // Sentinels in the classic record are fine.
  b = bytes("pkg");
  put32(b, l.eocd + 16, 0xFFFFFFFF);
  o = read(b);
  EXPECT_TRUE(o.ok && o.findings.size() == 0) << o.dump();
}

TEST_F(ZipTest, CentralDirectoryNotEndingAtEndRecords) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  put32(b, l.eocd + 12, static_cast<uint32_t>(l.cd_size - 1));
  put64(b, *l.z64 + 40, l.cd_size - 1);
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-CD-BOUNDS", l.eocd)) << o.dump();
}

TEST_F(ZipTest, JunkBetweenCentralDirectoryAndEndRecords) {
  // Shrinking the declared CD by one entry's worth leaves bytes after the last entry.
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  uint16_t n = static_cast<uint16_t>(l.entries.size() - 1);
  put16(b, l.eocd + 8, n);
  put16(b, l.eocd + 10, n);
  put64(b, *l.z64 + 24, n);
  put64(b, *l.z64 + 32, n);
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-CD-BOUNDS", l.entries.back().cd)) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-OVERLAP", l.cd_offset) || o.has("MG-ZIP-GAP", l.entries.back().lho)) << o.dump();
}

TEST_F(ZipTest, RecordAndDirectoryLimits) {
  const Layout& l = layout("pkg");
  mf::Limits lim;
  lim.max_records = l.entries.size() - 1;
  Outcome o = read(bytes("pkg"), lim);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-TOO-MANY-RECORDS", l.eocd)) << o.dump();
  lim = {};
  lim.max_central_directory_bytes = l.cd_size - 1;
  o = read(bytes("pkg"), lim);
  EXPECT_TRUE(o.has("MG-ZIP-CD-TOO-LARGE", l.eocd)) << o.dump();
  lim = {};
  lim.max_name_bytes = 11;  // "pkg/data/0" fits, "pkg/data.pkl" does not
  o = read(bytes("pkg"), lim);
  EXPECT_TRUE(o.has("MG-ZIP-NAME-TOO-LONG", l.entries[0].cd)) << o.dump();
  EXPECT_FALSE(o.has("MG-ZIP-NAME-TOO-LONG", l.entries[1].cd)) << o.dump();
}

TEST_F(ZipTest, EmptyArchive) {
  Outcome o = read(bytes("emptyzip"));
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-EMPTY", 0)) << o.dump();
}

// ---- central directory entries ----------------------------------------------------------------

TEST_F(ZipTest, BadCentralEntrySignature) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  b[l.entries[1].cd] = 'Q';
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-CD-ENTRY", l.entries[1].cd)) << o.dump();
  // Name length running past the directory.
  b = bytes("pkg");
  put16(b, l.entries.back().cd + 28, 1000);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-CD-ENTRY", l.entries.back().cd)) << o.dump();
}

TEST_F(ZipTest, EntryComment) {
  const Layout& l = layout("comment");
  Outcome o = read(bytes("comment"));
  EXPECT_TRUE(o.has("MG-ZIP-ENTRY-COMMENT", l.entries[0].cd)) << o.dump();
}

TEST_F(ZipTest, Zip64SentinelWithoutField) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  put32(b, l.entries[1].cd + 24, 0xFFFFFFFF);
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-FIELD", l.entries[1].cd)) << o.dump();
}

TEST_F(ZipTest, MalformedAndUnexpectedExtraFields) {
  const Layout& l = layout("pkg");
  const Entry& e = l.entries[1];
  auto b = bytes("pkg");
  put16(b, e.extra + 2, 200);  // padding length overruns the extra area
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-EXTRA", e.extra)) << o.dump();
  b = bytes("pkg");
  put16(b, e.extra, 0x1234);
  o = read(b);
  ASSERT_TRUE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-EXTRA-UNEXPECTED", e.extra)) << o.dump();
  b = bytes("pkg");
  b[e.extra + 4] = 'Y';
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-PADDING", e.extra)) << o.dump();
}

TEST_F(ZipTest, NamesNotValidUtf8OrInvalid) {
  const Layout& l = layout("pkg");
  const Entry& e = l.entry("pkg/data/1");
  auto b = bytes("pkg");
  rename(b, e, "pkg/data/\xff");
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-NAME-UTF8", e.cd)) << o.dump();
  b = bytes("pkg");
  rename(b, e, "pkg/data/\xc0");  // a truncated sequence
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-NAME-UTF8", e.cd)) << o.dump();
  b = bytes("pkg");
  rename(b, e, "pkg//ata/1");
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-NAME-INVALID", e.cd)) << o.dump();
  b = bytes("pkg");
  rename(b, e, std::string("pkg/dat\0/1", 10));
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-NAME-INVALID", e.cd)) << o.dump();
  b = bytes("pkg");
  rename(b, e, "pkg/./ta/1");
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-NAME-INVALID", e.cd)) << o.dump();
  EXPECT_FALSE(o.findings.has_unsafe());
}

// A name holding a control character (valid UTF-8, but nothing torch.save writes) is an error, not unsafe.
// Which characters are controls comes from Python's unicodedata (category Cc: C0, DEL and C1); every
// character U+0001..U+00FF is tried in one record name.
TEST_F(ZipTest, NamesWithControlCharacters) {
  auto py = mt::run_python(
      "import unicodedata\n"
      "print(' '.join(str(c) for c in range(1, 256) if unicodedata.category(chr(c)) == 'Cc'))\n");
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(py.exit_code == 0, "python3 not available");
  std::set<int> controls;
  std::istringstream in(py.out);
  for (int c; in >> c;) controls.insert(c);
  ASSERT_EQ(controls.size(), 64u) << py.out;  // 31 C0 + DEL + 32 C1
  const Layout& l = layout("pkg");
  const Entry& e = l.entry("pkg/data/1");
  ASSERT_EQ(e.name, "pkg/data/1");
  for (int c = 1; c < 256; ++c) {
    SCOPED_TRACE(c);
    std::string name = c < 0x80 ? "pkg/dat" + std::string(1, static_cast<char>(c)) + "/1"
                                : "pkg/da" + std::string(1, static_cast<char>(0xC0 | (c >> 6))) +
                                      std::string(1, static_cast<char>(0x80 | (c & 0x3F))) + "/1";
    auto b = bytes("pkg");
    rename(b, e, name);
    Outcome o = read(b);
    EXPECT_EQ(o.has("MG-ZIP-NAME-CONTROL", e.cd), controls.count(c) == 1) << o.dump();
    if (controls.count(c)) {
      EXPECT_FALSE(o.findings.has_unsafe()) << o.dump();
      for (const auto& f : o.findings.items())
        if (f.code == "MG-ZIP-NAME-CONTROL") {
          EXPECT_EQ(f.severity, mf::Severity::error);
          EXPECT_EQ(f.name, name);
        }
    }
  }
}

TEST_F(ZipTest, TraversalAndAbsoluteNamesAreUnsafe) {
  const Layout& l = layout("pkg");
  const Entry& e = l.entry("pkg/data/1");
  for (std::string to : {"pkg/../x/1", "pkg/data\\1", "/kg/data/1", "C:/g/data1"}) {
    auto b = bytes("pkg");
    rename(b, e, to);
    Outcome o = read(b);
    ASSERT_TRUE(o.ok) << to << o.dump();
    const mf::Finding* f = o.get("MG-ZIP-NAME-UNSAFE");
    ASSERT_NE(f, nullptr) << to << o.dump();
    EXPECT_EQ(f->offset, e.cd);
    EXPECT_EQ(f->impact, mf::Impact::unsafe);
    EXPECT_EQ(f->name, to);
    EXPECT_TRUE(o.findings.has_unsafe());
  }
}

TEST_F(ZipTest, FolderRules) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  std::copy_n("pkgXdata.pkl", 12, b.begin() + static_cast<long>(l.entries[0].cd + 46));
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-NO-FOLDER", l.entries[0].cd)) << o.dump();
  b = bytes("pkg");
  const Entry& e = l.entry("pkg/data/0");
  rename(b, e, "pkh/data/0");
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-FOLDER-MISMATCH", e.cd)) << o.dump();
  // The folder comes from entry 0, never from the file name.
  EXPECT_EQ(o.archive->folder, "pkg");
}

TEST_F(ZipTest, EncryptionAndFlags) {
  const Layout& l = layout("pkg");
  const Entry& e = l.entries[1];
  auto b = bytes("pkg");
  put16(b, e.cd + 8, static_cast<uint16_t>(e.flags | 1));
  put16(b, e.lho + 6, static_cast<uint16_t>(e.flags | 1));
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-ENCRYPTED", e.cd)) << o.dump();
  b = bytes("pkg");
  put16(b, e.cd + 8, static_cast<uint16_t>(e.flags | 2));
  put16(b, e.lho + 6, static_cast<uint16_t>(e.flags | 2));
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-FLAGS", e.cd)) << o.dump();
  EXPECT_FALSE(o.findings.has_errors()) << o.dump();
}

TEST_F(ZipTest, DeflatedRecordsAreRefused) {
  const Layout& l = layout("deflated");
  Outcome o = read(bytes("deflated"));
  EXPECT_TRUE(o.has("MG-ZIP-COMPRESSED", l.entries[0].cd)) << o.dump();
  EXPECT_FALSE(o.findings.has_unsafe());
  // Patched method in a torch archive.
  const Entry& e = layout("pkg").entries[1];
  auto b = bytes("pkg");
  put16(b, e.cd + 10, 8);
  put16(b, e.lho + 8, 8);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-COMPRESSED", e.cd)) << o.dump();
}

TEST_F(ZipTest, DecompressionBombIsUnsafe) {
  const Layout& l = layout("bomb");
  Outcome o = read(bytes("bomb"));
  const mf::Finding* f = o.get("MG-ZIP-BOMB");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, l.entry("bomb/data/0").cd);
  EXPECT_EQ(f->impact, mf::Impact::unsafe);
  // A stored entry claiming more than the file holds is the same attack on allocating readers.
  const Entry& e = layout("pkg").entries[1];
  auto b = bytes("pkg");
  put32(b, e.cd + 24, 0x7FFFFFFF);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-BOMB", e.cd)) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-SIZE-MISMATCH", e.cd)) << o.dump();
}

TEST_F(ZipTest, StoredSizesDisagree) {
  const Entry& e = layout("pkg").entries[1];
  auto b = bytes("pkg");
  put32(b, e.cd + 20, static_cast<uint32_t>(e.size - 1));
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-SIZE-MISMATCH", e.cd)) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-DESCRIPTOR", e.data + e.size - 1)) << o.dump();
}

// ---- local headers, data, descriptors ---------------------------------------------------------

TEST_F(ZipTest, LocalHeaderMissingOrDisagreeing) {
  const Entry& e = layout("pkg").entries[2];
  auto b = bytes("pkg");
  b[e.lho + 2] = 9;
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-LOCAL-HEADER", e.lho)) << o.dump();
  b = bytes("pkg");
  b[e.lho + 30 + e.name.size() - 1] = '9';  // local name only
  o = read(b);
  const mf::Finding* f = o.get("MG-ZIP-LOCAL-MISMATCH");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, e.lho);
  EXPECT_EQ(f->name, e.name);
  b = bytes("pkg");
  put16(b, e.lho + 8, 8);  // local method only
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-LOCAL-MISMATCH", e.lho)) << o.dump();
}

// Local sizes against the central directory. With flag bit 3 (as torch writes) the local CRC and sizes
// are 0 or the CD's; without it they are the CD's; 0xFFFFFFFF needs a ZIP64 field that matches. A
// disagreement makes a streaming reader see other bytes than torch: `unsafe`, at the local header.
TEST_F(ZipTest, LocalSizesAgainstCentralDirectory) {
  const Entry& e = layout("pkg").entries[1];
  ASSERT_TRUE(e.flags & 8) << "torch sets flag bit 3 on non-empty records";
  auto unsafe_sizes = [&](const Outcome& o) {
    const mf::Finding* f = o.get("MG-ZIP-LOCAL-SIZES");
    return f != nullptr && f->offset == e.lho && f->impact == mf::Impact::unsafe && f->name == e.name;
  };
  Outcome o = read(bytes("pkg"));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-SIZES"), nullptr) << o.dump();  // torch's zeros
  // Bit 3, real values repeated in the local header (other writers do this): fine.
  auto b = bytes("pkg");
  put32(b, e.lho + 14, e.crc);
  put32(b, e.lho + 18, static_cast<uint32_t>(e.size));
  put32(b, e.lho + 22, static_cast<uint32_t>(e.size));
  o = read(b);
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-SIZES"), nullptr) << o.dump();
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-MISMATCH"), nullptr) << o.dump();
  // Bit 3, a size that is neither 0 nor the CD's: compressed, uncompressed, or both.
  for (uint64_t field : {18u, 22u}) {
    b = bytes("pkg");
    put32(b, e.lho + field, static_cast<uint32_t>(e.size + 64));
    o = read(b);
    EXPECT_TRUE(unsafe_sizes(o)) << field << o.dump();
  }
  // Bit 3 cleared in both headers (no descriptor then): the local sizes must be the CD's, zeros are not.
  b = bytes("pkg");
  put16(b, e.lho + 6, e.flags & ~8);
  put16(b, e.cd + 8, e.flags & ~8);
  put32(b, e.lho + 14, e.crc);
  o = read(b);
  EXPECT_TRUE(unsafe_sizes(o)) << o.dump();
  put32(b, e.lho + 18, static_cast<uint32_t>(e.size));
  put32(b, e.lho + 22, static_cast<uint32_t>(e.size));
  o = read(b);
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-SIZES"), nullptr) << o.dump();
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-MISMATCH"), nullptr) << o.dump();
  // The ZIP64 sentinel without a ZIP64 field to resolve it.
  b = bytes("pkg");
  put32(b, e.lho + 22, 0xFFFFFFFFu);
  o = read(b);
  EXPECT_TRUE(unsafe_sizes(o)) << o.dump();
  // The name, method and flags must still agree (MG-ZIP-LOCAL-MISMATCH, an error).
  b = bytes("pkg");
  put16(b, e.lho + 6, e.flags | 1);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-LOCAL-MISMATCH", e.lho)) << o.dump();
}

// A local ZIP64 field as miniz writes it (uncompressed size, compressed size 0) is accepted; one whose
// values differ from the CD's is `unsafe`. Built by turning the front of an 'FB' padding field into a
// 16-byte ZIP64 field, so the data offset stays where it was.
TEST_F(ZipTest, LocalZip64FieldAgainstCentralDirectory) {
  const Layout& l = layout("pkg");
  const Entry* e = nullptr;
  auto b0 = bytes("pkg");
  for (const auto& c : l.entries)
    if (c.size > 0 && c.extra + 4 <= c.data && b0[c.extra] == 'F' && b0[c.extra + 1] == 'B' && c.data - c.extra >= 4 + 20) {
      e = &c;
      break;
    }
  ASSERT_NE(e, nullptr) << "no record with 20 bytes of padding";
  auto with_zip64 = [&](uint64_t usize, uint64_t csize) {
    auto b = b0;
    uint64_t pad = b[e->extra + 2] | (b[e->extra + 3] << 8);
    put16(b, e->extra, 0x0001);
    put16(b, e->extra + 2, 16);
    put64(b, e->extra + 4, usize);
    put64(b, e->extra + 12, csize);
    b[e->extra + 20] = 'F';
    b[e->extra + 21] = 'B';
    put16(b, e->extra + 22, static_cast<uint16_t>(pad - 20));
    return b;
  };
  Outcome o = read(with_zip64(e->size, 0));  // miniz: compressed size not yet known
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-ZIP64"), nullptr) << o.dump();
  EXPECT_EQ(o.get("MG-ZIP-EXTRA"), nullptr) << o.dump();
  o = read(with_zip64(e->size, e->size));
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-ZIP64"), nullptr) << o.dump();
  for (auto [u, c] : {std::pair<uint64_t, uint64_t>{e->size + 1, 0}, {e->size, e->size + 1}, {uint64_t{1} << 40, 0}}) {
    o = read(with_zip64(u, c));
    const mf::Finding* f = o.get("MG-ZIP-LOCAL-ZIP64");
    ASSERT_NE(f, nullptr) << o.dump();
    EXPECT_EQ(f->offset, e->extra);
    EXPECT_EQ(f->impact, mf::Impact::unsafe);
  }
  // The local sentinel resolved by a matching ZIP64 field is fine; by a lying one it is not.
  auto b = with_zip64(e->size, 0);
  put32(b, e->lho + 22, 0xFFFFFFFFu);
  o = read(b);
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-SIZES"), nullptr) << o.dump();
  EXPECT_EQ(o.get("MG-ZIP-LOCAL-ZIP64"), nullptr) << o.dump();
  b = with_zip64(e->size + 7, 0);
  put32(b, e->lho + 22, 0xFFFFFFFFu);
  o = read(b);
  EXPECT_NE(o.get("MG-ZIP-LOCAL-ZIP64"), nullptr) << o.dump();
}

TEST_F(ZipTest, RecordDataPastEndOfFile) {
  const Layout& l = layout("pkg");
  const Entry& e = l.entry("pkg/version");
  auto b = bytes("pkg");
  uint32_t too_big = static_cast<uint32_t>(l.size - e.data + 1);
  put32(b, e.cd + 20, too_big);
  put32(b, e.cd + 24, too_big);
  Outcome o = read(b);
  ASSERT_FALSE(o.ok);
  EXPECT_TRUE(o.has("MG-ZIP-TRUNCATED", e.data)) << o.dump();
}

TEST_F(ZipTest, DataDescriptorMismatch) {
  const Entry& e = layout("pkg").entries[1];
  auto b = bytes("pkg");
  b[*e.dd] = 'Q';
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-DESCRIPTOR", *e.dd)) << o.dump();
  b = bytes("pkg");
  put32(b, *e.dd + 4, e.crc ^ 1);
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-DESCRIPTOR", *e.dd)) << o.dump();
  EXPECT_FALSE(o.has("MG-ZIP-CRC", e.data)) << o.dump();
}

TEST_F(ZipTest, GapsPrefixAndHiddenData) {
  const Layout& g = layout("gap");
  Outcome o = read(bytes("gap"));
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-GAP", g.entries[2].lho - 64)) << o.dump();
  EXPECT_EQ(o.findings.size(), 1u) << o.dump();

  o = read(bytes("prefix"));
  EXPECT_TRUE(o.has("MG-ZIP-GAP", 0)) << o.dump();
  // torch does not treat a zip with a prefix as a zip, and neither does the sniffer.
  EXPECT_NE(mf::sniff_container(bytes("prefix")), mf::ContainerKind::zip);

  const Layout& h = layout("hidden");
  o = read(bytes("hidden"));
  EXPECT_TRUE(o.has("MG-ZIP-GAP", h.cd_offset - 100)) << o.dump();
}

TEST_F(ZipTest, OverlappingAndAliasedRecords) {
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  put32(b, l.entries[2].cd + 42, static_cast<uint32_t>(l.entries[1].lho));  // data/1 aliases data/0
  Outcome o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-OVERLAP", l.entries[1].lho)) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-LOCAL-MISMATCH", l.entries[1].lho)) << o.dump();
}

TEST_F(ZipTest, FlippedDataByteFailsCrc) {
  const Entry& e = layout("pkg").entry("pkg/data/1");
  auto b = bytes("pkg");
  b[e.data + 5] ^= 0x40;
  Outcome o = read(b);
  ASSERT_TRUE(o.ok);
  const mf::Finding* f = o.get("MG-ZIP-CRC");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, e.data);
  EXPECT_EQ(f->name, "data/1");
  EXPECT_EQ(f->severity, mf::Severity::error);
  EXPECT_FALSE(o.archive->find("data/1")->crc_ok);
  EXPECT_TRUE(o.archive->find("data/0")->crc_ok);
  // Not verified when asked not to.
  o = read(b, {}, mf::ZipOptions{.verify_crc = false});
  EXPECT_EQ(o.findings.size(), 0u) << o.dump();
}

TEST_F(ZipTest, ZeroCrcOnNonEmptyDataIsADistinctWarning) {
  const Entry& e = layout("pkg").entry("pkg/data/1");
  auto b = bytes("pkg");
  put32(b, e.cd + 16, 0);
  put32(b, *e.dd + 4, 0);
  Outcome o = read(b);
  const mf::Finding* f = o.get("MG-ZIP-CRC-ZERO");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, e.data);
  EXPECT_EQ(f->severity, mf::Severity::warning);
  EXPECT_FALSE(o.get("MG-ZIP-CRC"));
}

// ---- names and records ------------------------------------------------------------------------

TEST_F(ZipTest, DuplicateAndCaseVariantNamesAreUnsafe) {
  const Layout& l = layout("pkg");
  const Entry& e = l.entry("pkg/data/1");
  for (std::string to : {"pkg/data/0", "pkg/DATA/0"}) {
    auto b = bytes("pkg");
    rename(b, e, to);
    Outcome o = read(b, {}, mf::ZipOptions{.verify_crc = false});
    const mf::Finding* f = o.get("MG-ZIP-DUPLICATE-NAME");
    ASSERT_NE(f, nullptr) << to << o.dump();
    EXPECT_EQ(f->offset, e.cd);
    EXPECT_EQ(f->impact, mf::Impact::unsafe);
  }
}

TEST_F(ZipTest, BadVersionRecord) {
  const Entry& e = layout("pkg").entry("pkg/version");
  for (std::string v : {"0\n", "x\n", " 3", "3\r"}) {
    auto b = bytes("pkg");
    std::copy(v.begin(), v.end(), b.begin() + static_cast<long>(e.data));
    Outcome o = read(b, {}, mf::ZipOptions{.verify_crc = false});
    EXPECT_TRUE(o.has("MG-ZIP-VERSION", e.data)) << v << o.dump();
  }
  auto b = bytes("pkg");
  b[e.data] = '9';
  Outcome o = read(b, {}, mf::ZipOptions{.verify_crc = false});
  EXPECT_EQ(o.findings.size(), 0u) << o.dump();
}

TEST_F(ZipTest, MissingRequiredRecords) {
  const Layout& n = layout("nodata");
  Outcome o = read(bytes("nodata"));
  const mf::Finding* f = o.get("MG-ZIP-MISSING-RECORD");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, n.cd_offset);
  EXPECT_EQ(f->name, "data.pkl");
  const Layout& l = layout("pkg");
  auto b = bytes("pkg");
  rename(b, l.entry("pkg/version"), "pkg/versiom");
  o = read(b);
  EXPECT_TRUE(o.has("MG-ZIP-MISSING-RECORD", l.cd_offset)) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-UNEXPECTED-RECORD", l.entry("pkg/version").lho)) << o.dump();
}

TEST_F(ZipTest, ByteOrderRecord) {
  Outcome o = read(bytes("big"));
  EXPECT_TRUE(o.has("MG-ZIP-BIG-ENDIAN", layout("big").entry("big/byteorder").data)) << o.dump();
  o = read(bytes("badorder"));
  EXPECT_TRUE(o.has("MG-ZIP-BYTEORDER", layout("badorder").entry("badorder/byteorder").data)) << o.dump();
}

TEST_F(ZipTest, MetaRecordsAndAlignment) {
  Outcome o = read(bytes("badalign"));
  EXPECT_TRUE(o.has("MG-ZIP-META-RECORD", layout("badalign").entry("badalign/.storage_alignment").data))
      << o.dump();
  const Layout& py = layout("pystored");
  o = read(bytes("pystored"));
  const mf::Finding* f = o.get("MG-ZIP-ALIGNMENT");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, py.entries[0].data);
  EXPECT_EQ(f->severity, mf::Severity::warning);
}

TEST_F(ZipTest, UnexpectedRecordIsAWarning) {
  const Layout& l = layout("unexpected");
  Outcome o = read(bytes("unexpected"));
  ASSERT_TRUE(o.ok) << o.dump();
  const mf::Finding* f = o.get("MG-ZIP-UNEXPECTED-RECORD");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->offset, l.entry("unexpected/evil.py").lho);
  EXPECT_EQ(f->name, "evil.py");
  EXPECT_FALSE(o.findings.has_errors()) << o.dump();
}

TEST_F(ZipTest, TorchScriptArchiveIsUnsafe) {
  const Layout& l = layout("script");
  Outcome o = read(bytes("script"));
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_TRUE(o.archive->torchscript);
  const mf::Finding* f = o.get("MG-ZIP-TORCHSCRIPT");
  ASSERT_NE(f, nullptr) << o.dump();
  EXPECT_EQ(f->impact, mf::Impact::unsafe);
  EXPECT_EQ(f->offset, l.entry("script/code/__torch__.py").lho);
  EXPECT_FALSE(o.get("MG-ZIP-UNEXPECTED-RECORD")) << o.dump();
}

TEST_F(ZipTest, FindingsCarryFileOffsetAndRecordName) {
  const Entry& e = layout("pkg").entry("pkg/data/0");
  auto b = bytes("pkg");
  b[e.data] ^= 1;
  Outcome o = read(b);
  const mf::Finding* f = o.get("MG-ZIP-CRC");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->file, "test.th");
  EXPECT_FALSE(f->message.empty());
  EXPECT_FALSE(f->hint.empty());
  EXPECT_EQ(f->name, "data/0");
}

TEST_F(ZipTest, Zip64FieldsReplaceSentinels) {
  // Every central size and offset moved into a 24-byte ZIP64 field, as torch does for huge records.
  const Layout& l = layout("z64cd");
  Outcome o = read(bytes("z64cd"));
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_EQ(o.findings.size(), 0u) << o.dump();
  const Layout& base = layout("pkg");
  ASSERT_EQ(o.archive->records.size(), base.entries.size());
  for (size_t i = 0; i < base.entries.size(); ++i) {
    EXPECT_EQ(o.archive->records[i].header_offset, base.entries[i].lho);
    EXPECT_EQ(o.archive->records[i].data_offset, base.entries[i].data);
    EXPECT_EQ(o.archive->records[i].size, base.entries[i].size);
    EXPECT_TRUE(o.archive->records[i].zip64);
    EXPECT_TRUE(o.archive->records[i].crc_ok);
  }
  EXPECT_EQ(o.archive->central_directory_size, l.cd_size);
  // A ZIP64 field where no sentinel asks for one.
  const Layout& n = layout("z64needless");
  o = read(bytes("z64needless"));
  ASSERT_TRUE(o.ok) << o.dump();
  EXPECT_TRUE(o.has("MG-ZIP-ZIP64-FIELD", n.entries[0].cd)) << o.dump();
}

TEST_F(ZipTest, RandomByteMutationsNeverCrash) {
  // Deterministic mutations of a torch archive; under -DMGCHECK_SANITIZE=ON this is an ASan/UBSan sweep.
  const auto base = bytes("pkg");
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int failed = 0;
  for (int i = 0; i < 4000; ++i) {
    auto b = base;
    int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) b[next() % b.size()] = static_cast<uint8_t>(next());
    Outcome o = read(b);
    if (!o.ok || o.findings.has_errors()) ++failed;
  }
  EXPECT_GT(failed, 0);
}
