// The writer, checked against independent readers: Python's torch.load(weights_only=True) (values,
// dtypes, strides, sharing), Python's zipfile (CRCs, names, ZIP64 offsets), CPython's own pickler
// (data.pkl must be byte-identical to what torch.save writes for the loaded object), and mgcheck's
// reader (bit-exact round trip).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/writer.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string manifest_script() { return test::source_dir() + "/tests/python/torch_manifest.py"; }

// torch.load(weights_only=True) + zipfile.testzip() of each file, as JSON keyed by path.
json python_manifest(const std::vector<std::string>& files, bool weights_only = true) {
  std::vector<std::string> argv = {"/usr/bin/python3", manifest_script()};
  if (!weights_only) argv.push_back("--no-weights-only");
  argv.insert(argv.end(), files.begin(), files.end());
  auto r = test::run_process(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& v : b) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(x >> 24);
  }
  return b;
}

// Bytes that are valid for the dtype (bool: 0/1; floats: anything goes, NaN payloads included).
std::vector<uint8_t> tensor_bytes(DType d, size_t numel, uint32_t seed) {
  auto b = pattern_bytes(numel * itemsize(d), seed);
  if (d == DType::bool_)
    for (auto& v : b) v &= 1;
  return b;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> s(sizes.size(), 1);
  for (size_t k = sizes.size(); k-- > 1;) s[k - 1] = s[k] * std::max<int64_t>(sizes[k], 1);
  return s;
}

// The viewed elements in row-major order, gathered independently of the code under test.
std::vector<uint8_t> gather_view(std::span<const uint8_t> storage, size_t isz, const std::vector<int64_t>& sizes,
                                 const std::vector<int64_t>& strides, int64_t offset) {
  std::vector<uint8_t> out;
  size_t numel = 1;
  for (auto s : sizes) numel *= static_cast<size_t>(s);
  std::vector<int64_t> idx(sizes.size(), 0);
  for (size_t i = 0; i < numel; ++i) {
    int64_t e = offset;
    for (size_t k = 0; k < sizes.size(); ++k) e += idx[k] * strides[k];
    auto p = storage.subspan(static_cast<size_t>(e) * isz, isz);
    out.insert(out.end(), p.begin(), p.end());
    for (size_t k = sizes.size(); k-- > 0;) {
      if (++idx[k] < sizes[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

std::string hex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto v : b) {
    s += d[v >> 4];
    s += d[v & 15];
  }
  return s;
}

// Compares a written WValue tree with Python's description of what torch.load returned.
void expect_same_tree(const WValue& w, const json& tree, const json& tensors, const std::string& path) {
  SCOPED_TRACE("at '" + path + "'");
  const std::string type = tree.at("type");
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, WNone>) {
          EXPECT_EQ(type, "none");
        } else if constexpr (std::is_same_v<T, bool>) {
          ASSERT_EQ(type, "bool");
          EXPECT_EQ(tree.at("value").get<bool>(), x);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          ASSERT_EQ(type, "int");
          EXPECT_EQ(tree.at("value").get<std::string>(), std::to_string(x));
        } else if constexpr (std::is_same_v<T, double>) {
          ASSERT_EQ(type, "float");
          double got = std::strtod(tree.at("value").get<std::string>().c_str(), nullptr);
          if (std::isnan(x)) EXPECT_TRUE(std::isnan(got));
          else EXPECT_EQ(std::memcmp(&got, &x, sizeof x), 0) << got << " vs " << x;
        } else if constexpr (std::is_same_v<T, std::string>) {
          ASSERT_EQ(type, "str");
          EXPECT_EQ(tree.at("value").get<std::string>(), x);
        } else if constexpr (std::is_same_v<T, WList>) {
          ASSERT_EQ(type, w.tuple ? "tuple" : "list");
          ASSERT_EQ(tree.at("items").size(), x.size());
          for (size_t i = 0; i < x.size(); ++i)
            expect_same_tree(x[i], tree.at("items")[i], tensors, path + "/" + std::to_string(i));
        } else if constexpr (std::is_same_v<T, WDict>) {
          ASSERT_EQ(type, "dict");
          EXPECT_EQ(tree.at("ordered").get<bool>(), w.ordered_dict);
          ASSERT_EQ(tree.at("items").size(), x.size());
          for (size_t i = 0; i < x.size(); ++i) {
            EXPECT_EQ(tree.at("items")[i][0].get<std::string>(), x[i].first);
            expect_same_tree(x[i].second, tree.at("items")[i][1], tensors, path + "/" + x[i].first);
          }
        } else if constexpr (std::is_same_v<T, WTensor>) {
          ASSERT_EQ(type, "tensor");
          const json& t = tensors.at(tree.at("index").get<size_t>());
          EXPECT_EQ(t.at("dtype").get<std::string>(), dtype_name(x.dtype));
          EXPECT_EQ(t.at("shape").get<std::vector<int64_t>>(), x.sizes);
          auto strides = x.strides.empty() ? contiguous_strides(x.sizes) : x.strides;
          EXPECT_EQ(t.at("stride").get<std::vector<int64_t>>(), strides);
          EXPECT_EQ(t.at("offset").get<int64_t>(), x.storage_offset);
          EXPECT_EQ(t.at("parameter").get<bool>(), x.parameter);
          EXPECT_EQ(t.at("requires_grad").get<bool>(), x.requires_grad);
          EXPECT_EQ(t.at("storage_hex").get<std::string>(), hex(x.storage));
          EXPECT_EQ(t.at("view_hex").get<std::string>(),
                    hex(gather_view(x.storage, itemsize(x.dtype), x.sizes, strides, x.storage_offset)));
        }
      },
      w.v);
}

