// The legacy stacked-pickle reader against files torch 1.13 writes with _use_new_zipfile_serialization=False.
// Expected offsets come from tests/format/legacy_fixtures.py, which walks the files with Python's own pickle
// module; storage byte sizes are also checked against what torch.load reports.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <optional>
#include <sstream>

#include "../../corpus/tools/pickle_bytes.h"
#include "mgcheck/format/container.h"
#include "mgcheck/format/legacy.h"
#include "test_support.h"

namespace mf = mgcheck::format;
namespace mt = mgcheck::test;

namespace {

struct Outcome {
  std::optional<mf::LegacyArchive> archive;
  std::optional<mf::Finding> fatal;
  mf::Findings findings;
  bool has(const std::string& code, uint64_t offset) const {
    if (fatal && fatal->code == code && fatal->offset == offset) return true;
    for (const auto& f : findings.items())
      if (f.code == code && f.offset == offset) return true;
    return false;
  }
  std::string dump() const {
    std::string s = archive ? "ok;" : "fatal " + fatal->code + "@" + std::to_string(fatal->offset.value_or(~0ull)) +
                                          " " + fatal->message + ";";
    for (const auto& f : findings.items())
      s += " " + f.code + "@" + std::to_string(f.offset.value_or(~0ull)) + " (" + f.message + ")";
    return s;
  }
};

Outcome read(const std::vector<uint8_t>& b, const mf::Limits& limits = {}) {
  mf::MemorySource src(b, "legacy.pt");
  Outcome o;
  auto r = mf::read_legacy(src, limits, o.findings);
  if (r.ok())
    o.archive = std::move(r).value();
  else
    o.fatal = r.error();
  return o;
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

class LegacyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string err;
    dir_ = cached_fixtures("tests/format/legacy_fixtures.py", "legacy", err);
    ASSERT_FALSE(dir_.empty()) << err;
    layout_ = new nlohmann::json(nlohmann::json::parse(mt::read_text(dir_ + "/layout.json")));
  }
  static void TearDownTestSuite() {
    delete layout_;
    layout_ = nullptr;
  }
  static std::vector<uint8_t> bytes(const std::string& c) { return mt::read_file(dir_ + "/" + c + ".pt"); }
  static const nlohmann::json& layout(const std::string& c) { return (*layout_)[c]; }

  static std::string dir_;
  static nlohmann::json* layout_;
};
std::string LegacyTest::dir_;
nlohmann::json* LegacyTest::layout_ = nullptr;

}  // namespace

TEST_F(LegacyTest, ReadsTorchLegacyFileAsPythonPickleSeesIt) {
  auto b = bytes("legacy");
  ASSERT_EQ(mf::sniff_container(b), mf::ContainerKind::legacy);
  Outcome o = read(b);
  ASSERT_TRUE(o.archive) << o.dump();
  EXPECT_FALSE(o.findings.has_errors()) << o.dump();
  const auto& l = layout("legacy");
  const mf::LegacyArchive& la = *o.archive;
  EXPECT_EQ(la.object_offset, l["pickles"][3].get<uint64_t>());
  EXPECT_EQ(la.end, l["end"].get<uint64_t>());
  ASSERT_EQ(la.storages.size(), l["storages"].size());
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < la.storages.size(); ++i) {
    const auto& e = l["storages"][i];
    const mf::LegacyStorage& s = la.storages[i];
    EXPECT_EQ(s.key, e["key"].get<std::string>());
    EXPECT_EQ(s.count_offset, e["count_offset"].get<uint64_t>());
    EXPECT_EQ(s.data_offset, e["data_offset"].get<uint64_t>());
    EXPECT_EQ(s.numel, e["numel"].get<uint64_t>());
    EXPECT_EQ(s.bytes, e["bytes"].get<uint64_t>());
    sizes.push_back(s.bytes);
  }
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, l["torch_storage_bytes"].get<std::vector<uint64_t>>());
  // Eight tensors over seven storages ("view" and "tied" share one).
  EXPECT_EQ(la.object.tensors.size(), 8u);
  EXPECT_EQ(la.object.storages.size(), 7u);
}

