// Weight scan: NaN / Inf / zero / subnormal counts checked against Python torch's own classification
// (torch.isnan / isinf / abs() < finfo.tiny), kernels and the checkpoint-level findings.
#include "mgcheck/format/weights_scan.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include "test_support.h"

using namespace mgcheck::format;
namespace t = mgcheck::test;

namespace {

// Python writes <dir>/<dtype>.bin (raw little-endian elements) and prints, per dtype, one line
// "dtype nan inf zero subnormal first_nan first_inf numel".
const char* kMakeArrays = R"PY(
import sys, torch
out = sys.argv[1]
g = torch.Generator().manual_seed(7)
for name, dt in [("float16", torch.float16), ("bfloat16", torch.bfloat16),
                 ("float32", torch.float32), ("float64", torch.float64)]:
    n = 50000
    x = (torch.randn(n, generator=g, dtype=torch.float64) * 3).to(dt)
    fi = torch.finfo(dt)
    idx = torch.randperm(n, generator=g)
    x[idx[:37]] = float('nan')
    x[idx[37:50]] = float('inf')
    x[idx[50:55]] = -float('inf')
    x[idx[55:300]] = 0.0
    x[idx[300:320]] = -0.0
    x[idx[320:400]] = fi.tiny / 4           # subnormal
    x[idx[400:410]] = -fi.tiny / 2
    raw = x.view(torch.int16 if x.element_size() == 2 else (torch.int32 if x.element_size() == 4 else torch.int64))
    open(f"{out}/{name}.bin", "wb").write(raw.numpy().tobytes())
    nan = torch.isnan(x); inf = torch.isinf(x)
    fin = x[torch.isfinite(x)]
    zero = (fin == 0).sum().item()
    sub = ((fin != 0) & (fin.abs() < fi.tiny)).sum().item()
    fn = nan.nonzero()[0].item(); fI = inf.nonzero()[0].item()
    print(name, nan.sum().item(), inf.sum().item(), zero, sub, fn, fI, n)
)PY";

struct Expected {
  uint64_t nan, inf, zero, sub, first_nan, first_inf, numel;
};

}  // namespace

TEST(WeightsScanKernel, CountsMatchPythonTorchForEveryFloatDtype) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(t::python_torch_available(), "python3 torch not available");
  t::TempDir tmp("weights-kernel");
  auto r = t::run_python(kMakeArrays, {tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string name;
  int seen = 0;
  while (lines >> name) {
    Expected e{};
    lines >> e.nan >> e.inf >> e.zero >> e.sub >> e.first_nan >> e.first_inf >> e.numel;
    auto dt = dtype_from_name(name);
    ASSERT_TRUE(dt.has_value());
    auto bytes = t::read_file(tmp.file(name + ".bin"));
    FloatCounts c;
    scan_float_bytes(*dt, bytes, c);
    EXPECT_EQ(c.elements, e.numel) << name;
    EXPECT_EQ(c.nan, e.nan) << name;
    EXPECT_EQ(c.inf, e.inf) << name;
    EXPECT_EQ(c.zero, e.zero) << name;
    EXPECT_EQ(c.subnormal, e.sub) << name;
    ASSERT_TRUE(c.first_nan && c.first_inf) << name;
    EXPECT_EQ(*c.first_nan, e.first_nan) << name;
    EXPECT_EQ(*c.first_inf, e.first_inf) << name;
    // Split into two spans at an odd point: the kernel composes (what a fused CRC pass would do).
    FloatCounts split;
    size_t isz = itemsize(*dt), cut = 12345 * isz;
    scan_float_bytes(*dt, std::span<const uint8_t>(bytes).first(cut), split, 0);
    scan_float_bytes(*dt, std::span<const uint8_t>(bytes).subspan(cut), split, 12345);
    EXPECT_EQ(split.nan, c.nan);
    EXPECT_EQ(split.subnormal, c.subnormal);
    EXPECT_EQ(*split.first_nan, *c.first_nan);
    EXPECT_EQ(*split.first_inf, *c.first_inf);
    ++seen;
  }
  EXPECT_EQ(seen, 4);
}

namespace {

// A hand-built checkpoint over `storage` (no reader needed): one tensor per entry.
struct FakeTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> sizes, strides;
  int64_t storage_offset;
  bool contiguous;
};

Checkpoint fake_checkpoint(std::span<const uint8_t> storage, const std::vector<FakeTensor>& ts,
                           uint64_t storage_file_offset) {
  Checkpoint c;
  c.file = "fake.bin";
  for (const auto& ft : ts) {
    TensorView v;
    v.dtype = ft.dtype;
    v.sizes = ft.sizes;
    v.strides = ft.strides;
    v.storage_offset = ft.storage_offset;
    v.storage = storage;
    v.storage_file_offset = storage_file_offset;
    v.numel = 1;
    for (auto s : ft.sizes) v.numel *= static_cast<uint64_t>(s);
    v.contiguous = ft.contiguous;
    v.valid = true;
    v.first_byte = static_cast<uint64_t>(ft.storage_offset) * itemsize(ft.dtype);
    v.span_bytes = v.numel * itemsize(ft.dtype);
    c.named.push_back({"best_state/" + ft.name, ft.name, static_cast<uint32_t>(c.tensors.size())});
    c.tensors.push_back(v);
  }
  return c;
}

void put_f32(std::vector<uint8_t>& b, size_t i, float v) { std::memcpy(b.data() + 4 * i, &v, 4); }

}  // namespace