const DType kLoadableDtypes[] = {DType::float64, DType::float32, DType::float16, DType::bfloat16,
                                 DType::int64,   DType::int32,   DType::int16,   DType::int8,
                                 DType::uint8,   DType::bool_,   DType::complex64, DType::complex128};

// One tree exercising every value kind the writer supports.
WValue build_rich_tree() {
  WDict tensors;
  uint32_t seed = 1;
  for (DType d : kLoadableDtypes)
    tensors.emplace_back(std::string("t_") + dtype_name(d), make_tensor(d, {2, 3}, tensor_bytes(d, 6, seed++)));
  tensors.emplace_back("scalar0d", make_tensor(DType::float32, {}, tensor_bytes(DType::float32, 1, 77)));
  tensors.emplace_back("empty_0x4", make_tensor(DType::int64, {0, 4}, {}));
  tensors.emplace_back("empty_1d", make_tensor(DType::float16, {0}, {}));

  // Several tensors over one storage: whole, slice at an offset, transpose, expanded (stride 0).
  auto base = make_tensor(DType::float32, {12}, tensor_bytes(DType::float32, 12, 99));
  base.share_key = "base";
  WTensor slice = base;
  slice.sizes = {4};
  slice.strides = {1};
  slice.storage_offset = 2;
  WTensor transposed = base;
  transposed.sizes = {4, 3};
  transposed.strides = {1, 4};
  WTensor expanded = base;
  expanded.sizes = {3, 2};
  expanded.strides = {0, 1};
  expanded.storage_offset = 10;
  tensors.emplace_back("shared.base", base);
  tensors.emplace_back("shared.slice", slice);
  tensors.emplace_back("shared.transposed", transposed);
  tensors.emplace_back("shared.expanded", expanded);

  auto param = make_tensor(DType::float32, {3}, tensor_bytes(DType::float32, 3, 5));
  param.parameter = true;
  param.requires_grad = true;
  tensors.emplace_back("param", param);
  auto frozen = make_tensor(DType::float16, {2}, tensor_bytes(DType::float16, 2, 6));
  frozen.parameter = true;
  tensors.emplace_back("param_frozen", frozen);

  WDict scalars = {
      {"none", WNone{}},          {"yes", true},
      {"no", false},              {"zero", int64_t{0}},
      {"byte", int64_t{255}},     {"short", int64_t{256}},
      {"u16max", int64_t{65535}}, {"i32", int64_t{65536}},
      {"neg", int64_t{-1}},       {"i32min", int64_t{INT32_MIN}},
      {"i32max", int64_t{INT32_MAX}},
      {"big", int64_t{1} << 31},  {"negbig", -(int64_t{1} << 31) - 1},
      {"i40", -(int64_t{1} << 39)}, {"i64max", INT64_MAX},
      {"i64min", INT64_MIN},      {"text", std::string("hello\nworld")},
      {"empty_text", std::string()},
  };
  WValue tup = WList{int64_t{1}, std::string("two"), true, WNone{}};
  tup.tuple = true;
  WValue small_tup = WList{int64_t{7}};
  small_tup.tuple = true;
  WValue empty_tup = WList{};
  empty_tup.tuple = true;
  WValue od = WDict{{"first", int64_t{1}}, {"second", int64_t{2}}};
  od.ordered_dict = true;
  WValue od1 = WDict{{"only", int64_t{1}}};
  od1.ordered_dict = true;
  WValue od0 = WDict{};
  od0.ordered_dict = true;

  WDict nested = {
      {"list", WList{int64_t{1}, WList{}, WList{std::string("x1")},
                     WValue(WDict{{"deep", make_tensor(DType::int8, {3}, tensor_bytes(DType::int8, 3, 8))}})}},
      {"tuple4", tup},
      {"tuple1", small_tup},
      {"tuple0", empty_tup},
      {"ordered", od},
      {"ordered1", od1},
      {"ordered0", od0},
      {"empty_dict", WDict{}},
      {"one_item", WDict{{"k1", int64_t{3}}}},
  };
  WDict unicode = {
      {"ключ.вес", make_tensor(DType::float32, {1}, tensor_bytes(DType::float32, 1, 9))},
      {"音楽/生成", std::string("ünïcödé ✓ 🎵")},
      {"emoji🎵", int64_t{42}},
  };
  return WDict{{"tensors", tensors}, {"scalars", scalars}, {"nested", nested}, {"unicode", unicode}};
}