TEST_F(LegacyTest, TruncationAnywhereFails) {
  auto b = bytes("legacy");
  const auto& l = layout("legacy");
  for (uint64_t cut = 0; cut < b.size(); ++cut) {
    std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(cut));
    Outcome o = read(t);
    ASSERT_FALSE(o.archive) << cut << o.dump();
  }
  // At the storage boundaries the code names the missing piece.
  for (const auto& s : l["storages"]) {
    uint64_t co = s["count_offset"], doff = s["data_offset"], n = s["bytes"];
    std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(co));
    EXPECT_TRUE(read(t).has("MG-IO-LEGACY-TRUNCATED", co)) << read(t).dump();
    t.assign(b.begin(), b.begin() + static_cast<long>(co + 4));
    EXPECT_TRUE(read(t).has("MG-IO-LEGACY-TRUNCATED", co));
    if (n > 0) {
      t.assign(b.begin(), b.begin() + static_cast<long>(doff + n - 1));
      EXPECT_TRUE(read(t).has("MG-IO-LEGACY-TRUNCATED", doff)) << read(t).dump();
    }
  }
  // Inside a pickle the pickle machine reports it.
  std::vector<uint8_t> t(b.begin(), b.begin() + l["pickles"][4].get<long>() - 1);
  Outcome o = read(t);
  ASSERT_FALSE(o.archive);
  EXPECT_EQ(o.fatal->code.rfind("MG-PICKLE-", 0), 0u) << o.dump();
}

TEST_F(LegacyTest, LyingElementCount) {
  auto b = bytes("legacy");
  const auto& s = layout("legacy")["storages"][1];
  uint64_t co = s["count_offset"];
  for (uint64_t lie : {s["numel"].get<uint64_t>() + 1, uint64_t{1} << 62, ~uint64_t{0}}) {
    auto t = b;
    for (int i = 0; i < 8; ++i) t[co + i] = static_cast<uint8_t>(lie >> (8 * i));
    Outcome o = read(t);
    ASSERT_FALSE(o.archive);
    EXPECT_TRUE(o.has("MG-IO-LEGACY-COUNT", co)) << o.dump();
  }
}

TEST_F(LegacyTest, HeaderPickles) {
  auto b = bytes("legacy");
  b[3] ^= 1;
  EXPECT_TRUE(read(b).has("MG-IO-LEGACY-MAGIC", 0));
  b = bytes("legacy");
  ASSERT_EQ(b[17], 0x4D);  // BININT2 1001
  b[18] = 0xEA;
  EXPECT_TRUE(read(b).has("MG-IO-LEGACY-VERSION", 15)) << read(b).dump();
  b = bytes("legacy");
  uint64_t sys = layout("legacy")["pickles"][2];
  uint64_t sys_end = layout("legacy")["pickles"][3];
  auto it = std::find(b.begin() + static_cast<long>(sys), b.begin() + static_cast<long>(sys_end), 0x88);  // NEWTRUE
  ASSERT_NE(it, b.begin() + static_cast<long>(sys_end));
  *it = 0x89;  // NEWFALSE: little_endian = False
  EXPECT_TRUE(read(b).has("MG-IO-LEGACY-BIG-ENDIAN", sys)) << read(b).dump();
  *it = 0x4E;  // NONE: not a bool
  EXPECT_TRUE(read(b).has("MG-IO-LEGACY-SYS-INFO", sys)) << read(b).dump();
}

// torch.save pickles the magic number, the protocol version, sys_info and the key list with the protocol
// it is given; from protocol 4 on every pickle is framed. Each must read like the protocol-2 file.
TEST_F(LegacyTest, EveryPickleProtocol) {
  const auto& ref = layout("legacy");
  for (int proto : {3, 4, 5}) {
    const std::string c = "legacy_p" + std::to_string(proto);
    SCOPED_TRACE(c);
    auto b = bytes(c);
    EXPECT_EQ(b[0], 0x80);
    EXPECT_EQ(b[1], proto);
    EXPECT_EQ(mf::sniff_container(b), mf::ContainerKind::legacy);
    Outcome o = read(b);
    ASSERT_TRUE(o.archive) << o.dump();
    EXPECT_EQ(o.findings.size(), 0u) << o.dump();
    const auto& l = layout(c);
    EXPECT_EQ(o.archive->object_offset, l["pickles"][3].get<uint64_t>());
    EXPECT_EQ(o.archive->end, l["end"].get<uint64_t>());
    ASSERT_EQ(o.archive->storages.size(), l["storages"].size());
    for (size_t i = 0; i < o.archive->storages.size(); ++i) {
      const auto& s = l["storages"][i];
      EXPECT_EQ(o.archive->storages[i].count_offset, s["count_offset"].get<uint64_t>());
      EXPECT_EQ(o.archive->storages[i].data_offset, s["data_offset"].get<uint64_t>());
      EXPECT_EQ(o.archive->storages[i].bytes, s["bytes"].get<uint64_t>());
    }
    EXPECT_EQ(o.archive->storages.size(), ref["storages"].size());
  }
}

