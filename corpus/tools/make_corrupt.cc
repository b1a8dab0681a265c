// make_corrupt: a deterministic, seeded generator of NAMED corruption kinds (docs/fuzzing.md).
//
//   make_corrupt SOURCE_DIR OUT_DIR [SEED]
//
// Builds valid files (the writer, and the fixtures in SOURCE_DIR/corpus/audiocraft-tiny and
// SOURCE_DIR/corpus/fuzz/legacy), corrupts them one named way at a time, and writes OUT_DIR/manifest.tsv:
//
//   kind <TAB> command <TAB> path <TAB> verdict <TAB> code <TAB> extra-args
//
// command is `inspect` (path = one file) or `quick` (path = an export directory); verdict is the exit the
// file must get (pass / fail / unsafe); code is a finding code the JSON report must contain ("-" for
// none, e.g. a valid control); extra-args (space separated, may be empty) go after the path, e.g.
// `--limit max_memo_entries=64` so a limit is reached with a small file. Paths are relative to OUT_DIR.
// The same SEED always gives the same bytes. To add a kind: write a function below and call it from
// main(); docs/fuzzing.md walks through one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/legacy.h"
#include "mgcheck/format/resolve.h"
#include "mgcheck/format/writer.h"
#include "pickle_bytes.h"
#include "zip_layout.h"

namespace fs = std::filesystem;
using namespace mgcheck::format;
using mgcheck::corpus::get_le;
using mgcheck::corpus::PickleBytes;
using mgcheck::corpus::put_le;
using mgcheck::corpus::zip_layout;
using Bytes = std::vector<uint8_t>;

namespace {

struct Generator {
  fs::path src;
  fs::path out;
  std::mt19937_64 rng;
  std::ofstream manifest;
  size_t count = 0;

  fs::path fixture(const std::string& rel) const { return src / "corpus" / rel; }

  void record(const std::string& kind, const std::string& command, const std::string& rel,
              const std::string& verdict, const std::string& code, const std::string& args = "",
              const std::string& xfail = "") {
    manifest << kind << '\t' << command << '\t' << rel << '\t' << verdict << '\t' << code << '\t' << args << '\t'
             << xfail << '\n';
    ++count;
  }

  // One file checked with `mgcheck inspect FILE`.
  void file(const std::string& kind, const Bytes& bytes, const std::string& verdict, const std::string& code,
            const std::string& args = "", const std::string& xfail = "") {
    fs::create_directories(out / "files" / kind);
    std::string rel = "files/" + kind + "/" + kind + "-" + std::to_string(count) + ".pt";
    std::ofstream(out / rel, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                      static_cast<std::streamsize>(bytes.size()));
    record(kind, "inspect", rel, verdict, code, args, xfail);
  }

  // An export directory checked with `mgcheck quick DIR`; an empty file means "the unchanged fixture"
  // (a symlink, so hundreds of cases cost no disk).
  void dir(const std::string& kind, const Bytes& lm, const Bytes& compression, const std::string& verdict,
           const std::string& code, const std::string& args = "", const std::string& xfail = "") {
    std::string rel = "dirs/" + kind + "-" + std::to_string(count);
    fs::create_directories(out / rel);
    auto put = [&](const char* name, const Bytes& b) {
      fs::path p = out / rel / name;
      fs::remove(p);
      if (b.empty()) {
        fs::create_symlink(fs::absolute(fixture(std::string("audiocraft-tiny/e_encodec_reflect/") + name)), p);
      } else {
        std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                 static_cast<std::streamsize>(b.size()));
      }
    };
    put(kLmFileName, lm);
    put(kCompressionFileName, compression);
    record(kind, "quick", rel, verdict, code, args, xfail);
  }
};

Bytes read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Bytes must(Result<Bytes> r) {
  if (!r) throw std::runtime_error("writer: " + r.error().code + " " + r.error().message);
  return std::move(r).value();
}