// Python floats (BINFLOAT): torch 1.13's weights_only unpickler refuses opcode 'G' (newer torch
// accepts it), so these are checked with weights_only=False on our own file.
WValue build_float_tree() {
  WValue tup = WList{1.5, -2.25, 1e300};
  tup.tuple = true;
  return WDict{{"pi", 3.14159}, {"negzero", -0.0}, {"inf", HUGE_VAL}, {"ninf", -HUGE_VAL},
               {"nan", std::nan("")}, {"tiny", 5e-324}, {"big", 1.7976931348623157e308}, {"floats", tup},
               {"w", make_tensor(DType::float32, {2}, tensor_bytes(DType::float32, 2, 4))}};
}

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "Python torch not available");
  }
};

TEST_F(WriterTest, RichTreeLoadsInTorchWithEqualValues) {
  test::TempDir dir("writer-rich");
  WValue root = build_rich_tree();
  std::string path = dir.file("rich.pt");
  auto st = write_torch_save_file(path, root, {});
  ASSERT_TRUE(st.ok()) << st.error().message;
  json m = python_manifest({path});
  const json& e = m.at(path);
  ASSERT_FALSE(e.contains("error")) << e.value("error", "");
  // zipfile: every CRC and every local/central name pair agrees.
  ASSERT_TRUE(e.at("zip").is_object());
  EXPECT_TRUE(e.at("zip").at("testzip").is_null());
  for (const auto& z : e.at("zip").at("entries")) EXPECT_EQ(z.at("compress_type").get<int>(), 0);
  expect_same_tree(root, e.at("tree"), e.at("tensors"), "");
  // Sharing survives: the four views of "base" share one Python storage, nothing else does.
  std::map<std::string, std::string> id_of;
  for (const auto& t : e.at("tensors")) id_of[t.at("path")] = t.at("storage_id").dump();
  EXPECT_EQ(id_of["tensors/shared.base"], id_of["tensors/shared.slice"]);
  EXPECT_EQ(id_of["tensors/shared.base"], id_of["tensors/shared.transposed"]);
  EXPECT_EQ(id_of["tensors/shared.base"], id_of["tensors/shared.expanded"]);
  EXPECT_NE(id_of["tensors/shared.base"], id_of["tensors/t_float32"]);
}