// Every pickle torch.load unpickles is scanned, the magic number's first: a payload there runs before any
// check, so it is `unsafe` whether or not the magic number follows it.
TEST_F(LegacyTest, PayloadInTheMagicNumberPickleIsUnsafe) {
  auto unsafe_at = [](const Outcome& o, const std::string& code, uint64_t off) {
    for (const auto& f : o.findings.items())
      if (f.code == code && f.offset == off) return f.impact == mf::Impact::unsafe;
    return false;
  };
  // The payload, then the magic number: torch.load runs os.system and loads the file normally.
  const auto& t = layout("evil_magic_tail");
  Outcome o = read(bytes("evil_magic_tail"));
  ASSERT_TRUE(o.archive) << o.dump();
  EXPECT_TRUE(unsafe_at(o, "MG-PICKLE-UNSAFE-GLOBAL", t["global"])) << o.dump();
  EXPECT_TRUE(unsafe_at(o, "MG-PICKLE-UNSAFE-CALL", t["reduce"])) << o.dump();
  EXPECT_FALSE(o.findings.has_code("MG-PICKLE-LIMIT-INT")) << o.dump();  // the magic number itself is fine
  // The payload instead of the magic number: torch.load runs it, then raises "Invalid magic number".
  const auto& m = layout("evil_magic");
  o = read(bytes("evil_magic"));
  ASSERT_FALSE(o.archive);
  EXPECT_EQ(o.fatal->code, "MG-IO-LEGACY-MAGIC");
  EXPECT_TRUE(unsafe_at(o, "MG-PICKLE-UNSAFE-GLOBAL", m["global"])) << o.dump();
  EXPECT_TRUE(unsafe_at(o, "MG-PICKLE-UNSAFE-CALL", m["reduce"])) << o.dump();
  // A wrong header pickle does not hide a payload in a later one, and the fatal finding is returned only.
  const auto& v = layout("evil_after_bad_version");
  o = read(bytes("evil_after_bad_version"));
  ASSERT_FALSE(o.archive);
  EXPECT_TRUE(o.has("MG-IO-LEGACY-VERSION", v["version"])) << o.dump();
  EXPECT_FALSE(o.findings.has_code("MG-IO-LEGACY-VERSION")) << o.dump();
  EXPECT_TRUE(unsafe_at(o, "MG-PICKLE-UNSAFE-GLOBAL", v["global"])) << o.dump();
  EXPECT_TRUE(unsafe_at(o, "MG-PICKLE-UNSAFE-CALL", v["reduce"])) << o.dump();
}

TEST_F(LegacyTest, KeyListMustMatchReferencedStorages) {
  const auto& m = layout("missing_key");
  Outcome o = read(bytes("missing_key"));
  ASSERT_TRUE(o.archive) << o.dump();
  EXPECT_TRUE(o.findings.has_code("MG-IO-LEGACY-KEY-MISSING")) << o.dump();
  std::string missing = layout("legacy")["storages"].back()["key"];
  for (const auto& f : o.findings.items())
    if (f.code == "MG-IO-LEGACY-KEY-MISSING") {
      EXPECT_EQ(f.name, missing);
      EXPECT_EQ(f.offset.value(), layout("legacy")["persid"][missing].get<uint64_t>());
      EXPECT_LT(f.offset.value(), m["pickles"][4].get<uint64_t>());
    }
  o = read(bytes("dup_key"));
  EXPECT_TRUE(o.has("MG-IO-LEGACY-KEYS", layout("dup_key")["pickles"][4].get<uint64_t>())) << o.dump();
  o = read(bytes("extra_key"));
  EXPECT_TRUE(o.has("MG-IO-LEGACY-KEY-UNREFERENCED", layout("extra_key")["pickles"][4].get<uint64_t>())) << o.dump();
}

