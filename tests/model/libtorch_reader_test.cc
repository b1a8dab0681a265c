// mgcheck's reader against libtorch's own C++ reader (torch::jit::pickle_load: PyTorchStreamReader +
// the TorchScript unpickler). For files written by Python's torch.save, by mgcheck's writer, and the
// corpus exports, every tensor libtorch rebuilds must match mgcheck's view: dtype, shape, strides,
// storage offset, storage bytes, viewed bytes, and which tensors share a storage.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/writer.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

using nlohmann::json;

std::optional<DType> dtype_of(at::ScalarType s) {
  switch (s) {
    case at::kDouble: return DType::float64;
    case at::kFloat: return DType::float32;
    case at::kHalf: return DType::float16;
    case at::kBFloat16: return DType::bfloat16;
    case at::kLong: return DType::int64;
    case at::kInt: return DType::int32;
    case at::kShort: return DType::int16;
    case at::kChar: return DType::int8;
    case at::kByte: return DType::uint8;
    case at::kBool: return DType::bool_;
    case at::kComplexFloat: return DType::complex64;
    case at::kComplexDouble: return DType::complex128;
    default: return std::nullopt;
  }
}

// Every tensor reachable from an IValue, with mgcheck's path convention (dict keys / list indices '/').
void collect(const c10::IValue& v, const std::string& path, std::vector<std::pair<std::string, at::Tensor>>& out) {
  auto join = [&](const std::string& k) { return path.empty() ? k : path + "/" + k; };
  if (v.isTensor()) {
    out.emplace_back(path, v.toTensor());
  } else if (v.isGenericDict()) {
    for (const auto& e : v.toGenericDict()) {
      const auto& k = e.key();
      std::string ks = k.isString() ? k.toStringRef() : k.isInt() ? std::to_string(k.toInt()) : "";
      if (!ks.empty() || k.isString()) collect(e.value(), join(ks), out);
    }
  } else if (v.isList()) {
    auto l = v.toList();
    for (size_t i = 0; i < l.size(); ++i) collect(l.get(i), join(std::to_string(i)), out);
  } else if (v.isTuple()) {
    const auto& el = v.toTupleRef().elements();
    for (size_t i = 0; i < el.size(); ++i) collect(el[i], join(std::to_string(i)), out);
  }
}