TEST_F(WriterTest, PythonFloatsLoadWithEqualBits) {
  test::TempDir dir("writer-floats");
  WValue root = build_float_tree();
  std::string path = dir.file("floats.pt");
  ASSERT_TRUE(write_torch_save_file(path, root, {}).ok());
  json m = python_manifest({path}, /*weights_only=*/false);
  const json& e = m.at(path);
  ASSERT_FALSE(e.contains("error")) << e.value("error", "");
  EXPECT_TRUE(e.at("zip").at("testzip").is_null());
  expect_same_tree(root, e.at("tree"), e.at("tensors"), "");
}

TEST_F(WriterTest, RecordsAndLayoutMatchTorchConventions) {
  WValue root = WDict{{"a.weight", make_tensor(DType::float32, {2}, tensor_bytes(DType::float32, 2, 1))},
                      {"b.empty", make_tensor(DType::float32, {0}, {})}};
  test::TempDir dir("writer-layout");
  std::string path = dir.file("layout.pt");
  ASSERT_TRUE(write_torch_save_file(path, root, {}).ok());
  json m = python_manifest({path});
  const json& entries = m.at(path).at("zip").at("entries");
  std::vector<std::string> names;
  for (const auto& z : entries) names.push_back(z.at("name"));
  EXPECT_EQ(names, (std::vector<std::string>{"archive/data.pkl", "archive/byteorder", "archive/data/0",
                                             "archive/data/1", "archive/version"}));
  auto bytes = test::read_file(path);
  for (const auto& z : entries) {
    uint64_t h = z.at("header_offset");
    ASSERT_LT(h + 30, bytes.size());
    uint64_t name_len = bytes[h + 26] | (bytes[h + 27] << 8);
    uint64_t extra_len = bytes[h + 28] | (bytes[h + 29] << 8);
    uint64_t data = h + 30 + name_len + extra_len;
    EXPECT_EQ(data % 64, 0u) << z.at("name");
    uint16_t flags = static_cast<uint16_t>(bytes[h + 6] | (bytes[h + 7] << 8));
    EXPECT_EQ(flags, z.at("size").get<uint64_t>() > 0 ? 0x0808 : 0x0800) << z.at("name");
    EXPECT_EQ(bytes[h + 30 + name_len], 'F');  // the FB padding field is always present
    EXPECT_EQ(bytes[h + 31 + name_len], 'B');
  }
  // byteorder and version contents.
  auto rec = [&](const std::string& n) {
    for (const auto& z : entries)
      if (z.at("name") == n) {
        uint64_t h = z.at("header_offset");
        uint64_t data = h + 30 + (bytes[h + 26] | (bytes[h + 27] << 8)) + (bytes[h + 28] | (bytes[h + 29] << 8));
        return std::string(bytes.begin() + static_cast<long>(data),
                           bytes.begin() + static_cast<long>(data + z.at("size").get<uint64_t>()));
      }
    return std::string("<missing>");
  };
  EXPECT_EQ(rec("archive/byteorder"), "little");
  EXPECT_EQ(rec("archive/version"), "3\n");
  // The file ends with ZIP64 EOCD (56) + locator (20) + EOCD (22).
  ASSERT_GT(bytes.size(), 98u);
  EXPECT_EQ(std::memcmp(&bytes[bytes.size() - 98], "PK\x06\x06", 4), 0);
  EXPECT_EQ(std::memcmp(&bytes[bytes.size() - 42], "PK\x06\x07", 4), 0);
  EXPECT_EQ(std::memcmp(&bytes[bytes.size() - 22], "PK\x05\x06", 4), 0);
}