TEST_F(LegacyTest, TrailingBytes) {
  auto b = bytes("legacy");
  uint64_t n = b.size();
  b.insert(b.end(), 16, 0);
  Outcome o = read(b);
  ASSERT_TRUE(o.archive);
  EXPECT_TRUE(o.has("MG-IO-LEGACY-TRAILING-DATA", n)) << o.dump();
}

TEST_F(LegacyTest, PickleSizeLimit) {
  mf::Limits lim;
  lim.max_pickle_bytes = 64;  // the object pickle is larger
  Outcome o = read(bytes("legacy"), lim);
  ASSERT_FALSE(o.archive);
  EXPECT_TRUE(o.has("MG-IO-LEGACY-PICKLE-TOO-LARGE", layout("legacy")["pickles"][2].get<uint64_t>()) ||
              o.has("MG-IO-LEGACY-PICKLE-TOO-LARGE", layout("legacy")["pickles"][3].get<uint64_t>()))
      << o.dump();
}

// A pickle slice cut at max_pickle_bytes is reported as too large only when the pickle may merely have been
// cut: an unsafe fatal finding inside the slice (here a BINBYTES whose length straddles its FRAME, see
// docs/pickle-machine.md) comes out unchanged, so the verdict stays unsafe.
TEST_F(LegacyTest, UnsafeFatalFindingInACappedPickleIsKept) {
  using mgcheck::corpus::PickleBytes;
  PickleBytes hidden;
  hidden.pop().global("builtins", "repr").str("hidden").tuple1().reduce();
  PickleBytes p;
  p.proto(5).op(0x95).le(2, 8);                                    // FRAME 2
  p.op('B').op(static_cast<uint8_t>(1 + hidden.bytes.size()));     // BINBYTES and one length byte in the frame
  p.le(0, 3).op(0);
  p.raw(std::string(hidden.bytes.begin(), hidden.bytes.end())).stop();
  constexpr uint64_t kStraddle = 11;  // PROTO (2) + FRAME (9): the BINBYTES opcode

  const auto orig = bytes("legacy");
  const auto& l = layout("legacy");
  const uint64_t obj = l["pickles"][3], keys = l["pickles"][4];
  std::vector<uint8_t> b(orig.begin(), orig.begin() + static_cast<long>(obj));
  b.insert(b.end(), p.bytes.begin(), p.bytes.end());
  b.insert(b.end(), orig.begin() + static_cast<long>(keys), orig.end());

  // The smallest limit the three header pickles fit in: the object pickle's slice is cut.
  mf::Limits lim;
  lim.max_pickle_bytes = 0;
  for (int i = 0; i < 3; ++i)
    lim.max_pickle_bytes = std::max(lim.max_pickle_bytes, l["pickles"][i + 1].get<uint64_t>() - l["pickles"][i].get<uint64_t>());
  ASSERT_GT(lim.max_pickle_bytes, kStraddle + 5);  // the straddle lies inside the slice
  ASSERT_GT(b.size() - obj, lim.max_pickle_bytes);  // and the slice is capped

  Outcome o = read(b, lim);
  ASSERT_FALSE(o.archive) << o.dump();
  EXPECT_EQ(o.fatal->code, "MG-PICKLE-FRAME-STRADDLE") << o.dump();
  EXPECT_EQ(o.fatal->impact, mf::Impact::unsafe);
  EXPECT_EQ(o.fatal->offset, obj + kStraddle);
  EXPECT_FALSE(o.findings.has_code("MG-IO-LEGACY-PICKLE-TOO-LARGE")) << o.dump();

  // The same limit with torch's own object pickle, which is longer: that one is too large, not unsafe.
  o = read(orig, lim);
  ASSERT_FALSE(o.archive) << o.dump();
  EXPECT_TRUE(o.has("MG-IO-LEGACY-PICKLE-TOO-LARGE", obj)) << o.dump();
  EXPECT_EQ(o.fatal->impact, mf::Impact::normal);
}

