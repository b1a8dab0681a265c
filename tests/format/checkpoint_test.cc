// read_checkpoint: every corpus fixture reads cleanly with the tensor counts case.json records, and
// every MG-TENSOR-* check fires on a file broken in exactly that way, with the byte offset Python's
// zipfile/pickletools (tests/python/zip_offsets.py) place the offending record or opcode at.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <set>

#include "../../corpus/tools/pickle_bytes.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/writer.h"
#include "test_support.h"

namespace mgcheck::format {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------------
// Corpus fixtures

struct Read {
  Findings findings;
  std::unique_ptr<MappedFile> src;
  std::optional<Checkpoint> ck;
  std::optional<Finding> fatal;
};

std::unique_ptr<Read> read_path(const std::string& path, const Limits& limits = {}) {
  auto r = std::make_unique<Read>();
  auto src = MappedFile::open(path);
  EXPECT_TRUE(src.ok()) << path;
  if (!src.ok()) return r;
  r->src = std::move(src.value());
  auto ck = read_checkpoint(*r->src, limits, ReadOptions{}, r->findings);
  if (ck.ok()) r->ck = std::move(ck.value());
  else r->fatal = ck.error();
  return r;
}

std::string describe(const Findings& f) {
  std::string s;
  for (const auto& x : f.items())
    s += x.code + " @" + (x.offset ? std::to_string(*x.offset) : "-") + " [" + x.name + "] " + x.message + "\n";
  return s;
}

size_t count_prefix(const Checkpoint& ck, const std::string& prefix) {
  size_t n = 0;
  for (const auto& t : ck.named)
    if (t.path.rfind(prefix, 0) == 0) ++n;
  return n;
}

class CorpusFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusFixture, ExportsAndRefsReadWithoutErrorsAndExpectedCounts) {
  const std::string dir = test::fixture_dir(GetParam());
  json cj = json::parse(test::read_text(dir + "/case.json"));
  const json& cfg = cj.at("config");

  // LM export: {best_state: {name: float16 tensor}, xp.cfg, version, exported}
  auto lm = read_path(dir + "/state_dict.bin");
  ASSERT_TRUE(lm->ck) << lm->fatal->code << " " << lm->fatal->message;
  EXPECT_FALSE(lm->findings.has_errors()) << describe(lm->findings);
  EXPECT_EQ(lm->ck->kind, ContainerKind::zip);
  EXPECT_EQ(lm->ck->folder, "state_dict");
  EXPECT_EQ(lm->ck->version_record, "3\n");
  const auto lm_n = cfg.at("lm_num_tensors").get<size_t>();
  EXPECT_EQ(count_prefix(*lm->ck, "best_state/"), lm_n);
  EXPECT_EQ(lm->ck->named.size(), lm_n);
  EXPECT_EQ(lm->ck->tensors.size(), lm_n);
  for (const auto& n : lm->ck->named) {
    const TensorView& t = lm->ck->tensors[n.tensor];
    EXPECT_TRUE(t.valid) << n.path;
    EXPECT_EQ(t.dtype, DType::float16) << n.path;
    EXPECT_TRUE(t.contiguous) << n.path;             // AudioCraft's copy_state: own storage, dense
    EXPECT_EQ(t.storage_offset, 0) << n.path;
    EXPECT_EQ(t.span_bytes, t.storage.size()) << n.path;
    EXPECT_EQ(n.path, "best_state/" + n.key);
  }

  // Compression export (or the pretrained reference, which has no tensors).
  auto comp = read_path(dir + "/compression_state_dict.bin");
  ASSERT_TRUE(comp->ck) << comp->fatal->code << " " << comp->fatal->message;
  EXPECT_FALSE(comp->findings.has_errors()) << describe(comp->findings);
  const json& cc = cfg.at("compression");
  const size_t comp_n = cc.contains("num_tensors") ? cc.at("num_tensors").get<size_t>() : 0;
  EXPECT_EQ(comp->ck->named.size(), comp_n);
  EXPECT_EQ(count_prefix(*comp->ck, "best_state/"), comp_n);