// torch.save(torch.load(ours)) must produce a data.pkl byte-identical to ours: the writer emits what
// CPython's pickler emits (memo slots, BINGET reuse, batches, integer encodings).
TEST_F(WriterTest, PickleIsByteIdenticalToCPythonPickler) {
  test::TempDir dir("writer-exact");
  std::vector<std::pair<std::string, WValue>> cases;
  cases.emplace_back("rich", build_rich_tree());
  cases.emplace_back("floats", build_float_tree());
  // Batching edges: 1000 (CPython writes an empty trailing batch), 1001, 2500 entries; lists likewise.
  for (size_t n : {size_t{2}, size_t{999}, size_t{1000}, size_t{1001}, size_t{2000}, size_t{2500}}) {
    WDict d;
    WList l;
    for (size_t i = 0; i < n; ++i) {
      d.emplace_back("layer" + std::to_string(i) + ".weight",
                     make_tensor(DType::float16, {2}, tensor_bytes(DType::float16, 2, static_cast<uint32_t>(i))));
      l.emplace_back(int64_t(i) * 1000);
    }
    WValue od = d;
    od.ordered_dict = true;
    cases.emplace_back("n" + std::to_string(n), WDict{{"best_state", d}, {"list", l}, {"od", od}});
  }
  std::vector<std::string> files;
  for (auto& [name, root] : cases) {
    files.push_back(dir.file(name + ".pt"));
    auto st = write_torch_save_file(files.back(), root, {});
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  const char* code = R"(
import io, sys, zipfile, torch
for f in sys.argv[1:]:
    with zipfile.ZipFile(f) as z:
        ours = z.read('archive/data.pkl')
    buf = io.BytesIO()
    torch.save(torch.load(f, weights_only=False), buf)  # our own files; 1.13 weights_only refuses floats
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        theirs = z.read('archive/data.pkl')
    if ours != theirs:
        n = next((i for i in range(min(len(ours), len(theirs))) if ours[i] != theirs[i]), None)
        print('DIFF', f, len(ours), len(theirs), 'first difference at', n)
    else:
        print('SAME', f)
)";
  auto r = test::run_python(code, files);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& f : files) EXPECT_NE(r.out.find("SAME " + f), std::string::npos) << r.out;
}

TEST_F(WriterTest, MgcheckReaderRoundTripsBitExactly) {
  WValue root = build_rich_tree();
  auto bytes = write_torch_save(root, {});
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  MemorySource src(std::move(bytes.value()), "rich.pt");
  Findings findings;
  auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, findings);
  ASSERT_TRUE(ck.ok()) << ck.error().code << ": " << ck.error().message;
  for (const auto& f : findings.items())
    EXPECT_NE(f.severity, Severity::error) << f.code << " " << f.message << " @" << f.name;
  // Every tensor of the tree comes back with its path, dtype, shape, strides, offset and bytes.
  std::map<std::string, const TensorView*> by_path;
  for (const auto& n : ck->named) by_path[n.path] = &ck->tensors[n.tensor];
  size_t checked = 0;
  std::function<void(const WValue&, const std::string&)> walk = [&](const WValue& v, const std::string& path) {
    if (auto* d = std::get_if<WDict>(&v.v)) {
      for (const auto& [k, x] : *d) walk(x, path.empty() ? k : path + "/" + k);
    } else if (auto* l = std::get_if<WList>(&v.v)) {
      for (size_t i = 0; i < l->size(); ++i) walk((*l)[i], path + "/" + std::to_string(i));
    } else if (auto* t = std::get_if<WTensor>(&v.v)) {
      SCOPED_TRACE(path);
      ASSERT_TRUE(by_path.count(path));
      const TensorView& tv = *by_path[path];
      EXPECT_EQ(tv.dtype, t->dtype);
      EXPECT_EQ(tv.sizes, t->sizes);
      EXPECT_EQ(tv.strides, t->strides.empty() ? contiguous_strides(t->sizes) : t->strides);
      EXPECT_EQ(tv.storage_offset, t->storage_offset);
      EXPECT_EQ(hex(tv.storage), hex(t->storage));
      ++checked;
    }
  };
  walk(root, "");
  EXPECT_EQ(checked, ck->named.size());
  EXPECT_EQ(ck->tensors.size(), checked);
}