// With `partial`, a refused legacy file still yields every GLOBAL its pickles referenced, in file order,
// as Python's pickletools walks them, and the object pickle's global values still name their own entries.
TEST_F(LegacyTest, PartialResultListsEveryGlobalBeforeTheRefusal) {
  auto read_partial = [](const std::vector<uint8_t>& b, mf::PickleResult& partial) {
    mf::MemorySource src(b, "legacy.pt");
    mf::Findings f;
    return mf::read_legacy(src, mf::Limits{}, f, &partial);
  };
  // A wrong header pickle: the object pickle after it (the payload) still ran, its GLOBAL is recorded.
  {
    mf::PickleResult partial;
    auto r = read_partial(bytes("evil_after_bad_version"), partial);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "MG-IO-LEGACY-VERSION");
    ASSERT_EQ(partial.globals.size(), 1u);
    EXPECT_EQ(partial.globals[0].offset, layout("evil_after_bad_version")["global"].get<uint64_t>());
    EXPECT_EQ(partial.globals[0].cls, mf::GlobalClass::unsafe);
  }
  // A payload in the magic number pickle, then torch's file cut in the middle of its object pickle.
  const auto& t = layout("evil_magic_tail");
  const auto whole = bytes("evil_magic_tail");
  const auto& l = layout("legacy");
  const uint64_t obj = t["version"].get<uint64_t>() + (l["pickles"][3].get<uint64_t>() - l["pickles"][1].get<uint64_t>());
  const uint64_t cut = obj + (l["pickles"][4].get<uint64_t>() - l["pickles"][3].get<uint64_t>()) / 2;
  const std::vector<uint8_t> b(whole.begin(), whole.begin() + static_cast<long>(cut));
  mt::TempDir dir("legacy-partial");
  mt::write_file(dir.file("cut.pt"), b);
  auto py = mt::run_python(R"PY(
import io, pickletools, sys
data = open(sys.argv[1], 'rb').read()
f = io.BytesIO(data)
try:
    while f.tell() < len(data):
        for op, arg, pos in pickletools.genops(f):
            if op.name in ('GLOBAL', 'STACK_GLOBAL', 'INST'):
                print(pos, arg.replace(' ', '.') if isinstance(arg, str) else '')
except ValueError:
    pass  # the cut
)PY",
                           {dir.file("cut.pt")});
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(py.exit_code == 0, "python3 not available");
  std::vector<std::pair<uint64_t, std::string>> want;
  std::istringstream lines(py.out);
  for (std::string line; std::getline(lines, line);) {
    const size_t sp = line.find(' ');
    want.emplace_back(std::stoull(line.substr(0, sp)), line.substr(sp + 1));
  }
  ASSERT_GE(want.size(), 3u) << py.out;  // the payload's, and at least two of the object pickle's
  mf::PickleResult partial;
  auto r = read_partial(b, partial);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(partial.globals.size(), want.size()) << py.out;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(partial.globals[i].offset, want[i].first) << i;
    EXPECT_EQ(partial.globals[i].module + "." + partial.globals[i].name, want[i].second) << i;
  }
  EXPECT_EQ(partial.globals[0].offset, t["global"].get<uint64_t>());
  EXPECT_EQ(partial.globals[0].cls, mf::GlobalClass::unsafe);
  size_t global_values = 0;
  for (mf::ValueId id = 0; id < partial.arena.size(); ++id)
    if (partial.arena[id].kind == mf::ValueKind::global) {
      ++global_values;
      const mf::GlobalUse* g = mf::global_of(partial, id);
      ASSERT_NE(g, nullptr);
      EXPECT_EQ(g->module + "." + g->name, partial.arena[id].s);
      EXPECT_GE(g->offset, obj);  // one of the object pickle's own
    }
  EXPECT_GE(global_values, 2u);
}

TEST_F(LegacyTest, RandomByteMutationsNeverCrash) {
  const auto base = bytes("legacy");
  uint64_t state = 0x2545F4914F6CDD1Dull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int i = 0; i < 4000; ++i) {
    auto b = base;
    int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) b[next() % b.size()] = static_cast<uint8_t>(next());
    Outcome o = read(b);
    if (o.archive) {
      for (const auto& s : o.archive->storages) EXPECT_LE(s.data_offset + s.bytes, b.size());
    }
  }
}