TEST(WeightsScan, FindingsNameTensorCountAndFileOffset) {
  // Storage of 64 float32: [0,8) NaN at 3 and 5; [8,16) all zero; [16,64) finite, one Inf at 40.
  std::vector<uint8_t> st(64 * 4, 0);
  for (size_t i = 16; i < 64; ++i) put_f32(st, i, 0.5f + static_cast<float>(i));
  put_f32(st, 3, std::numeric_limits<float>::quiet_NaN());
  put_f32(st, 5, -std::numeric_limits<float>::quiet_NaN());
  put_f32(st, 40, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < 8; ++i)
    if (i != 3 && i != 5) put_f32(st, i, 1.0f);
  auto ck = fake_checkpoint(st,
                            {{"a.weight", DType::float32, {2, 4}, {4, 1}, 0, true},
                             {"z.bias", DType::float32, {8}, {1}, 8, true},
                             {"b.weight", DType::float32, {6, 8}, {8, 1}, 16, true}},
                            1000);
  Findings f;
  WeightsScanOptions o;
  o.expected_float_dtype = DType::float32;
  auto ws = scan_weights(ck, o, f);
  ASSERT_EQ(ws.tensors.size(), 3u);
  EXPECT_EQ(ws.tensors[0].counts.nan, 2u);
  EXPECT_TRUE(ws.tensors[1].all_zero);
  EXPECT_EQ(ws.tensors[2].counts.inf, 1u);
  int nan = 0, inf = 0, zero = 0;
  for (const auto& x : f.items()) {
    if (x.code == "MG-WEIGHTS-NAN") {
      ++nan;
      EXPECT_EQ(x.severity, Severity::error);
      EXPECT_EQ(x.name, "best_state/a.weight");
      EXPECT_EQ(x.offset, std::optional<uint64_t>(1000 + 3 * 4));
      EXPECT_NE(x.message.find("2 of 8"), std::string::npos) << x.message;
    } else if (x.code == "MG-WEIGHTS-INF") {
      ++inf;
      EXPECT_EQ(x.name, "best_state/b.weight");
      EXPECT_EQ(x.offset, std::optional<uint64_t>(1000 + 40 * 4));
    } else if (x.code == "MG-WEIGHTS-ALL-ZERO") {
      ++zero;
      EXPECT_EQ(x.severity, Severity::warning);
      EXPECT_EQ(x.name, "best_state/z.bias");
    }
  }
  EXPECT_EQ(nan, 1);
  EXPECT_EQ(inf, 1);
  EXPECT_EQ(zero, 1);
  EXPECT_FALSE(f.has_code("MG-WEIGHTS-DTYPE"));
}