  // refs.pt: {'tensors': {name: Tensor}, 'meta_json': str}; shapes and dtypes as case.json lists them.
  auto refs = read_path(dir + "/refs.pt");
  ASSERT_TRUE(refs->ck) << refs->fatal->code << " " << refs->fatal->message;
  EXPECT_FALSE(refs->findings.has_errors()) << describe(refs->findings);
  const json& rt = cj.at("refs").at("tensors");
  EXPECT_EQ(refs->ck->named.size(), rt.size());
  for (const auto& n : refs->ck->named) {
    ASSERT_EQ(n.path.rfind("tensors/", 0), 0u) << n.path;
    ASSERT_TRUE(rt.contains(n.key)) << n.key;
    const TensorView& t = refs->ck->tensors[n.tensor];
    EXPECT_EQ(t.sizes, rt.at(n.key).at("shape").get<std::vector<int64_t>>()) << n.key;
    EXPECT_EQ(std::string("torch.") + dtype_name(t.dtype), rt.at(n.key).at("dtype").get<std::string>()) << n.key;
  }
}

INSTANTIATE_TEST_SUITE_P(AudiocraftTiny, CorpusFixture,
                         ::testing::Values("a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"));

// The raw training checkpoint is a negative fixture for the schema layer; the tensor layer must read it
// without crashing and without tensor-level errors of its own (its storages are honest).
TEST(CorpusTrainingCheckpoint, ReadsWithoutTensorErrors) {
  auto r = read_path(test::fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th");
  for (const auto& f : r->findings.items())
    if (f.code.rfind("MG-TENSOR-", 0) == 0) {
      EXPECT_NE(f.severity, Severity::error) << describe(r->findings);
    }
  if (r->ck) {
    EXPECT_GT(r->ck->tensors.size(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------------
// Element accessors: float16/bfloat16 by hand, checked against values torch computes.

TEST(ElementAccess, ConvertsEveryDtypeAsTorchDoes) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  test::TempDir dir("ck-elements");
  const std::string path = dir.file("e.pt");
  auto r = test::run_python(R"(
import sys, torch
v = [0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-05, 5.96e-08, 1e-3, float('inf'), float('-inf'), 3.14159, -1e30, 1e30]
d = {}
for dt in [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.complex64, torch.complex128]:
    d[str(dt)] = torch.tensor(v, dtype=torch.float64).to(dt)
d['ints'] = torch.tensor([0, -1, 127, -128, 2**40, -2**62], dtype=torch.int64)
d['i8'] = torch.tensor([0, -1, 127, -128], dtype=torch.int8)
d['u8'] = torch.tensor([0, 255, 7], dtype=torch.uint8)
d['b'] = torch.tensor([True, False])
d['t'] = torch.arange(12, dtype=torch.int16).view(3, 4).t()
torch.save(d, sys.argv[1])
for k, t in d.items():
    vals = t.reshape(-1).real.double() if t.is_complex() else t.reshape(-1).double()
    print(k, ' '.join(float(x).hex() for x in vals.tolist()))
)",
                            {path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rd = read_path(path);
  ASSERT_TRUE(rd->ck);
  std::map<std::string, const TensorView*> by;
  for (const auto& n : rd->ck->named) by[n.path] = &rd->ck->tensors[n.tensor];
  std::istringstream lines(r.out);
  std::string line;
  size_t checked = 0;
  while (std::getline(lines, line)) {
    std::istringstream ls(line);
    std::string key, tok;
    ls >> key;
    ASSERT_TRUE(by.count(key)) << key;
    const TensorView& t = *by[key];
    for (uint64_t i = 0; ls >> tok; ++i) {
      double want = std::strtod(tok.c_str(), nullptr);
      double got = element_as_double(t, i);
      EXPECT_EQ(std::memcmp(&want, &got, 8), 0) << key << "[" << i << "] " << got << " vs " << want;
      if (!is_floating(t.dtype) && t.dtype != DType::complex64 && t.dtype != DType::complex128) {
        EXPECT_EQ(element_as_int(t, i), static_cast<int64_t>(want)) << key << "[" << i << "]";
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 80u);
  // Out of range reads are 0, never out of bounds.
  EXPECT_EQ(element_as_double(*by["ints"], 1000), 0.0);
  EXPECT_EQ(element_as_int(*by["ints"], 6), 0);
}

// ---------------------------------------------------------------------------------------------------
// Negative tests: one broken file per check, offsets from Python's zipfile/pickletools.

struct Offsets {
  std::map<std::string, json> records;
  std::vector<std::pair<std::string, uint64_t>> ops;
  uint64_t nth(const std::string& op, size_t n) const {  // n-th occurrence (0-based)
    for (const auto& [name, off] : ops)
      if (name == op && n-- == 0) return off;
    ADD_FAILURE() << "no opcode " << op;
    return 0;
  }
  uint64_t last(const std::string& op) const {
    uint64_t r = 0;
    for (const auto& [name, off] : ops)
      if (name == op) r = off;
    return r;
  }
  uint64_t header(const std::string& rec) const { return records.at(rec).at("header").get<uint64_t>(); }
};

Offsets python_offsets(const std::string& path) {
  auto r = test::run_process({"/usr/bin/python3", test::source_dir() + "/tests/python/zip_offsets.py", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  Offsets o;
  for (auto& [k, v] : j.at("records").items()) o.records[k] = v;
  for (const auto& op : j.at("ops")) o.ops.emplace_back(op[0].get<std::string>(), op[1].get<uint64_t>());
  return o;
}

std::vector<uint8_t> f32_bytes(size_t n) {
  std::vector<uint8_t> b(n * 4);
  for (size_t i = 0; i < n; ++i) {
    float f = static_cast<float>(i) + 0.5f;
    std::memcpy(&b[i * 4], &f, 4);
  }
  return b;
}

class Broken : public ::testing::Test {
 protected:
  // Writes `root` with the writer's testing hooks, reads it back, and returns the reader's verdict.
  std::unique_ptr<Read> write_and_read(const WValue& root, WriteOptions opts = {}, const Limits& limits = {}) {
    path_ = dir_.file("broken" + std::to_string(n_++) + ".pt");
    opts.check_tensors = false;
    auto st = write_torch_save_file(path_, root, opts);
    EXPECT_TRUE(st.ok()) << st.error().message;
    return read_path(path_, limits);
  }
  // The one finding with `code`; fails the test when absent.
  static const Finding* find(const Read& r, const std::string& code) {
    for (const auto& f : r.findings.items())
      if (f.code == code) return &f;
    ADD_FAILURE() << "no " << code << " among:\n" << describe(r.findings);
    return nullptr;
  }
  void expect_finding(const Read& r, const std::string& code, uint64_t offset, const std::string& name,
                      Severity sev = Severity::error) {
    const Finding* f = find(r, code);
    if (f == nullptr) return;
    EXPECT_EQ(f->severity, sev) << code;
    ASSERT_TRUE(f->offset.has_value()) << code;
    EXPECT_EQ(*f->offset, offset) << code;
    EXPECT_EQ(f->name, name) << code;
    EXPECT_EQ(f->file, path_) << code;
    EXPECT_FALSE(f->message.empty());
    EXPECT_FALSE(f->hint.empty());
  }
  const TensorView* tensor(const Read& r, const std::string& path) {
    if (!r.ck) return nullptr;
    for (const auto& n : r.ck->named)
      if (n.path == path) return &r.ck->tensors[n.tensor];
    return nullptr;
  }

  test::TempDir dir_{"ck-broken"};
  std::string path_;
  int n_ = 0;
};

TEST_F(Broken, UndersizedStorageRecordIsRefused) {
  // The CVE-2026-24747 shape: a 24-byte record declared as 1,000,000 floats (torch 1.13 loads it).
  auto t = make_tensor(DType::float32, {6}, f32_bytes(6));
  t.declared_numel = 1000000;
  auto r = write_and_read(WDict{{"w", t}});
  ASSERT_TRUE(r->ck);
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-STORAGE-SIZE", o.header("data/0"), "data/0");
  const TensorView* v = tensor(*r, "w");
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(v->valid);
  EXPECT_TRUE(v->storage.empty());
  EXPECT_EQ(element_as_double(*v, 0), 0.0);
}

TEST_F(Broken, LyingNumelSmallerThanRecordIsRefused) {
  auto t = make_tensor(DType::float32, {2}, f32_bytes(6));
  t.declared_numel = 2;  // 24-byte record, 8 bytes declared: 16 hidden bytes
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-STORAGE-SIZE", o.header("data/0"), "data/0");
}

TEST_F(Broken, NumelTimesItemsizeOverflowIsRefused) {
  auto t = make_tensor(DType::float64, {1}, std::vector<uint8_t>(8));
  t.declared_numel = INT64_MAX;  // × 8 overflows uint64? no: 2^63·8 = 2^66 → overflow
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-STORAGE-SIZE", o.header("data/0"), "data/0");
}

TEST_F(Broken, OutOfBoundsViewIsRefused) {
  auto t = make_tensor(DType::float32, {2, 3}, f32_bytes(5));  // needs 6 elements, storage has 5
  auto ok = make_tensor(DType::float32, {2}, f32_bytes(2));
  auto r = write_and_read(WDict{{"fine", ok}, {"w", t}});
  auto o = python_offsets(path_);
  // Tensor REDUCEs: each tensor has its hooks REDUCE then its own; "w" is the 2nd tensor → REDUCE #3.
  expect_finding(*r, "MG-TENSOR-OUT-OF-BOUNDS", o.nth("REDUCE", 3), "w");
  EXPECT_TRUE(tensor(*r, "fine")->valid);
  EXPECT_FALSE(tensor(*r, "w")->valid);
}

TEST_F(Broken, OffsetPastTheEndOfAnEmptyViewIsRefused) {
  auto t = make_tensor(DType::float32, {0}, f32_bytes(3));
  t.storage_offset = 4;  // torch accepts this; §9.5 item 27 requires offset ≤ storage numel
  auto r = write_and_read(WDict{{"e", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-OUT-OF-BOUNDS", o.last("REDUCE"), "e");
  auto at_end = make_tensor(DType::float32, {0}, f32_bytes(3));
  at_end.storage_offset = 3;
  auto r2 = write_and_read(WDict{{"e", at_end}});
  EXPECT_FALSE(r2->findings.has_errors()) << describe(r2->findings);
}

TEST_F(Broken, NegativeStrideIsRefused) {
  auto t = make_tensor(DType::float32, {3}, f32_bytes(3));
  t.strides = {-1};
  t.storage_offset = 2;
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-NEGATIVE-STRIDE", o.last("REDUCE"), "w");
}

TEST_F(Broken, NegativeSizeIsRefused) {
  auto t = make_tensor(DType::float32, {-2}, f32_bytes(3));
  t.strides = {1};
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-NEGATIVE-SIZE", o.last("REDUCE"), "w");
}

TEST_F(Broken, NegativeOffsetIsRefused) {
  auto t = make_tensor(DType::float32, {2}, f32_bytes(3));
  t.storage_offset = -1;
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-NEGATIVE-OFFSET", o.last("REDUCE"), "w");
}

TEST_F(Broken, OverflowingShapeIsRefused) {
  auto t = make_tensor(DType::float32, {int64_t{1} << 62, 8}, f32_bytes(1));
  t.strides = {0, 0};
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-NUMEL-OVERFLOW", o.last("REDUCE"), "w");
}

TEST_F(Broken, ExtentOverflowIsOutOfBoundsNotAWraparound) {
  // numel 4 fits, but offset + (size−1)·stride overflows uint64: must not wrap into range.
  auto t = make_tensor(DType::float32, {2, 2}, f32_bytes(4));
  t.strides = {INT64_MAX, 1};
  t.storage_offset = INT64_MAX;
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-OUT-OF-BOUNDS", o.last("REDUCE"), "w");
}

TEST_F(Broken, RankAboveLimitIsRefused) {
  auto t = make_tensor(DType::float32, std::vector<int64_t>(17, 1), f32_bytes(1));
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-RANK", o.last("REDUCE"), "w");
  Limits tight;
  tight.max_rank = 2;
  auto t3 = make_tensor(DType::float32, {1, 1, 2}, f32_bytes(2));
  auto r2 = write_and_read(WDict{{"w", t3}}, {}, tight);
  auto o2 = python_offsets(path_);
  expect_finding(*r2, "MG-TENSOR-RANK", o2.last("REDUCE"), "w");
}

TEST_F(Broken, StrideCountDifferentFromRankIsRefused) {
  auto t = make_tensor(DType::float32, {2, 3}, f32_bytes(6));
  t.strides = {1};
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  // The pickle machine already refuses the _rebuild_tensor_v2 call (MG-TENSOR-STRIDE-RANK is the
  // tensor layer's second line for TensorRefs built any other way); either way: an error at the REDUCE.
  const Finding* f = nullptr;
  for (const auto& x : r->findings.items())
    if (x.code == "MG-PICKLE-REBUILD-ARGS" || x.code == "MG-TENSOR-STRIDE-RANK") f = &x;
  ASSERT_NE(f, nullptr) << describe(r->findings);
  EXPECT_EQ(f->severity, Severity::error);
  EXPECT_EQ(f->offset, o.last("REDUCE"));
  EXPECT_EQ(tensor(*r, "w"), nullptr);  // no tensor is listed for a refused rebuild
}

TEST_F(Broken, ZeroStrideIsAWarning) {
  auto t = make_tensor(DType::float32, {4, 3}, f32_bytes(3));
  t.strides = {0, 1};
  auto r = write_and_read(WDict{{"w", t}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-ZERO-STRIDE", o.last("REDUCE"), "w", Severity::warning);
  EXPECT_FALSE(r->findings.has_errors()) << describe(r->findings);
  EXPECT_TRUE(tensor(*r, "w")->valid);
  EXPECT_FALSE(tensor(*r, "w")->contiguous);
}

TEST_F(Broken, MissingStorageRecordIsRefused) {
  WriteOptions opts;
  opts.omit_records = {"data/1"};
  auto r = write_and_read(WDict{{"a", make_tensor(DType::float32, {1}, f32_bytes(1))},
                                {"b", make_tensor(DType::float32, {2}, f32_bytes(2))}},
                          opts);
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-MISSING-STORAGE", o.nth("BINPERSID", 1), "data/1");
  EXPECT_FALSE(tensor(*r, "b")->valid);
  EXPECT_TRUE(tensor(*r, "a")->valid);
}

TEST_F(Broken, OrphanRecordIsRefused) {
  WriteOptions opts;
  opts.extra_records = {{"data/7", f32_bytes(16)}};
  auto r = write_and_read(WDict{{"a", make_tensor(DType::float32, {1}, f32_bytes(1))}}, opts);
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-ORPHAN-STORAGE", o.header("data/7"), "data/7");
}

TEST_F(Broken, MixedTypeForOneKeyIsRefused) {
  auto a = make_tensor(DType::float32, {2}, f32_bytes(2));
  a.share_key = "s";
  auto b = make_tensor(DType::int32, {2}, f32_bytes(2));
  b.share_key = "s";
  auto r = write_and_read(WDict{{"a", a}, {"b", b}});
  auto o = python_offsets(path_);
  // The pickle machine sees the key named again with another class (MG-PICKLE-STORAGE-MISMATCH, at the
  // second BINPERSID); the tensor layer's MG-TENSOR-DTYPE-MISMATCH covers TensorRefs whose own dtype
  // differs from their storage's. Either way an error at the right opcode.
  const Finding* f = nullptr;
  for (const auto& x : r->findings.items())
    if (x.code == "MG-PICKLE-STORAGE-MISMATCH") f = &x;
  ASSERT_NE(f, nullptr) << describe(r->findings);
  EXPECT_EQ(f->severity, Severity::error);
  EXPECT_EQ(f->offset, o.nth("BINPERSID", 1));
  EXPECT_TRUE(r->findings.has_errors());
}

TEST_F(Broken, QuantizedStorageIsRefused) {
  auto q = make_tensor(DType::qint8, {4}, std::vector<uint8_t>(4, 1));
  auto r = write_and_read(WDict{{"q", q}});
  auto o = python_offsets(path_);
  ASSERT_FALSE(r->fatal.has_value()) << r->fatal->code;
  expect_finding(*r, "MG-TENSOR-QUANTIZED", o.nth("BINPERSID", 0), "data/0");
}

TEST_F(Broken, CudaLocationWarnsOtherLocationsFail) {
  WriteOptions cuda;
  cuda.location = "cuda:1";
  auto r = write_and_read(WDict{{"w", make_tensor(DType::float32, {1}, f32_bytes(1))}}, cuda);
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-CUDA-LOCATION", o.nth("BINPERSID", 0), "data/0", Severity::warning);
  EXPECT_FALSE(r->findings.has_errors()) << describe(r->findings);
  WriteOptions meta;
  meta.location = "meta";
  auto r2 = write_and_read(WDict{{"w", make_tensor(DType::float32, {1}, f32_bytes(1))}}, meta);
  auto o2 = python_offsets(path_);
  expect_finding(*r2, "MG-TENSOR-LOCATION", o2.nth("BINPERSID", 0), "data/0");
}

TEST_F(Broken, TensorCountAboveLimitIsFatal) {
  Limits tight;
  tight.max_tensors = 1;
  auto r = write_and_read(WDict{{"a", make_tensor(DType::float32, {1}, f32_bytes(1))},
                                {"b", make_tensor(DType::float32, {1}, f32_bytes(1))}},
                          {}, tight);
  ASSERT_TRUE(r->fatal.has_value());
  EXPECT_EQ(r->fatal->code, "MG-TENSOR-LIMIT-COUNT");
  // A fatal finding is returned, not pushed: the caller pushes it once.
  EXPECT_FALSE(r->findings.has_code("MG-TENSOR-LIMIT-COUNT"));
}

TEST_F(Broken, ElementAndStorageLimits) {
  Limits tight;
  tight.max_tensor_elements = 5;
  auto r = write_and_read(WDict{{"w", make_tensor(DType::float32, {6}, f32_bytes(6))}}, {}, tight);
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-LIMIT-ELEMENTS", o.last("REDUCE"), "w");
  Limits small;
  small.max_total_storage_bytes = 10;
  auto r2 = write_and_read(WDict{{"w", make_tensor(DType::float32, {6}, f32_bytes(6))}}, {}, small);
  auto o2 = python_offsets(path_);
  expect_finding(*r2, "MG-TENSOR-LIMIT-STORAGE", o2.records.at("data.pkl").at("data").get<uint64_t>(), "data.pkl");
  EXPECT_FALSE(tensor(*r2, "w")->valid);
}

TEST_F(Broken, FileLargerThanLimitIsRefusedUpFront) {
  Limits tight;
  tight.max_file_bytes = 100;
  auto r = write_and_read(WDict{{"w", make_tensor(DType::float32, {6}, f32_bytes(6))}}, {}, tight);
  ASSERT_TRUE(r->fatal.has_value());
  EXPECT_EQ(r->fatal->code, "MG-IO-TOO-LARGE");
}

// A DAG of shared lists that expands to 2^21 paths: the walk must stop at max_objects, not explode.
TEST_F(Broken, SharedContainersCannotExplodeTheWalk) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  const std::string path = dir_.file("dag.pt");
  auto py = test::run_python(R"(
import sys, torch
x = [torch.ones(1)]
for _ in range(20):
    x = [x, x]
torch.save(x, sys.argv[1])
)",
                             {path});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  Limits l;
  l.max_objects = 100000;
  auto r = read_path(path, l);
  ASSERT_TRUE(r->ck) << r->fatal->code;
  EXPECT_TRUE(r->findings.has_code("MG-TENSOR-LIMIT-WALK")) << describe(r->findings);
  EXPECT_LE(r->ck->named.size(), 100000u);
}

TEST_F(Broken, SharedStorageIsNotedWithOverlap) {
  auto base = make_tensor(DType::float32, {6}, f32_bytes(6));
  base.share_key = "s";
  WTensor head = base;
  head.sizes = {3};
  auto r = write_and_read(WDict{{"base", base}, {"head", head}});
  auto o = python_offsets(path_);
  expect_finding(*r, "MG-TENSOR-SHARED-STORAGE", o.nth("REDUCE", 1), "base", Severity::note);
  EXPECT_NE(find(*r, "MG-TENSOR-SHARED-STORAGE")->message.find("overlapping"), std::string::npos);
  EXPECT_EQ(tensor(*r, "base")->storage.data(), tensor(*r, "head")->storage.data());
}

// ---------------------------------------------------------------------------------------------------
// Raw pickles: torch.load's legacy path unpickles any file that is not a zip, so a raw pickle's payload
// would run. It is `unsafe`, with each foreign GLOBAL and call listed; a harmless one stays `fail`.

struct RawRead {
  Findings findings;
  std::optional<Finding> fatal;
  const Finding* find(const std::string& code) const {
    for (const auto& f : findings.items())
      if (f.code == code) return &f;
    return nullptr;
  }
};

RawRead read_bytes(const std::vector<uint8_t>& b) {
  MemorySource src(b, "raw.pkl");
  RawRead r;
  auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, r.findings);
  if (!ck.ok()) r.fatal = ck.error();
  return r;
}

TEST(RawPickle, PythonPayloadIsUnsafeAtEveryProtocol) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  test::TempDir dir("rawpickle");
  // Only pickled, never unpickled. offsets.json: where pickletools places GLOBAL/STACK_GLOBAL and REDUCE.
  auto py = test::run_python(
      "import json, os, pickle, pickletools, sys\n"
      "class Payload:\n"
      "    def __reduce__(self):\n"
      "        return (os.system, ('true',))\n"
      "d = sys.argv[1]; out = {}\n"
      "for p in range(6):\n"
      "    b = pickle.dumps(Payload(), protocol=p)\n"
      "    open(d + '/p%d.pkl' % p, 'wb').write(b)\n"
      "    ops = [(op.name, pos) for op, _, pos in pickletools.genops(b)]\n"
      "    out[p] = {'global': [pos for n, pos in ops if n in ('GLOBAL', 'STACK_GLOBAL')][0],\n"
      "              'reduce': [pos for n, pos in ops if n == 'REDUCE'][0]}\n"
      "open(d + '/harmless.pkl', 'wb').write(pickle.dumps({'a': 1, 'b': [1.5, 'x']}, protocol=2))\n"
      "json.dump(out, open(d + '/offsets.json', 'w'))\n",
      {dir.path()});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  json offsets = json::parse(test::read_text(dir.file("offsets.json")));
  for (int p = 0; p <= 5; ++p) {
    SCOPED_TRACE("protocol " + std::to_string(p));
    RawRead r = read_bytes(test::read_file(dir.file("p" + std::to_string(p) + ".pkl")));
    ASSERT_TRUE(r.fatal);
    EXPECT_EQ(r.fatal->code, "MG-IO-UNKNOWN-FORMAT");
    const Finding* g = r.find("MG-PICKLE-UNSAFE-GLOBAL");
    ASSERT_NE(g, nullptr) << describe(r.findings);
    EXPECT_EQ(g->impact, Impact::unsafe);
    EXPECT_EQ(g->file, "raw.pkl");
    EXPECT_NE(g->message.find("system"), std::string::npos) << g->message;
    const json& o = offsets[std::to_string(p)];
    // GLOBAL names the opcode; STACK_GLOBAL (protocol 4+) the STACK_GLOBAL opcode itself.
    EXPECT_EQ(g->offset, o.at("global").get<uint64_t>());
    const Finding* c = r.find("MG-PICKLE-UNSAFE-CALL");
    ASSERT_NE(c, nullptr) << describe(r.findings);
    EXPECT_EQ(c->impact, Impact::unsafe);
    EXPECT_EQ(c->offset, o.at("reduce").get<uint64_t>());
    EXPECT_TRUE(r.findings.has_unsafe());
  }
  RawRead h = read_bytes(test::read_file(dir.file("harmless.pkl")));
  ASSERT_TRUE(h.fatal);
  EXPECT_EQ(h.fatal->code, "MG-IO-UNKNOWN-FORMAT");
  EXPECT_EQ(h.fatal->impact, Impact::normal);
  EXPECT_FALSE(h.findings.has_unsafe()) << describe(h.findings);
}

TEST(RawPickle, HandMadePayloadsAndLookAlikes) {
  // GLOBAL builtins.eval + REDUCE, protocol 2.
  corpus::PickleBytes p;
  p.proto(2).global("builtins", "eval").str("1").tuple1().reduce().stop();
  RawRead r = read_bytes(p.bytes);
  ASSERT_TRUE(r.fatal);
  EXPECT_EQ(r.fatal->code, "MG-IO-UNKNOWN-FORMAT");
  ASSERT_NE(r.find("MG-PICKLE-UNSAFE-GLOBAL"), nullptr) << describe(r.findings);
  EXPECT_EQ(r.find("MG-PICKLE-UNSAFE-GLOBAL")->offset, 2u);
  ASSERT_NE(r.find("MG-PICKLE-UNSAFE-CALL"), nullptr) << describe(r.findings);
  EXPECT_EQ(r.find("MG-PICKLE-UNSAFE-CALL")->offset, 2u + 15 + 6 + 1);
  // A payload that is damaged after its REDUCE still ran in torch.load: still unsafe.
  corpus::PickleBytes d;
  d.proto(2).global("posix", "system").str("true").tuple1().reduce().op(0xFF);
  r = read_bytes(d.bytes);
  ASSERT_TRUE(r.fatal);
  EXPECT_TRUE(r.findings.has_unsafe()) << describe(r.findings);
  // Text that merely starts like a pickle, or not at all, is just not a checkpoint.
  for (std::string s : {std::string("\x80\x02K\x01.", 5), std::string("hello world"), std::string("\x80\x05")}) {
    r = read_bytes(std::vector<uint8_t>(s.begin(), s.end()));
    ASSERT_TRUE(r.fatal);
    EXPECT_EQ(r.fatal->code, "MG-IO-UNKNOWN-FORMAT");
    EXPECT_FALSE(r.findings.has_unsafe()) << describe(r.findings);
  }
}

TEST(RawPickle, FrameStraddleIsUnsafe) {
  // PROTO 5, a 2-byte FRAME, then a BINBYTES whose length field crosses the frame end: torch.load's
  // unpickler (reading a file) drops the frame and runs the GLOBAL + REDUCE the BINBYTES seemed to hold.
  // The run stops on the straddle (a fatal finding); the scan of a raw pickle must still report it.
  corpus::PickleBytes hidden;
  hidden.global("builtins", "print").str("hi").tuple1().reduce();
  corpus::PickleBytes p;
  p.proto(5).op(0x95).le(2, 8).op('B').le(hidden.bytes.size(), 4);
  p.raw(std::string_view(reinterpret_cast<const char*>(hidden.bytes.data()), hidden.bytes.size())).stop();
  RawRead r = read_bytes(p.bytes);
  ASSERT_TRUE(r.fatal);
  EXPECT_EQ(r.fatal->code, "MG-IO-UNKNOWN-FORMAT");
  const Finding* f = r.find("MG-PICKLE-FRAME-STRADDLE");
  ASSERT_NE(f, nullptr) << describe(r.findings);
  EXPECT_EQ(f->impact, Impact::unsafe);
  EXPECT_EQ(f->offset, 11u);  // the BINBYTES opcode: PROTO (2) + FRAME (9)
}

TEST(RawPickle, MagicNumberFramedOtherwiseIsStillLegacy) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(test::python_torch_available(), "python3 torch not available");
  test::TempDir dir("legacyframe");
  auto py = test::run_python(
      "import sys, torch\n"
      "torch.save({'w': torch.arange(6.0)}, sys.argv[1] + '/l.pt', _use_new_zipfile_serialization=False)\n",
      {dir.path()});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  auto b = test::read_file(dir.file("l.pt"));
  ASSERT_EQ(b[1], 2);
  // The same magic number as LONG4 instead of LONG1: torch.load compares values, not bytes.
  std::vector<uint8_t> v = {0x80, 0x02, 0x8B, 0x0A, 0, 0, 0};
  v.insert(v.end(), b.begin() + 4, b.end());
  ASSERT_EQ(sniff_container(v), ContainerKind::unknown);
  MemorySource src(v, "l.pt");
  Findings f;
  auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, f);
  ASSERT_TRUE(ck.ok()) << ck.error().code << " " << ck.error().message;
  EXPECT_EQ(ck->kind, ContainerKind::legacy);
  EXPECT_FALSE(f.has_errors()) << describe(f);
  ASSERT_EQ(ck->tensors.size(), 1u);
  EXPECT_EQ(element_as_double(ck->tensors[0], 5), 5.0);
}

}  // namespace
}  // namespace mgcheck::format