TEST(WriterZip64, EntryLayoutFollowsTorchPaddingAndZip64Rules) {
  // §2.4 worked example: "pkg/data.pkl" at offset 0 → 30 + 12 + 4 = 46 → 18 padding → data at 64.
  auto a = plan_zip_entry(0, 12, 826);
  EXPECT_EQ(a.padding, 18u);
  EXPECT_EQ(a.data_offset, 64u);
  EXPECT_EQ(a.descriptor_bytes, 16u);
  EXPECT_EQ(a.end, 64u + 826 + 16);
  EXPECT_EQ(a.flags, 0x0808);
  EXPECT_FALSE(a.zip64_size || a.zip64_offset);
  EXPECT_TRUE(a.central_extra.empty());
  // §4: pkg/data/0 at 906 → extra 14 → data at 960; the empty data/4 has flag 0x0800 and no descriptor.
  auto b = plan_zip_entry(906, 10, 24);
  EXPECT_EQ(b.local_extra.size(), 14u);
  EXPECT_EQ(b.data_offset, 960u);
  auto e = plan_zip_entry(1000, 10, 0);
  EXPECT_EQ(e.flags, 0x0800);
  EXPECT_EQ(e.descriptor_bytes, 0u);
  EXPECT_EQ(e.data_offset % 64, 0u);

  // Header offset ≥ 0xFFFFFFFF: ZIP64 field of 8 bytes (the offset), 24-byte descriptor.
  const uint64_t off = 0x100000010ull;
  auto c = plan_zip_entry(off, 20, 100);
  EXPECT_TRUE(c.zip64_offset);
  EXPECT_FALSE(c.zip64_size);
  uint64_t start = off + 30 + 20 + 4 + 4 + 8;
  EXPECT_EQ(c.padding, (64 - start % 64) % 64);
  EXPECT_EQ(c.data_offset % 64, 0u);
  EXPECT_EQ(c.descriptor_bytes, 24u);
  ASSERT_EQ(c.central_extra.size(), 12u);
  EXPECT_EQ(c.central_extra[0], 1);
  EXPECT_EQ(c.central_extra[2], 8);
  uint64_t got = 0;
  for (int k = 0; k < 8; ++k) got |= uint64_t{c.central_extra[4 + k]} << (8 * k);
  EXPECT_EQ(got, off);
  EXPECT_EQ(c.local_extra[12], 'F');
  // Exactly at the boundary: 0xFFFFFFFF is already ZIP64, 0xFFFFFFFE is not.
  EXPECT_TRUE(plan_zip_entry(0xFFFFFFFFull, 5, 1).zip64_offset);
  EXPECT_FALSE(plan_zip_entry(0xFFFFFFFEull, 5, 1).zip64_offset);
  EXPECT_TRUE(plan_zip_entry(0, 5, 0xFFFFFFFFull).zip64_size);
  EXPECT_FALSE(plan_zip_entry(0, 5, 0xFFFFFFFEull).zip64_size);

  // Size ≥ 0xFFFFFFFF: local field (size, 0), central field (size, size), 24-byte descriptor.
  const uint64_t big = 0x123456789ull;
  auto d = plan_zip_entry(64, 16, big);
  EXPECT_TRUE(d.zip64_size);
  ASSERT_EQ(d.local_extra.size() - 4 - d.padding, 20u);
  EXPECT_EQ(d.local_extra[2], 16);
  uint64_t lu = 0, lc = 0, cu = 0, cc = 0;
  for (int k = 0; k < 8; ++k) {
    lu |= uint64_t{d.local_extra[4 + k]} << (8 * k);
    lc |= uint64_t{d.local_extra[12 + k]} << (8 * k);
    cu |= uint64_t{d.central_extra[4 + k]} << (8 * k);
    cc |= uint64_t{d.central_extra[12 + k]} << (8 * k);
  }
  EXPECT_EQ(lu, big);
  EXPECT_EQ(lc, 0u);
  EXPECT_EQ(cu, big);
  EXPECT_EQ(cc, big);
  EXPECT_EQ(d.descriptor_bytes, 24u);
  EXPECT_EQ((64 + 30 + 16 + 4 + 4 + 16 + d.padding) % 64, 0u);
  // Both: sizes then offset, 24 bytes of payload.
  auto both = plan_zip_entry(off, 16, big);
  EXPECT_EQ(both.central_extra.size(), 28u);
  EXPECT_EQ(both.data_offset % 64, 0u);
}