TEST(WeightsScan, StridedViewCountsOnlyViewedElements) {
  // A 4x4 float32 storage viewed transposed and as a column slice; NaN outside the view is not counted.
  std::vector<uint8_t> st(16 * 4, 0);
  for (size_t i = 0; i < 16; ++i) put_f32(st, i, 1.0f + static_cast<float>(i));
  put_f32(st, 6, std::numeric_limits<float>::quiet_NaN());   // row 1, col 2
  put_f32(st, 15, std::numeric_limits<float>::quiet_NaN());  // row 3, col 3
  auto ck = fake_checkpoint(st,
                            {{"t", DType::float32, {4, 4}, {1, 4}, 0, false},    // transpose: all 16
                             {"col2", DType::float32, {4}, {4}, 2, false},       // column 2: hits index 6
                             {"col0", DType::float32, {4, 1}, {4, 1}, 0, false}}, // column 0: clean
                            0);
  Findings f;
  auto ws = scan_weights(ck, {}, f);
  EXPECT_EQ(ws.tensors[0].counts.nan, 2u);
  EXPECT_EQ(ws.tensors[0].counts.elements, 16u);
  // Transposed order: element (i,j) of the view is storage j*4+i; storage 6 = (2,1) → linear 9.
  EXPECT_EQ(ws.tensors[0].counts.first_nan, std::optional<uint64_t>(9));
  EXPECT_EQ(ws.tensors[0].first_nan_offset, std::optional<uint64_t>(6 * 4));
  EXPECT_EQ(ws.tensors[1].counts.nan, 1u);
  EXPECT_EQ(ws.tensors[1].first_nan_offset, std::optional<uint64_t>(6 * 4));
  EXPECT_EQ(ws.tensors[1].counts.first_nan, std::optional<uint64_t>(1));
  EXPECT_EQ(ws.tensors[2].counts.nan, 0u);
  EXPECT_EQ(ws.tensors[2].counts.elements, 4u);
}

TEST(WeightsScan, InvalidTensorsAreSkipped) {
  std::vector<uint8_t> st(4 * 4, 0xFF);  // NaN bytes, but the view failed the reader's checks
  auto ck = fake_checkpoint(st, {{"bad", DType::float32, {4}, {1}, 0, true}}, 0);
  ck.tensors[0].valid = false;
  Findings f;
  auto ws = scan_weights(ck, {}, f);
  EXPECT_TRUE(ws.tensors.empty());
  EXPECT_EQ(f.size(), 0u);
}

TEST(WeightsScan, UnusualDtypeAndSubnormalNotesAreOnePerFile) {
  std::vector<uint8_t> st(8 * 2, 0);
  uint16_t sub = 0x0001, one = 0x3C00;  // fp16: smallest subnormal, 1.0
  for (size_t i = 0; i < 8; ++i) std::memcpy(st.data() + 2 * i, i % 2 ? &sub : &one, 2);
  auto ck = fake_checkpoint(st,
                            {{"a", DType::float16, {4}, {1}, 0, true},
                             {"b", DType::float16, {4}, {1}, 4, true}},
                            0);
  Findings f;
  WeightsScanOptions o;
  o.expected_float_dtype = DType::float32;  // an EnCodec file stored in float16
  auto ws = scan_weights(ck, o, f);
  EXPECT_EQ(ws.subnormal_elements, 4u);
  size_t subn = 0, dt = 0;
  for (const auto& x : f.items()) {
    subn += x.code == "MG-WEIGHTS-SUBNORMAL";
    dt += x.code == "MG-WEIGHTS-DTYPE";
    EXPECT_EQ(x.severity, Severity::note);
  }
  EXPECT_EQ(subn, 1u);
  EXPECT_EQ(dt, 1u);
  EXPECT_FALSE(f.has_errors());
}

TEST(WeightsScanKernel, ThroughputIsNearMemoryBandwidth) {
  // Informative: 64 MiB of float16 through the kernel. Printed, and only a very loose floor asserted
  // (Debug builds and a shared 2-core machine).
  std::vector<uint8_t> buf(64u << 20, 0x3C);
  FloatCounts c;
  auto t0 = std::chrono::steady_clock::now();
  scan_float_bytes(DType::float16, buf, c);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double gbps = static_cast<double>(buf.size()) / s / 1e9;
  std::printf("float16 scan: %.2f GB/s\n", gbps);
  EXPECT_EQ(c.elements, buf.size() / 2);
  EXPECT_GT(gbps, 0.05);
}