Bytes f32_bytes(std::vector<float> v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// --- valid bases -------------------------------------------------------------------------------------

// A small plain state dict: three storages of different dtypes, one shared view.
WValue small_tree() {
  WTensor w = make_tensor(DType::float32, {3, 4}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  WTensor b = make_tensor(DType::float16, {4}, Bytes{0x00, 0x3c, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44});
  WTensor n = make_tensor(DType::int64, {2}, Bytes{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0});
  WDict d;
  d.emplace_back("layer.weight", w);
  d.emplace_back("layer.bias", b);
  d.emplace_back("steps", n);
  WValue v(std::move(d));
  v.ordered_dict = true;
  return v;
}

// A valid archive whose data.pkl is `pickle` and whose storages data/0..data/3 hold 64 bytes each
// (16 float32 elements), so hand-written pickles can name them.
Bytes archive_with_pickle(const Bytes& pickle, std::vector<std::pair<std::string, Bytes>> extra = {},
                          size_t storages = 4, size_t storage_bytes = 64) {
  WriteOptions wo;
  wo.omit_records = {"data.pkl"};
  wo.extra_records.emplace_back("data.pkl", pickle);
  for (size_t i = 0; i < storages; ++i) {
    Bytes s(storage_bytes);
    for (size_t k = 0; k < s.size(); ++k) s[k] = static_cast<uint8_t>(k % 4 == 3 ? 0x3f : 0);  // 0.5f-ish
    wo.extra_records.emplace_back("data/" + std::to_string(i), std::move(s));
  }
  for (auto& e : extra) wo.extra_records.push_back(std::move(e));
  return must(write_torch_save(WValue(WDict{}), wo));
}

// PROTO 5, FRAME of 2 bytes holding BINBYTES and the first byte of its length; the rest of the length,
// then POP, GLOBAL builtins repr, 'hidden', TUPLE1, REDUCE, STOP (docs/pickle-machine.md §2).
Bytes frame_straddle_pickle() {
  PickleBytes hidden;
  hidden.pop().global("builtins", "repr").str("hidden").tuple1().reduce();
  PickleBytes p;
  p.proto(5).op(0x95).le(2, 8).op('B').op(static_cast<uint8_t>(1 + hidden.bytes.size())).le(0, 4);
  p.raw(std::string(hidden.bytes.begin(), hidden.bytes.end())).stop();
  return p.bytes;
}

// {'t': _rebuild_tensor_v2(...)} around one tensor description.
Bytes one_tensor_pickle(const std::string& cls, const std::string& key, int64_t numel, int64_t offset,
                        const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
                        const std::string& location = "cpu") {
  PickleBytes p;
  p.proto().empty_dict().str("t").tensor_v2(cls, key, numel, offset, sizes, strides, location).setitem().stop();
  return p.bytes;
}

// Checkpoint value tree → writer tree (tensors keep pointing into `src`'s bytes).
WValue to_wvalue(const Checkpoint& ck, ValueId id) {
  const Value& v = ck.pickle.arena[id];
  switch (v.kind) {
    case ValueKind::none: return WValue(WNone{});
    case ValueKind::boolean: return WValue(v.i != 0);
    case ValueKind::integer: return WValue(v.i);
    case ValueKind::floating: return WValue(v.f);
    case ValueKind::string: return WValue(v.s);
    case ValueKind::list:
    case ValueKind::tuple: {
      WList l;
      for (auto c : v.items) l.push_back(to_wvalue(ck, c));
      WValue w(std::move(l));
      w.tuple = v.kind == ValueKind::tuple;
      return w;
    }
    case ValueKind::dict: {
      WDict d;
      for (size_t k = 0; k + 1 < v.items.size(); k += 2)
        d.emplace_back(ck.pickle.arena[v.items[k]].s, to_wvalue(ck, v.items[k + 1]));
      WValue w(std::move(d));
      w.ordered_dict = v.ordered_dict;
      return w;
    }
    case ValueKind::tensor: {
      const TensorView& t = ck.tensors.at(static_cast<size_t>(v.i));
      const TensorRef& ref = ck.pickle.tensors.at(static_cast<size_t>(v.i));
      WTensor w;
      w.dtype = t.dtype;
      w.sizes = t.sizes;
      w.strides = t.strides;
      w.storage_offset = t.storage_offset;
      w.storage = t.storage;
      w.share_key = t.storage_key;
      w.parameter = ref.parameter;
      w.requires_grad = ref.requires_grad;
      return WValue(std::move(w));
    }
    default: throw std::runtime_error("to_wvalue: unexpected value kind");
  }
}

WValue* dict_find(WValue& d, const std::string& key) {
  for (auto& [k, v] : std::get<WDict>(d.v))
    if (k == key) return &v;
  return nullptr;
}
void dict_erase(WValue& d, const std::string& key) {
  auto& items = std::get<WDict>(d.v);
  std::erase_if(items, [&](const auto& kv) { return kv.first == key; });
}

// An export file (the e_encodec_reflect fixture) loaded as a writer tree.
struct Export {
  std::unique_ptr<MemorySource> source;  // keeps the tensors' bytes alive
  Checkpoint ck;
  WValue tree;
};
Export load_export(const fs::path& p) {
  Export e;
  e.source = std::make_unique<MemorySource>(read_all(p), p.string());
  Findings f;
  auto ck = read_checkpoint(*e.source, Limits{}, ReadOptions{}, f);
  if (!ck || f.has_errors()) throw std::runtime_error("fixture does not read cleanly: " + p.string());
  e.ck = std::move(ck).value();
  e.tree = to_wvalue(e.ck, e.ck.pickle.root);
  return e;
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  if (at == std::string::npos) throw std::runtime_error("replace_once: '" + from + "' not in text");
  return s.replace(at, from.size(), to);
}

// --- kinds: containers ------------------------------------------------------------------------------

void controls(Generator& g, const Bytes& small) {
  g.file("control-small", small, "pass", "-");
  g.file("control-lm-export", read_all(g.fixture("audiocraft-tiny/e_encodec_reflect/state_dict.bin")), "pass", "-");
  g.file("control-legacy", read_all(g.fixture("fuzz/legacy/small_sd.legacy")), "pass", "-");
  // torch.save writes the legacy header pickles and FRAMEs differently at each protocol; every one must pass.
  for (int proto = 2; proto <= 5; ++proto) {
    const std::string p = std::to_string(proto);
    g.file("control-legacy-protocol" + p, read_all(g.fixture("fuzz/legacy/small_sd.p" + p + ".legacy")), "pass", "-");
    g.file("control-zip-protocol" + p, read_all(g.fixture("fuzz/zip/small_sd.p" + p + ".pt")), "pass", "-");
  }
  g.dir("control-export", {}, {}, "pass", "-");
}

void not_a_checkpoint(Generator& g) {
  auto text = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
  g.file("format-empty", {}, "fail", "MG-IO-EMPTY");
  g.file("format-lfs-pointer",
         text("version https://git-lfs.github.com/spec/v1\noid sha256:" + std::string(64, 'a') + "\nsize 1234\n"),
         "fail", "MG-IO-LFS-POINTER");
  g.file("format-html", text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n"), "fail", "MG-IO-HTML");
  g.file("format-pytorch1", text("PYTORCH1\x00\x00\x00\x00"), "fail", "MG-IO-PYTORCH1");
  Bytes tar(1024, 0);
  std::memcpy(tar.data(), "state_dict.bin", 14);
  std::memcpy(tar.data() + 257, "ustar\x00" "00", 8);
  g.file("format-tar", tar, "fail", "MG-IO-TAR");
  g.file("format-garbage", text("\x7f" "ELF not a checkpoint at all"), "fail", "MG-IO-UNKNOWN-FORMAT");
  // TorchScript: torch.jit.save's records next to a state dict.
  g.file("format-torchscript",
         archive_with_pickle(PickleBytes().proto().empty_dict().stop().bytes,
                             {{"constants.pkl", PickleBytes().proto().empty_tuple().stop().bytes},
                              {"code/__torch__.py", text("def forward(self): pass\n")}},
                             0),
         "unsafe", "MG-ZIP-TORCHSCRIPT");
}

// Truncation at every structural boundary of the zip (headers, names, data, descriptors, central
// directory entries, ZIP64 records, end record) and a few bytes either side.
void zip_truncations(Generator& g, const Bytes& small) {
  auto L = zip_layout(small);
  std::vector<uint64_t> cuts = {1, 3, 4, 29, 30};
  for (const auto& e : L.entries) {
    for (uint64_t c : {e.local, e.local + 4, e.local + 30, e.data - 1, e.data, e.data + e.size / 2, e.data + e.size,
                       e.data + e.size + 8, e.cd, e.cd + 46})
      cuts.push_back(c);
  }
  for (uint64_t c : {L.cd_offset, L.cd_offset + L.cd_size, L.eocd64, L.eocd64 + 28, L.locator, L.locator + 10, L.eocd,
                     L.eocd + 4, L.eocd + 12, static_cast<uint64_t>(small.size() - 1)})
    cuts.push_back(c);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (uint64_t c : cuts) {
    if (c == 0 || c >= small.size()) continue;
    Bytes b(small.begin(), small.begin() + static_cast<std::ptrdiff_t>(c));
    // Under 4 bytes the "PK\3\4" signature is gone, so the file is not recognised at all.
    g.file("zip-truncate", b, "fail", c < 4 ? "MG-IO-UNKNOWN-FORMAT" : "MG-ZIP-NO-EOCD");
  }
}

void zip_flips(Generator& g, const Bytes& small) {
  auto L = zip_layout(small);
  // A flipped byte inside a record's stored data: the CRC-32 catches it.
  for (int i = 0; i < 40; ++i) {
    const auto& e = L.entries[g.rng() % L.entries.size()];
    if (e.size == 0) continue;
    Bytes b = small;
    uint64_t at = e.data + g.rng() % e.size;
    b[at] ^= static_cast<uint8_t>(1 + g.rng() % 255);
    // data.pkl bytes are also parsed: a flip there may break the pickle too, but the CRC finding is always there.
    g.file("zip-flip-data", b, e.name.ends_with("data.pkl") ? "fail|unsafe" : "fail", "MG-ZIP-CRC");
  }
  // Flipped signatures.
  for (const auto& e : L.entries) {
    Bytes b = small;
    b[e.local + 1] ^= 0x20;
    // The first local header is also the file's magic: without "PK\3\4" it is not a zip at all.
    g.file("zip-flip-local-signature", b, "fail", e.local == 0 ? "MG-IO-UNKNOWN-FORMAT" : "MG-ZIP-LOCAL-HEADER");
    Bytes c = small;
    c[e.cd + 1] ^= 0x20;
    g.file("zip-flip-cd-signature", c, "fail", "MG-ZIP-CD-ENTRY");
  }
}

void zip_crc_and_sizes(Generator& g, const Bytes& small) {
  auto L = zip_layout(small);
  for (const auto& e : L.entries) {
    Bytes b = small;
    put_le(b, e.cd + 16, get_le(b, e.cd + 16, 4) ^ 0x00010000u, 4);
    g.file("zip-crc-mismatch", b, "fail", "MG-ZIP-CRC");
    if (e.size == 0) continue;
    // Lying sizes in the central directory (compressed and uncompressed together, so the entry stays
    // "stored"): one byte less, one more, and past the end of the file.
    for (int64_t delta : {-1, 1}) {
      Bytes s = small;
      put_le(s, e.cd + 20, static_cast<uint64_t>(static_cast<int64_t>(e.size) + delta), 4);
      put_le(s, e.cd + 24, static_cast<uint64_t>(static_cast<int64_t>(e.size) + delta), 4);
      // torch writes data descriptors: the lie shows as a descriptor that disagrees with the directory.
      g.file("zip-lying-size", s, "fail", "MG-ZIP-DESCRIPTOR");
    }
    // The local header claims other sizes than the central directory: a streaming reader would take
    // other bytes as this record than torch does.
    Bytes loc = small;
    put_le(loc, e.local + 18, e.size + 64, 4);
    put_le(loc, e.local + 22, e.size + 64, 4);
    g.file("zip-local-size-lie", loc, "unsafe", "MG-ZIP-LOCAL-SIZES");
    Bytes big = small;
    put_le(big, e.cd + 20, 0x7fffffff, 4);
    put_le(big, e.cd + 24, 0x7fffffff, 4);
    g.file("zip-lying-size-huge", big, "unsafe", "MG-ZIP-BOMB");
  }
}

void zip_counts_and_zip64(Generator& g, const Bytes& small) {
  auto L = zip_layout(small);
  uint64_t n = L.entries.size();
  // Classic end record: entry counts and central-directory size/offset that disagree with ZIP64.
  for (uint64_t v : {n - 1, n + 1, uint64_t{0}}) {
    Bytes b = small;
    put_le(b, L.eocd + 10, v, 2);
    put_le(b, L.eocd + 8, v, 2);
    g.file("zip-lying-count", b, "fail", "MG-ZIP-EOCD-MISMATCH");
  }
  // ZIP64 end record fields.
  for (uint64_t v : {n - 1, n + 1, uint64_t{1} << 40}) {
    Bytes b = small;
    put_le(b, L.eocd64 + 24, v, 8);
    put_le(b, L.eocd64 + 32, v, 8);
    g.file("zip64-lying-count", b, "fail", "MG-ZIP-EOCD-MISMATCH");  // the classic record still says n
    Bytes s = b;  // the classic record defers to ZIP64 (0xFFFF sentinels): the lie is all there is
    put_le(s, L.eocd + 8, 0xFFFF, 2);
    put_le(s, L.eocd + 10, 0xFFFF, 2);
    // One entry too few leaves bytes after the last entry; one too many reads past the directory.
    g.file("zip64-lying-count-sentinel", s, "fail",
           v == n - 1 ? "MG-ZIP-CD-BOUNDS" : v == n + 1 ? "MG-ZIP-CD-ENTRY" : "MG-ZIP-TOO-MANY-RECORDS");
  }
  for (uint64_t v : {L.cd_size - 1, L.cd_size + 1, uint64_t{1} << 50}) {
    Bytes b = small;
    put_le(b, L.eocd64 + 40, v, 8);
    g.file("zip64-lying-cd-size", b, "fail", "MG-ZIP-EOCD-MISMATCH");
    put_le(b, L.eocd + 12, 0xFFFFFFFF, 4);
    g.file("zip64-lying-cd-size-sentinel", b, "fail", v > (1u << 30) ? "MG-ZIP-CD-TOO-LARGE|MG-ZIP-CD-BOUNDS" : "MG-ZIP-CD-BOUNDS");
  }
  for (uint64_t v : {L.cd_offset + 1, L.cd_offset - 1, uint64_t{1} << 62}) {
    Bytes b = small;
    put_le(b, L.eocd64 + 48, v, 8);
    g.file("zip64-lying-cd-offset", b, "fail", "MG-ZIP-EOCD-MISMATCH");
    put_le(b, L.eocd + 16, 0xFFFFFFFF, 4);
    g.file("zip64-lying-cd-offset-sentinel", b, "fail", "MG-ZIP-CD-BOUNDS");
  }
  {
    Bytes b = small;
    put_le(b, L.locator + 8, L.eocd64 + 8, 8);
    g.file("zip64-locator-offset", b, "fail", "MG-ZIP-ZIP64-LOCATOR");
    Bytes c = small;
    put_le(c, L.eocd64, 0x06064b51, 4);
    g.file("zip64-eocd-signature", c, "fail", "MG-ZIP-ZIP64-EOCD");
    Bytes d = small;
    put_le(d, L.locator + 16, 2, 4);  // two disks
    g.file("zip64-multi-disk", d, "fail", "MG-ZIP-MULTI-DISK");
    Bytes e = small;
    put_le(e, L.eocd + 4, 1, 2);
    g.file("zip-multi-disk", e, "fail", "MG-ZIP-MULTI-DISK");
  }
}

void zip_overlaps_and_names(Generator& g, const Bytes& small) {
  auto L = zip_layout(small);
  // Two central-directory entries pointing at the same local header.
  for (size_t i = 1; i < L.entries.size(); ++i) {
    Bytes b = small;
    put_le(b, L.entries[i].cd + 42, L.entries[i - 1].local, 4);
    g.file("zip-overlap", b, "fail", "MG-ZIP-LOCAL-MISMATCH");
  }
  // Duplicate names: rename data/1 to data/0 (same length) in both headers.
  for (const auto& e : L.entries) {
    if (!e.name.ends_with("data/1")) continue;
    Bytes b = small;
    b[e.cd + 46 + e.name.size() - 1] = '0';
    b[e.local + 30 + e.name.size() - 1] = '0';
    g.file("zip-duplicate-name", b, "unsafe", "MG-ZIP-DUPLICATE-NAME");
  }
  // Traversal and unsafe names, written by the writer's own zip layer.
  const Bytes payload = {'x'};
  for (const char* name : {"../../etc/passwd", "data/../../x", "..\\evil.bin", "data/..", "a/../../../../root/.ssh/x"}) {
    g.file("zip-traversal-name",
           archive_with_pickle(PickleBytes().proto().empty_dict().stop().bytes, {{name, payload}}, 0), "unsafe",
           "MG-ZIP-NAME-UNSAFE");
  }
  // Valid UTF-8 names with control characters (ESC, SOH, DEL, the C1 CSI): torch.save never writes them.
  for (const char* name : {"data/\x1b[2J", "data/x\x01", "data/\x7f", "data/\xc2\x9b" "31m"}) {
    g.file("zip-control-name",
           archive_with_pickle(PickleBytes().proto().empty_dict().stop().bytes, {{name, payload}}, 0), "fail",
           "MG-ZIP-NAME-CONTROL");
  }
}

void zip_compressed_and_bombs(Generator& g, const Bytes& small) {
  auto L = zip_layout(small);
  for (const auto& e : L.entries) {
    if (e.size == 0) continue;
    Bytes b = small;
    put_le(b, e.local + 8, 8, 2);  // deflate
    put_le(b, e.cd + 10, 8, 2);
    g.file("zip-compressed", b, "fail", "MG-ZIP-COMPRESSED");
    // A "bomb": deflate with an uncompressed size far beyond the file.
    Bytes c = b;
    put_le(c, e.cd + 24, 0xF0000000u, 4);
    g.file("zip-bomb", c, "unsafe", "MG-ZIP-BOMB");
  }
}

// --- kinds: legacy ----------------------------------------------------------------------------------

void legacy_truncations(Generator& g) {
  Bytes base = read_all(g.fixture("fuzz/legacy/small_sd.legacy"));
  MemorySource src(base, "legacy");
  Findings f;
  auto arch = read_legacy(src, Limits{}, f);
  if (!arch) throw std::runtime_error("legacy fixture does not read");
  // The ends of the stacked pickles before the object pickle (magic, protocol, sys_info).
  std::vector<uint64_t> cuts = {16, arch->object_offset - 1, arch->object_offset, arch->object_offset + 2,
                                arch->object_offset + arch->object.end - 1, arch->object_offset + arch->object.end};
  for (const auto& s : arch->storages)
    for (uint64_t c : {s.count_offset, s.count_offset + 4, s.data_offset, s.data_offset + s.bytes / 2})
      cuts.push_back(c);
  cuts.push_back(base.size() - 1);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (uint64_t c : cuts) {
    if (c >= base.size()) continue;
    g.file("legacy-truncate", Bytes(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(c)), "fail",
           "MG-IO-LEGACY-TRUNCATED|MG-PICKLE-TRUNCATED|MG-IO-UNKNOWN-FORMAT");
  }
  // A storage count that lies (one more element than stored).
  for (const auto& s : arch->storages) {
    Bytes b = base;
    put_le(b, s.count_offset, s.numel + 1, 8);
    g.file("legacy-lying-count", b, "fail", "MG-IO-LEGACY-COUNT|MG-IO-LEGACY-TRUNCATED");
    Bytes h = base;
    put_le(h, s.count_offset, uint64_t{1} << 61, 8);
    g.file("legacy-lying-count-huge", h, "fail", "MG-IO-LEGACY-COUNT|MG-IO-LEGACY-TRUNCATED");
  }
  Bytes trailing = base;
  trailing.insert(trailing.end(), {1, 2, 3, 4});
  g.file("legacy-trailing", trailing, "fail", "MG-IO-LEGACY-TRAILING-DATA");
  // The object pickle replaced by one whose BINBYTES straddles its FRAME (the rest of the file follows).
  Bytes straddle(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(arch->object_offset));
  Bytes pkl = frame_straddle_pickle();
  straddle.insert(straddle.end(), pkl.begin(), pkl.end());
  straddle.insert(straddle.end(), base.begin() + static_cast<std::ptrdiff_t>(arch->object_offset + arch->object.end),
                  base.end());
  g.file("legacy-frame-straddle", straddle, "unsafe", "MG-PICKLE-FRAME-STRADDLE");
  // torch.load unpickles the magic-number pickle before checking anything: a payload there runs.
  PickleBytes payload;
  payload.proto(2).global("posix", "system").str("true").tuple1().reduce();
  Bytes magic_tail = payload.bytes;  // payload, POP, then the magic number torch.load checks
  magic_tail.push_back('0');
  magic_tail.insert(magic_tail.end(), base.begin() + 2, base.end());
  g.file("legacy-magic-payload", magic_tail, "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
  Bytes replaced = payload.bytes;  // the payload instead of the magic number
  replaced.push_back('.');
  replaced.insert(replaced.end(), base.begin() + 15, base.end());
  g.file("legacy-magic-replaced", replaced, "unsafe", "MG-PICKLE-UNSAFE-CALL");
  // A raw pickle (no torch.save container): torch.load's legacy path unpickles it too.
  Bytes raw = payload.bytes;
  raw.push_back('.');
  g.file("format-raw-pickle-payload", raw, "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
  // A raw pickle whose BINBYTES length crosses its FRAME's end: loaders disagree on what it runs.
  PickleBytes hidden;
  hidden.global("builtins", "print").str("hi").tuple1().reduce();
  PickleBytes raw_straddle;
  raw_straddle.proto(5).op(0x95).le(2, 8).op('B').le(hidden.bytes.size(), 4);
  raw_straddle.bytes.insert(raw_straddle.bytes.end(), hidden.bytes.begin(), hidden.bytes.end());
  raw_straddle.stop();
  g.file("format-raw-pickle-frame-straddle", raw_straddle.bytes, "unsafe", "MG-PICKLE-FRAME-STRADDLE");
  PickleBytes harmless;
  harmless.proto(2).empty_dict().str("a").binint(1).setitem().stop();
  g.file("format-raw-pickle-harmless", harmless.bytes, "fail", "MG-IO-UNKNOWN-FORMAT");
}

// --- kinds: tensor table ----------------------------------------------------------------------------

void tensor_table(Generator& g) {
  auto t = [&](const std::string& kind, const Bytes& pickle, const std::string& verdict, const std::string& code) {
    g.file(kind, archive_with_pickle(pickle, {}, 1), verdict, code);
  };
  // Every case names storage data/0 only, so no other record is an orphan.
  t("tensor-valid", one_tensor_pickle("FloatStorage", "0", 16, 0, {4, 4}, {4, 1}), "pass", "-");
  // Out-of-bounds views.
  t("tensor-oob-offset", one_tensor_pickle("FloatStorage", "0", 16, 13, {4}, {1}), "fail", "MG-TENSOR-OUT-OF-BOUNDS");
  t("tensor-oob-stride", one_tensor_pickle("FloatStorage", "0", 16, 0, {4, 4}, {5, 1}), "fail", "MG-TENSOR-OUT-OF-BOUNDS");
  t("tensor-oob-size", one_tensor_pickle("FloatStorage", "0", 16, 0, {17}, {1}), "fail", "MG-TENSOR-OUT-OF-BOUNDS");
  t("tensor-negative-stride", one_tensor_pickle("FloatStorage", "0", 16, 15, {4}, {-1}), "fail", "MG-TENSOR-NEGATIVE-STRIDE");
  t("tensor-negative-size", one_tensor_pickle("FloatStorage", "0", 16, 0, {-4}, {1}), "fail", "MG-TENSOR-NEGATIVE-SIZE");
  t("tensor-negative-offset", one_tensor_pickle("FloatStorage", "0", 16, -1, {4}, {1}), "fail", "MG-TENSOR-NEGATIVE-OFFSET");
  // The pickle layer already refuses rebuild arguments whose sizes and strides differ in length.
  t("tensor-stride-rank", one_tensor_pickle("FloatStorage", "0", 16, 0, {4, 4}, {1}), "fail", "MG-PICKLE-REBUILD-ARGS");
  t("tensor-rank", one_tensor_pickle("FloatStorage", "0", 16, 0, std::vector<int64_t>(17, 1), std::vector<int64_t>(17, 1)),
    "fail", "MG-TENSOR-RANK");
  // Overflowing shapes: numel and byte extents beyond 64 bits.
  t("tensor-overflow-shape",
    one_tensor_pickle("FloatStorage", "0", 16, 0, {int64_t{1} << 40, int64_t{1} << 40}, {1, 1}), "fail",
    "MG-TENSOR-NUMEL-OVERFLOW|MG-TENSOR-LIMIT-ELEMENTS");
  t("tensor-overflow-stride",
    one_tensor_pickle("FloatStorage", "0", 16, 0, {2, 2}, {INT64_MAX / 2, 1}), "fail",
    "MG-TENSOR-OUT-OF-BOUNDS|MG-TENSOR-NUMEL-OVERFLOW");
  t("tensor-overflow-offset", one_tensor_pickle("FloatStorage", "0", 16, INT64_MAX, {1}, {1}), "fail",
    "MG-TENSOR-OUT-OF-BOUNDS|MG-TENSOR-NUMEL-OVERFLOW");
  // Undersized storages: the persistent id claims more elements than the record holds.
  t("tensor-undersized-storage", one_tensor_pickle("FloatStorage", "0", 17, 0, {17}, {1}), "fail", "MG-TENSOR-STORAGE-SIZE");
  t("tensor-undersized-dtype", one_tensor_pickle("DoubleStorage", "0", 16, 0, {16}, {1}), "fail", "MG-TENSOR-STORAGE-SIZE");
  t("tensor-huge-numel", one_tensor_pickle("FloatStorage", "0", int64_t{1} << 62, 0, {1}, {1}), "fail",
    "MG-TENSOR-STORAGE-SIZE|MG-TENSOR-LIMIT-STORAGE");
  // Bad persistent ids.
  t("persid-missing-record", one_tensor_pickle("FloatStorage", "9", 16, 0, {16}, {1}), "fail", "MG-TENSOR-MISSING-STORAGE");
  t("persid-traversal-key", one_tensor_pickle("FloatStorage", "../0", 16, 0, {16}, {1}), "fail",
    "MG-PICKLE-PERSID|MG-TENSOR-MISSING-STORAGE");
  t("persid-location-meta", one_tensor_pickle("FloatStorage", "0", 16, 0, {16}, {1}, "meta"), "fail", "MG-TENSOR-LOCATION");
  t("persid-location-cuda", one_tensor_pickle("FloatStorage", "0", 16, 0, {16}, {1}, "cuda:0"), "pass", "MG-TENSOR-CUDA-LOCATION");
  t("persid-unknown-storage-class", one_tensor_pickle("EvilStorage", "0", 16, 0, {16}, {1}), "unsafe",
    "MG-PICKLE-UNSAFE-GLOBAL");
  {
    PickleBytes p;  // a persistent id that is a plain string
    p.proto().empty_dict().str("t").str("storage").binpersid().setitem().stop();
    t("persid-not-tuple", p.bytes, "fail", "MG-PICKLE-PERSID");
    PickleBytes q;  // ('storage', cls, key, location) without numel
    q.proto().empty_dict().str("t").mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").tuple()
        .binpersid().setitem().stop();
    t("persid-short-tuple", q.bytes, "fail", "MG-PICKLE-PERSID");
    PickleBytes m;  // ('module', ...): a whole-module save carrying source code
    m.proto().empty_dict().str("m").mark().str("module").global("torch.nn", "Linear").str("x.py").str("import os")
        .tuple().binpersid().setitem().stop();
    t("persid-module", m.bytes, "unsafe", "MG-PICKLE-PERSID-MODULE");
    PickleBytes k;  // key is an int
    k.proto().empty_dict().str("t").mark().str("storage").global("torch", "FloatStorage").binint(0).str("cpu")
        .binint(16).tuple().binpersid().setitem().stop();
    t("persid-int-key", k.bytes, "fail", "MG-PICKLE-PERSID");
  }
  // Unreferenced storage records are harmless but reported; the same storage as two dtypes is not.
  {
    PickleBytes p;
    p.proto().empty_dict()
        .str("a").tensor_v2("FloatStorage", "0", 16, 0, {16}, {1}).setitem()
        .str("b").tensor_v2("IntStorage", "0", 16, 0, {16}, {1}).setitem().stop();
    t("persid-dtype-mismatch", p.bytes, "fail", "MG-PICKLE-STORAGE-MISMATCH|MG-TENSOR-DTYPE-MISMATCH");
  }
}

// --- kinds: hostile and malformed pickles ------------------------------------------------------------

void hostile_pickles(Generator& g) {
  auto t = [&](const std::string& kind, const Bytes& pickle, const std::string& verdict, const std::string& code,
               const std::string& args = "", const std::string& xfail = "") {
    g.file(kind, archive_with_pickle(pickle, {}, 1), verdict, code, args, xfail);
  };
  const std::pair<const char*, const char*> callables[] = {
      {"os", "system"},          {"posix", "system"},        {"subprocess", "Popen"},  {"builtins", "eval"},
      {"builtins", "exec"},      {"__builtin__", "eval"},    {"builtins", "getattr"},  {"builtins", "__import__"},
      {"nt", "system"},          {"torch", "load"},          {"pickle", "loads"},      {"runpy", "_run_code"},
      {"webbrowser", "open"},    {"shutil", "rmtree"},       {"numpy", "load"},        {"torch._C", "_jit_pass"}};
  for (auto [mod, name] : callables) {
    PickleBytes p;  // protocol 2: GLOBAL + REDUCE
    p.proto().global(mod, name).mark().str("echo pwned").tuple().reduce().stop();
    t("pickle-global-reduce", p.bytes, "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
    PickleBytes s;  // protocol 4: STACK_GLOBAL
    s.proto(4).str(mod).str(name).stack_global().mark().str("id").tuple().reduce().stop();
    t("pickle-stack-global", s.bytes, "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
    PickleBytes i;  // protocol 0: INST
    i.mark().str("id").inst(mod, name).stop();
    t("pickle-inst", i.bytes, "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
    PickleBytes o;  // protocol 1: OBJ
    o.mark().global(mod, name).str("id").obj().stop();
    t("pickle-obj", o.bytes, "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
  }
  // The classic protocol-0 payload, byte for byte.
  {
    std::string p0 = "cos\nsystem\n(S'true'\ntR.";
    t("pickle-os-system-p0", Bytes(p0.begin(), p0.end()), "unsafe", "MG-PICKLE-UNSAFE-GLOBAL");
  }
  // REDUCE on an allowed global with a hostile twist: set() of a callable result, NEWOBJ on a tensor class.
  {
    PickleBytes p;
    p.proto().global("torch._utils", "_rebuild_tensor_v2").empty_tuple().newobj().stop();
    t("pickle-newobj-rebuild", p.bytes, "unsafe|fail", "MG-PICKLE-UNSAFE-CALL|MG-PICKLE-REBUILD-ARGS|MG-PICKLE-BAD-CALL");
  }
  // SETITEM / BUILD on a tensor (the CVE-2026-24747 shape): mutate a rebuilt tensor's __dict__.
  {
    PickleBytes p;
    p.proto().empty_dict().str("t").tensor_v2("FloatStorage", "0", 16, 0, {16}, {1})
        .str("__class__").str("os.system").setitem().setitem().stop();
    t("pickle-setitem-on-tensor", p.bytes, "unsafe", "MG-PICKLE-BAD-TARGET");
    PickleBytes b;
    b.proto().empty_dict().str("t").tensor_v2("FloatStorage", "0", 16, 0, {16}, {1})
        .empty_dict().str("x").binint(1).setitem().build().setitem().stop();
    t("pickle-build-on-tensor", b.bytes, "unsafe", "MG-PICKLE-BAD-TARGET");
    PickleBytes a;
    a.proto().binint(5).binint(6).append().stop();
    t("pickle-append-on-int", a.bytes, "unsafe", "MG-PICKLE-BAD-TARGET");
  }
  // Malformed: unknown opcode, stack underflow, truncated, trailing bytes, bad memo, bad protocol.
  t("pickle-unknown-opcode", PickleBytes().proto().op(0xfe).stop().bytes, "fail", "MG-PICKLE-UNKNOWN-OPCODE");
  t("pickle-stack-underflow", PickleBytes().proto().setitem().stop().bytes, "fail", "MG-PICKLE-STACK");
  t("pickle-empty-stack-stop", PickleBytes().proto().stop().bytes, "fail", "MG-PICKLE-STACK");
  t("pickle-truncated", PickleBytes().proto().empty_dict().str("abc").bytes, "fail", "MG-PICKLE-TRUNCATED");
  t("pickle-truncated-string", PickleBytes().proto().op('X').le(1000, 4).raw("abc").bytes, "fail", "MG-PICKLE-TRUNCATED");
  t("pickle-trailing", PickleBytes().proto().empty_dict().stop().raw("junk").bytes, "fail", "MG-PICKLE-TRAILING");
  t("pickle-memo-get-missing", PickleBytes().proto().binget(7).stop().bytes, "fail", "MG-PICKLE-MEMO-GET");
  t("pickle-memo-get-huge", PickleBytes().proto().long_binget(0xFFFFFFFF).stop().bytes, "fail", "MG-PICKLE-MEMO-GET");
  t("pickle-protocol-9", PickleBytes().proto(9).empty_dict().stop().bytes, "fail", "MG-PICKLE-PROTOCOL");
  t("pickle-dict-key-list", PickleBytes().proto().empty_dict().empty_list().binint(1).setitem().stop().bytes, "fail",
    "MG-PICKLE-DICT-KEY");
  // Deep nesting: lists inside lists, and MARK frames.
  for (int depth : {65, 200, 100000}) {
    PickleBytes p;
    p.proto();
    for (int i = 0; i < depth; ++i) p.empty_list();
    for (int i = 0; i < depth; ++i) p.append();
    p.stop();
    t("pickle-deep-lists", p.bytes, "fail", "MG-PICKLE-LIMIT-DEPTH");
    PickleBytes m;
    m.proto();
    for (int i = 0; i < depth; ++i) m.mark();
    m.stop();
    t("pickle-deep-marks", m.bytes, "fail", "MG-PICKLE-LIMIT-DEPTH");
  }
  // Memo blow-ups: a DAG that doubles at every level (billion laughs), memo puts past the limit,
  // a memo index far beyond anything stored.
  {
    PickleBytes p;  // level 0 is one tensor; level i+1 = [level i, level i]: 2^60 paths to one tensor
    p.proto().tensor_v2("FloatStorage", "0", 16, 0, {16}, {1}).binput(0).pop();
    for (uint8_t i = 0; i < 60; ++i) p.mark().binget(i).binget(i).op('l').binput(static_cast<uint8_t>(i + 1)).pop();
    p.empty_dict().str("laughs").binget(60).setitem().stop();
    t("pickle-memo-laughs", p.bytes, "fail", "MG-TENSOR-LIMIT-WALK");
    PickleBytes m;
    m.proto();
    for (uint32_t i = 0; i < 200; ++i) m.none().long_binput(i).pop();
    m.none().stop();
    t("pickle-memo-flood", m.bytes, "fail", "MG-PICKLE-LIMIT-MEMO", "--limit max_memo_entries=100");
    t("pickle-memo-put-huge", PickleBytes().proto().none().long_binput(0xFFFFFFF0).stop().bytes, "pass|fail", "-");
  }
  // Opcode floods: a long run of cheap opcodes past a (lowered) opcode budget, and a long string.
  {
    PickleBytes p;
    p.proto();
    for (int i = 0; i < 20000; ++i) p.none().pop();
    p.none().stop();
    t("pickle-opcode-flood", p.bytes, "fail", "MG-PICKLE-LIMIT-OPCODES", "--limit max_pickle_opcodes=10000");
    PickleBytes s;
    s.proto().str(std::string(5000, 'a')).stop();
    t("pickle-string-limit", s.bytes, "fail", "MG-PICKLE-LIMIT-STRING", "--limit max_string_bytes=4096");
    PickleBytes big;  // a 2^63 int as a size: LONG1 with 9 bytes
    big.proto().op(0x8a).op(9).le(0, 8).op(1).stop();
    t("pickle-long-int", big.bytes, "pass|fail", "MG-PICKLE-LIMIT-INT");
  }
  // Memory bombs with the default limits: ten million trivial opcodes (None, POP, ...: five million
  // values) and a list of four million ints appended in batches of 1,000. The working-memory budget
  // refuses both long before the address-space cap.
  {
    PickleBytes p;
    p.proto();
    p.bytes.reserve(10000004);
    for (int i = 0; i < 5000000; ++i) p.none().pop();
    p.none().stop();
    t("pickle-opcode-bomb", p.bytes, "fail", "MG-PICKLE-LIMIT-MEMORY");
    PickleBytes l;
    l.proto().empty_list();
    l.bytes.reserve(8010004);
    for (int b = 0; b < 4000; ++b) {
      l.mark();
      for (int i = 0; i < 1000; ++i) l.binint(i & 0xFF);
      l.appends();
    }
    l.stop();
    t("pickle-int-list-bomb", l.bytes, "fail", "MG-PICKLE-LIMIT-MEMORY");
  }
  // A BINBYTES whose length straddles a 2-byte FRAME: pickle.loads sees one bytes value, torch.load
  // (C unpickler over BytesIO) drops the frame's last byte and runs the GLOBAL + REDUCE behind it.
  t("pickle-frame-straddle", frame_straddle_pickle(), "unsafe", "MG-PICKLE-FRAME-STRADDLE");
  t("pickle-frame-before-proto4", PickleBytes().proto(2).op(0x95).le(2, 8).empty_dict().stop().bytes, "fail",
    "MG-PICKLE-FRAME");
  // Opcodes CPython's pickler never writes, and text that is not UTF-8 (a surrogatepass lone surrogate).
  t("pickle-opcode-dup", PickleBytes().proto().empty_dict().op('2').pop().stop().bytes, "fail",
    "MG-PICKLE-OPCODE-UNUSED");
  t("pickle-opcode-binstring", PickleBytes().proto().empty_dict().op('U').op(1).raw("k").binint(1).setitem().stop().bytes,
    "fail", "MG-PICKLE-OPCODE-UNUSED");
  t("pickle-utf8-surrogate",
    PickleBytes().proto().empty_dict().op('X').le(3, 4).raw("\xed\xb2\x80").binint(1).setitem().stop().bytes, "fail",
    "MG-PICKLE-UTF8");
}

// --- kinds: exports (schema, config, weights), checked with `quick DIR` --------------------------------

struct ExportCase {
  Generator& g;
  Export lm;
  std::string cfg;

  explicit ExportCase(Generator& gen)
      : g(gen), lm(load_export(gen.fixture("audiocraft-tiny/e_encodec_reflect/state_dict.bin"))) {
    cfg = std::get<std::string>(dict_find(lm.tree, "xp.cfg")->v);
  }
  Bytes write(const WValue& tree) const { return must(write_torch_save(tree, WriteOptions{})); }
  // The LM export with one edit applied to a copy of its tree.
  Bytes edited(const std::function<void(WValue&)>& edit) const {
    WValue t = lm.tree;
    edit(t);
    return write(t);
  }
  Bytes with_cfg(const std::string& text) const {
    return edited([&](WValue& t) { *dict_find(t, "xp.cfg") = WValue(text); });
  }
};

void schema_breakage(Generator& g, ExportCase& x) {
  g.dir("export-rewritten-control", x.edited([](WValue&) {}), {}, "pass", "-");
  g.dir("schema-best-state-missing", x.edited([](WValue& t) { dict_erase(t, "best_state"); }), {}, "fail",
        "MG-SCHEMA-NO-BEST-STATE");
  g.dir("schema-xp-cfg-missing", x.edited([](WValue& t) { dict_erase(t, "xp.cfg"); }), {}, "fail", "MG-SCHEMA-NO-XP-CFG");
  g.dir("schema-xp-cfg-not-str", x.edited([](WValue& t) { *dict_find(t, "xp.cfg") = WValue(int64_t{42}); }), {}, "fail",
        "MG-SCHEMA-XP-CFG-TYPE");
  g.dir("schema-xp-cfg-dict", x.edited([](WValue& t) { *dict_find(t, "xp.cfg") = WValue(WDict{}); }), {}, "fail",
        "MG-SCHEMA-XP-CFG-TYPE|MG-SCHEMA-TRAINING-CHECKPOINT");
  g.dir("schema-exported-false", x.edited([](WValue& t) { *dict_find(t, "exported") = WValue(false); }), {}, "fail",
        "MG-SCHEMA-EXPORTED");
  g.dir("schema-exported-str", x.edited([](WValue& t) { *dict_find(t, "exported") = WValue(std::string("yes")); }), {},
        "fail", "MG-SCHEMA-EXPORTED");
  g.dir("schema-version-int", x.edited([](WValue& t) { *dict_find(t, "version") = WValue(int64_t{1}); }), {}, "fail",
        "MG-SCHEMA-VERSION-TYPE");
  g.dir("schema-best-state-list", x.edited([](WValue& t) { *dict_find(t, "best_state") = WValue(WList{}); }), {}, "fail",
        "MG-SCHEMA-BEST-STATE-TYPE");
  g.dir("schema-best-state-value",
        x.edited([](WValue& t) { std::get<WDict>(dict_find(t, "best_state")->v)[0].second = WValue(std::string("w")); }),
        {}, "fail", "MG-SCHEMA-BEST-STATE-VALUE");
  g.dir("schema-root-list", x.write(WValue(WList{x.lm.tree})), {}, "fail", "MG-SCHEMA-ROOT-NOT-DICT");
  g.dir("schema-unexpected-key", x.edited([](WValue& t) { std::get<WDict>(t.v).emplace_back("extra", WValue(1.5)); }),
        {}, "pass", "MG-SCHEMA-UNEXPECTED-KEY");
  g.dir("schema-first-release",
        x.edited([](WValue& t) { dict_erase(t, "version"); dict_erase(t, "exported"); }), {}, "pass",
        "MG-SCHEMA-FIRST-RELEASE");
  // Missing files in the directory.
  {
    std::string rel = "dirs/schema-missing-compression-" + std::to_string(g.count);
    fs::create_directories(g.out / rel);
    fs::create_symlink(fs::absolute(g.fixture("audiocraft-tiny/e_encodec_reflect/state_dict.bin")),
                       g.out / rel / kLmFileName);
    g.record("schema-missing-file", "quick", rel, "fail", "MG-SCHEMA-MISSING-FILE");
  }
  // The LM file in the compression slot and vice versa.
  {
    Bytes lm_bytes = read_all(g.fixture("audiocraft-tiny/e_encodec_reflect/state_dict.bin"));
    Bytes comp_bytes = read_all(g.fixture("audiocraft-tiny/e_encodec_reflect/compression_state_dict.bin"));
    g.dir("schema-swapped-files", comp_bytes, lm_bytes, "fail", "MG-SCHEMA-WRONG-MODEL|MG-CONFIG-NOT-LM");
    g.dir("schema-training-checkpoint", read_all(g.fixture("audiocraft-tiny/e_encodec_reflect/training_checkpoint_lm.th")),
          {}, "fail", "MG-SCHEMA-TRAINING-CHECKPOINT");
  }
}

void config_breakage(Generator& g, ExportCase& x) {
  auto c = [&](const std::string& kind, const std::string& from, const std::string& to, const std::string& code,
               const std::string& verdict = "fail") {
    g.dir(kind, x.with_cfg(replace_once(x.cfg, from, to)), {}, verdict, code);
  };
  c("config-unknown-activation", "  activation: gelu\n", "  activation: swish\n", "MG-CONFIG-UNKNOWN-ACTIVATION");
  c("config-activation-int", "  activation: gelu\n", "  activation: 3\n", "MG-CONFIG-TYPE|MG-CONFIG-UNKNOWN-ACTIVATION");
  c("config-unknown-positional", "  positional_embedding: sin\n", "  positional_embedding: alibi\n",
    "MG-CONFIG-UNKNOWN-POSITIONAL-EMBEDDING");
  c("config-unknown-norm", "  norm: layer_norm\n", "  norm: batch_norm\n", "MG-CONFIG-UNKNOWN-NORM");
  c("config-bad-interpolation", "  dim: 32\n", "  dim: ${transformer_lm.nope}\n", "MG-CONFIG-INTERPOLATION");
  c("config-interpolation-cycle", "  dim: 32\n", "  dim: ${transformer_lm.dim}\n", "MG-CONFIG-CYCLE|MG-CONFIG-INTERPOLATION");
  c("config-missing-value", "  dim: 32\n", "  dim: ???\n", "MG-CONFIG-MISSING-VALUE");
  c("config-dim-float", "  dim: 32\n", "  dim: 32.0\n", "MG-CONFIG-TYPE");
  // Wrong dims: the config no longer describes the tensors.
  c("config-wrong-dim", "  dim: 32\n", "  dim: 48\n", "MG-SHAPE-MISMATCH");
  c("config-wrong-card", "  card: 64\n", "  card: 32\n", "MG-SHAPE-MISMATCH");
  c("config-extra-layer", "  num_layers: 2\n", "  num_layers: 3\n", "MG-SHAPE-MISSING");
  c("config-fewer-layers", "  num_layers: 2\n", "  num_layers: 1\n", "MG-SHAPE-UNEXPECTED");
  c("config-wrong-n-q", "  n_q: 4\n", "  n_q: 2\n", "MG-SHAPE-UNEXPECTED|MG-CONFIG-MISMATCH-CODEBOOKS");
  c("config-hidden-scale", "  hidden_scale: 4\n", "  hidden_scale: 2\n", "MG-SHAPE-MISMATCH");
  g.dir("config-huge-layers", x.with_cfg(replace_once(x.cfg, "  num_layers: 2\n", "  num_layers: 1000000000000\n")),
        {}, "fail", "MG-CONFIG-INVALID-VALUE");
  c("config-negative-dim", "  dim: 32\n", "  dim: -32\n", "MG-CONFIG-INVALID-VALUE");
  c("config-yaml-syntax", "transformer_lm:\n", "transformer_lm: [\n", "MG-CONFIG-YAML");
  g.dir("config-empty", x.with_cfg(""), {}, "fail", "MG-CONFIG-NOT-LM|MG-CONFIG-MISSING-KEY");
  g.dir("config-not-yaml", x.with_cfg("{{{{ not: yaml"), {}, "fail", "MG-CONFIG-YAML");
  // A billion-laughs YAML: aliases that double at every level.
  {
    std::string y = "a0: &a0 [x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 12; ++i)
      y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + ", *a" +
           std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + "]\n";
    g.dir("config-alias-bomb", x.with_cfg(y + x.cfg), {}, "unsafe", "MG-CONFIG-TOO-LARGE");
  }
  // An interpolation bomb: a doubling chain of ${...} strings (2^20 steps to read a20) referenced by the
  // field the builders read; the document's work budget stops it (the fuzzer's xpcfg timeout, 2026-12-06).
  {
    std::string y = "bomb:\n  a0: x\n";
    for (int i = 1; i <= 20; ++i)
      y += "  a" + std::to_string(i) + ": ${bomb.a" + std::to_string(i - 1) + "}${bomb.a" + std::to_string(i - 1) +
           "}\n";
    std::string cfg = replace_once(x.cfg, "  dim: 32\n", "  dim: ${bomb.a20}\n");
    g.dir("config-interpolation-bomb", x.with_cfg(y + cfg), {}, "unsafe", "MG-CONFIG-TOO-LARGE");
  }
}

void weights_breakage(Generator& g, ExportCase& x) {
  // NaN / Inf at the first, a middle and the last element of a float16 tensor.
  const std::pair<const char*, uint16_t> bad[] = {{"MG-WEIGHTS-NAN", 0x7E00}, {"MG-WEIGHTS-INF", 0x7C00},
                                                  {"MG-WEIGHTS-INF", 0xFC00}};
  for (const auto& entry : bad) {
    const char* code = entry.first;
    const uint16_t bits = entry.second;  // a plain local: clang 14 cannot capture structured bindings
    for (const char* name : {"emb.0.weight", "transformer.layers.1.linear2.weight", "out_norm.bias"}) {
      for (int where = 0; where < 2; ++where) {
        Bytes lm = x.edited([&](WValue& t) {
          WTensor& w = std::get<WTensor>(dict_find(*dict_find(t, "best_state"), name)->v);
          auto copy = std::make_shared<std::vector<uint8_t>>(w.storage.begin(), w.storage.end());
          size_t at = where == 0 ? 0 : (copy->size() / 2 - 1) & ~size_t{1};
          (*copy)[at] = static_cast<uint8_t>(bits);
          (*copy)[at + 1] = static_cast<uint8_t>(bits >> 8);
          w.owned = copy;
          w.storage = *copy;
          w.share_key.clear();
        });
        g.dir(std::string(code == std::string("MG-WEIGHTS-NAN") ? "weights-nan" : "weights-inf"), lm, {}, "fail", code);
      }
    }
  }
  // An all-zero tensor is a warning, not a failure.
  Bytes zero = x.edited([&](WValue& t) {
    WTensor& w = std::get<WTensor>(dict_find(*dict_find(t, "best_state"), "out_norm.weight")->v);
    auto copy = std::make_shared<std::vector<uint8_t>>(w.storage.size(), 0);
    w.owned = copy;
    w.storage = *copy;
    w.share_key.clear();
  });
  g.dir("weights-all-zero", zero, {}, "pass", "MG-WEIGHTS-ALL-ZERO");
  // A tensor dropped from best_state, and one renamed.
  g.dir("shape-missing-tensor", x.edited([](WValue& t) { dict_erase(*dict_find(t, "best_state"), "out_norm.bias"); }),
        {}, "fail", "MG-SHAPE-MISSING");
  g.dir("shape-unexpected-tensor",
        x.edited([](WValue& t) {
          auto& d = std::get<WDict>(dict_find(t, "best_state")->v);
          d.emplace_back("extra.weight", d[0].second);
        }),
        {}, "fail", "MG-SHAPE-UNEXPECTED");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: make_corrupt SOURCE_DIR OUT_DIR [SEED]\n");
    return 3;
  }
  try {
    Generator g;
    g.src = argv[1];
    g.out = argv[2];
    g.rng.seed(argc > 3 ? std::stoull(argv[3]) : 20260423);
    fs::remove_all(g.out);
    fs::create_directories(g.out);
    g.manifest.open(g.out / "manifest.tsv");
    g.manifest << "# kind\tcommand\tpath\tverdict\tcode\targs\n";
    Bytes small = must(write_torch_save(small_tree(), WriteOptions{}));
    controls(g, small);
    not_a_checkpoint(g);
    zip_truncations(g, small);
    zip_flips(g, small);
    zip_crc_and_sizes(g, small);
    zip_counts_and_zip64(g, small);
    zip_overlaps_and_names(g, small);
    zip_compressed_and_bombs(g, small);
    legacy_truncations(g);
    tensor_table(g);
    hostile_pickles(g);
    ExportCase x(g);
    schema_breakage(g, x);
    config_breakage(g, x);
    weights_breakage(g, x);
    std::printf("make_corrupt: %zu cases in %s\n", g.count, g.out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_corrupt: %s\n", e.what());
    return 1;
  }
}