// The real ZIP64-offset path end to end, without writing 4 GiB: the archive is written after a sparse
// 4 GiB hole (testing hook), so every header offset is ≥ 0xFFFFFFFF; Python's zipfile must read it,
// find every record at its offset and agree on every CRC.
TEST_F(WriterTest, Zip64OffsetsReadByPythonZipfile) {
  test::TempDir dir("writer-zip64");
  WValue root = WDict{{"w", make_tensor(DType::float32, {4}, tensor_bytes(DType::float32, 4, 3))},
                      {"e", make_tensor(DType::int8, {0}, {})}};
  WriteOptions opts;
  opts.testing_start_offset = 0x100000000ull + 7;
  std::string path = dir.file("zip64.pt");
  auto st = write_torch_save_file(path, root, opts);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const char* code = R"(
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    print('testzip', z.testzip())
    for i in z.infolist():
        print(i.filename, i.header_offset >= 0xFFFFFFFF, len(z.read(i)))
)";
  auto r = test::run_python(code, {path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("testzip None"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("archive/data/0 True 16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("archive/data/1 True 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("archive/version True 2"), std::string::npos) << r.out;
}

TEST(WriterFile, RefusesExistingTargetUnlessOverwrite) {
  test::TempDir dir("writer-exists");
  std::string path = dir.file("out.pt");
  test::write_text(path, "keep me");
  WValue root = WDict{{"x", int64_t{1}}};
  auto st = write_torch_save_file(path, root, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "MG-IO-EXISTS");
  EXPECT_EQ(test::read_text(path), "keep me");
  WriteOptions o;
  o.overwrite = true;
  ASSERT_TRUE(write_torch_save_file(path, root, o).ok());
  auto written = test::read_file(path);
  ASSERT_GE(written.size(), 4u);
  EXPECT_EQ(std::vector<uint8_t>(written.begin(), written.begin() + 4), (std::vector<uint8_t>{'P', 'K', 3, 4}));
  // No temporary file is left behind.
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1u);
}

TEST(WriterFile, FailsCleanlyInMissingDirectory) {
  test::TempDir dir("writer-missing");
  auto st = write_torch_save_file(dir.file("no/such/dir/out.pt"), WDict{}, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "MG-IO-WRITE");
}

TEST(WriterValidation, RefusesTensorsTorchWouldReject) {
  auto bad = [](WTensor t) {
    auto r = write_torch_save(WDict{{"t", t}}, {});
    return !r.ok() && r.error().code == "MG-TENSOR-WRITE-INVALID";
  };
  auto t = make_tensor(DType::float32, {2, 2}, std::vector<uint8_t>(16));
  EXPECT_FALSE(bad(t));
  auto oob = t;
  oob.storage_offset = 1;
  EXPECT_TRUE(bad(oob));
  auto neg = t;
  neg.strides = {-2, 1};
  EXPECT_TRUE(bad(neg));
  auto mismatch = t;
  mismatch.strides = {1};
  EXPECT_TRUE(bad(mismatch));
  auto ragged = make_tensor(DType::float32, {1}, std::vector<uint8_t>(5));
  EXPECT_TRUE(bad(ragged));
  auto quant = make_tensor(DType::qint8, {1}, std::vector<uint8_t>(1));
  EXPECT_TRUE(bad(quant));
  auto a = make_tensor(DType::float32, {1}, std::vector<uint8_t>(4));
  a.share_key = "s";
  auto b = make_tensor(DType::int32, {1}, std::vector<uint8_t>(4));
  b.share_key = "s";
  auto r = write_torch_save(WDict{{"a", a}, {"b", b}}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "MG-TENSOR-WRITE-INVALID");
  auto dup = write_torch_save(WDict{{"k", int64_t{1}}, {"k", int64_t{2}}}, {});
  EXPECT_FALSE(dup.ok());
  auto bad_utf8 = write_torch_save(WDict{{std::string("\xff"), int64_t{1}}}, {});
  EXPECT_FALSE(bad_utf8.ok());
}

}  // namespace
}  // namespace mgcheck::format