std::vector<uint8_t> view_bytes(const TensorView& t) {
  std::vector<uint8_t> out;
  const size_t isz = itemsize(t.dtype);
  std::vector<int64_t> idx(t.sizes.size(), 0);
  for (uint64_t i = 0; i < t.numel; ++i) {
    int64_t e = t.storage_offset;
    for (size_t k = 0; k < t.sizes.size(); ++k) e += idx[k] * t.strides[k];
    auto p = t.storage.subspan(static_cast<size_t>(e) * isz, isz);
    out.insert(out.end(), p.begin(), p.end());
    for (size_t k = t.sizes.size(); k-- > 0;) {
      if (++idx[k] < t.sizes[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// libtorch 1.13's pickle_load implements a subset of what torch.save writes. These are the only
// refusals accepted (each seen on Python-written files); anything else fails the test.
bool known_libtorch_limitation(const std::string& what) {
  return what.find("Unknown opcode for unpickling at 0x73") != std::string::npos ||  // SETITEM (1-pair dicts)
         what.find("unknown type torch._utils._rebuild_parameter") != std::string::npos ||
         what.find("Only Pickle protocol 2 is supported") != std::string::npos;
}

// Reads `path` with both readers and compares every tensor. Returns the number of tensors compared, or
// nullopt when libtorch refuses the file for one of its known limitations.
std::optional<size_t> compare_with_libtorch(const std::string& path) {
  SCOPED_TRACE(path);
  auto raw = test::read_file(path);
  std::vector<char> data(raw.begin(), raw.end());
  c10::IValue iv;
  try {
    iv = torch::jit::pickle_load(data);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (known_libtorch_limitation(what)) return std::nullopt;
    ADD_FAILURE() << "libtorch cannot read it: " << what.substr(0, 300);
    return 0;
  }
  std::vector<std::pair<std::string, at::Tensor>> theirs;
  collect(iv, "", theirs);

  MemorySource src(std::move(raw), path);
  Findings findings;
  auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, findings);
  if (!ck.ok()) {
    ADD_FAILURE() << ck.error().code << ": " << ck.error().message;
    return 0;
  }
  for (const auto& f : findings.items()) EXPECT_NE(f.severity, Severity::error) << f.code << ": " << f.message;
  std::map<std::string, const TensorView*> ours;
  for (const auto& n : ck->named) ours[n.path] = &ck->tensors[n.tensor];
  EXPECT_EQ(ours.size(), theirs.size());

  std::map<const void*, std::string> key_of_ptr;
  for (const auto& [p, t] : theirs) {
    SCOPED_TRACE(p);
    if (!ours.count(p)) {
      ADD_FAILURE() << "mgcheck does not list " << p;
      continue;
    }
    const TensorView& v = *ours[p];
    auto dt = dtype_of(t.scalar_type());
    if (!dt) {
      ADD_FAILURE() << "unexpected dtype " << t.scalar_type();
      continue;
    }
    EXPECT_EQ(v.dtype, *dt);
    EXPECT_EQ(v.sizes, t.sizes().vec());
    EXPECT_EQ(v.strides, t.strides().vec());
    EXPECT_EQ(v.storage_offset, t.storage_offset());
    const auto& st = t.storage();
    EXPECT_EQ(v.storage.size(), st.nbytes());
    if (st.nbytes() > 0 && v.storage.size() == st.nbytes())
      EXPECT_EQ(std::memcmp(v.storage.data(), st.data(), st.nbytes()), 0);
    at::Tensor c = t.contiguous();
    auto vb = view_bytes(v);
    EXPECT_EQ(vb.size(), static_cast<size_t>(c.numel()) * c.element_size());
    if (!vb.empty() && vb.size() == static_cast<size_t>(c.numel()) * c.element_size())
      EXPECT_EQ(std::memcmp(vb.data(), c.data_ptr(), vb.size()), 0);
    if (st.nbytes() == 0) continue;
    // libtorch 1.13's pickle_load reads a fresh copy of a record for every tensor (no storage cache),
    // so only one direction is observable: storages libtorch shares, mgcheck must share too. (Sharing
    // both ways is checked against Python's torch.load in tests/format/differential_test.cc.)
    const void* ptr = st.data();
    auto [a, n1] = key_of_ptr.emplace(ptr, v.storage_key);
    EXPECT_EQ(a->second, v.storage_key) << "libtorch shares a storage mgcheck splits";
  }
  return theirs.size();
}

class LibtorchReader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::python_torch_available()) return;
    dir_ = new test::TempDir("libtorch-reader");
    auto r = test::run_process({"/usr/bin/python3", test::source_dir() + "/tests/python/make_differential_cases.py",
                                dir_->path()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    manifest_ = new json(json::parse(test::read_text(dir_->file("manifest.json"))));
  }
  static void TearDownTestSuite() {
    delete manifest_;
    delete dir_;
    manifest_ = nullptr;
    dir_ = nullptr;
  }
  static test::TempDir* dir_;
  static json* manifest_;
};
test::TempDir* LibtorchReader::dir_ = nullptr;
json* LibtorchReader::manifest_ = nullptr;

TEST_F(LibtorchReader, PythonWrittenZipFilesAgree) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(manifest_ != nullptr, "Python torch not available");
  std::set<std::string> read, refused;
  for (const auto& [name, m] : manifest_->items()) {
    // pickle_load reads the zip container only (the legacy stacked-pickle format is Python-only).
    if (m.at("container") == "legacy") continue;
    SCOPED_TRACE(name);
    auto n = compare_with_libtorch(m.at("file"));
    if (!n) {
      refused.insert(name);
      continue;
    }
    EXPECT_EQ(*n, m.at("tensors").size());
    read.insert(name);
  }
  // The cases libtorch can read must include the ones that matter most for this comparison.
  for (const char* must : {"every_dtype", "zero_dim_and_empty", "views_and_transposes", "shared_storage_offsets",
                           "unicode_keys", "from_buffer"})
    EXPECT_TRUE(read.count(must)) << must;
  EXPECT_GE(read.size(), 6u);
}

TEST_F(LibtorchReader, CorpusFilesAgree) {
  for (const char* c : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"})
    for (const char* f : {"state_dict.bin", "compression_state_dict.bin", "refs.pt"}) {
      std::string path = test::fixture_dir(c) + "/" + f;
      auto n = compare_with_libtorch(path);
      ASSERT_TRUE(n.has_value()) << path;  // AudioCraft exports use nothing libtorch lacks
      if (std::string(f) == "state_dict.bin") EXPECT_GT(*n, 0u) << path;
    }
}

// mgcheck's writer, read back by libtorch: every dtype, views over one storage, Parameters, nesting.
TEST_F(LibtorchReader, MgcheckWrittenFilesAgree) {
  WDict d;
  uint32_t seed = 7;
  for (DType dt : {DType::float64, DType::float32, DType::float16, DType::bfloat16, DType::int64, DType::int32,
                   DType::int16, DType::int8, DType::uint8, DType::bool_, DType::complex64, DType::complex128}) {
    std::vector<uint8_t> b(6 * itemsize(dt));
    for (auto& x : b) x = static_cast<uint8_t>((seed = seed * 1103515245u + 12345u) >> 24);
    if (dt == DType::bool_)
      for (auto& x : b) x &= 1;
    d.emplace_back(std::string("t_") + dtype_name(dt), make_tensor(dt, {2, 3}, b));
  }
  auto base = make_tensor(DType::float32, {12}, std::vector<uint8_t>(48, 3));
  base.share_key = "b";
  WTensor tr = base;
  tr.sizes = {4, 3};
  tr.strides = {1, 4};
  WTensor sl = base;
  sl.sizes = {5};
  sl.storage_offset = 7;
  // (No Parameter and no one-pair dict here: libtorch 1.13 cannot read them; writer_test covers both
  // against Python's torch.load.)
  d.emplace_back("base", base);
  d.emplace_back("transposed", tr);
  d.emplace_back("slice", sl);
  d.emplace_back("scalar", make_tensor(DType::int64, {}, std::vector<uint8_t>(8, 2)));
  d.emplace_back("empty", make_tensor(DType::float16, {0, 3}, {}));
  // A plain dict: libtorch 1.13's unpickler turns every collections.OrderedDict into None (it expects
  // them only as empty backward hooks), so populated OrderedDicts are left to writer_test.
  WValue od = WDict{{"x", make_tensor(DType::float32, {1}, std::vector<uint8_t>(4, 9))},
                    {"y", make_tensor(DType::int8, {3}, std::vector<uint8_t>{1, 2, 3})}};
  WValue root = WDict{{"best_state", d}, {"od", od}, {"list", WList{int64_t{1}, od}}, {"version", std::string("1")}};
  test::TempDir dir("libtorch-writer");
  std::string path = dir.file("w.pt");
  ASSERT_TRUE(write_torch_save_file(path, root, {}).ok());
  auto n = compare_with_libtorch(path);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, d.size() + 4);
}

}  // namespace
}  // namespace mgcheck::format
