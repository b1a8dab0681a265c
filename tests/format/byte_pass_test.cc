// The streaming byte pass (CRC-32 of every record + weights scan in one pread pass) against two
// independent references: Python torch's own classification of tensors it wrote with NaN / Inf placed at
// chosen elements (around every read boundary), and the mapped route it replaces in `quick`
// (read_checkpoint with CRCs + scan_weights over the mapping), finding for finding, on every fixture and
// on corrupted copies.
#include "mgcheck/format/byte_pass.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "mgcheck/format/container.h"
#include "mgcheck/format/weights_scan.h"
#include "test_support.h"

using namespace mgcheck::format;
namespace t = mgcheck::test;

namespace {

// Tensors with NaN / Inf at elements that straddle small read sizes (64, 192, 4096 bytes) and one strided
// view (walked by scan_weights, not by the pass). Prints per tensor: name nan inf zero first_nan first_inf
// numel (first_* = -1 when none), row-major indices as torch.nonzero gives them.
const char* kMakeFile = R"PY(
import sys, torch
g = torch.Generator().manual_seed(3)
w16 = torch.randn(5000, generator=g).half()
w16[[31, 32, 2047, 2048, 4999]] = float('nan'); w16[3000] = float('inf')
w32 = torch.randn(64, 64, generator=g)
w32[15, 63] = float('nan'); w32[40, 0] = -float('inf')
bf = torch.randn(100, generator=g).bfloat16(); bf[7] = float('inf')
f64 = torch.randn(33, generator=g, dtype=torch.float64); f64[32] = float('nan')
z = torch.zeros(10)
sd = {'w16': w16, 'w32': w32, 'bf': bf, 'f64': f64, 'z': z, 'view': w32.t(), 'ints': torch.arange(9)}
torch.save(sd, sys.argv[1])
for k, v in sd.items():
    if not v.is_floating_point(): continue
    x = v.contiguous().reshape(-1).double()
    nan = torch.isnan(x).nonzero().flatten().tolist(); inf = torch.isinf(x).nonzero().flatten().tolist()
    print(k, len(nan), len(inf), int((x == 0).sum()), nan[0] if nan else -1, inf[0] if inf else -1, x.numel())
)PY";

struct Expected {
  uint64_t nan, inf, zero;
  int64_t first_nan, first_inf;
  uint64_t numel;
};

using FindingKey = std::tuple<std::string, std::string, uint64_t, std::string, std::string>;

std::multiset<FindingKey> keys(const Findings& f) {
  std::multiset<FindingKey> out;
  for (const auto& x : f.items()) out.insert({x.code, x.file, x.offset.value_or(UINT64_MAX), x.name, x.message});
  return out;
}

// The mapped route: CRCs inside read_checkpoint, scan_weights reading the mapping.
struct Route {
  Findings findings;
  std::optional<Checkpoint> ck;
  WeightsScan scan;
};

Route mapped_route(const ByteSource& src) {
  Route r;
  ReadOptions ro;
  ro.verify_crc = true;
  auto ck = read_checkpoint(src, Limits{}, ro, r.findings);
  if (!ck) return r;
  r.ck = std::move(ck).value();
  r.scan = scan_weights(*r.ck, WeightsScanOptions{}, r.findings);
  return r;
}

Route streamed_route(const ByteSource& src, size_t chunk, BytePass* pass_out = nullptr, unsigned threads = 1) {
  Route r;
  ReadOptions ro;
  ro.verify_crc = false;
  auto ck = read_checkpoint(src, Limits{}, ro, r.findings);
  if (!ck) return r;
  r.ck = std::move(ck).value();
  BytePassOptions bo;
  bo.chunk_bytes = chunk;
  bo.threads = threads;
  bo.parallel_min_bytes = 0;
  BytePass pass = byte_pass(src, *r.ck, bo, r.findings);
  WeightsScanOptions wo;
  wo.precomputed = &pass.counts;
  r.scan = scan_weights(*r.ck, wo, r.findings);
  if (pass_out) *pass_out = std::move(pass);
  return r;
}

void expect_same(const Route& a, const Route& b, const std::string& what) {
  EXPECT_EQ(keys(a.findings), keys(b.findings)) << what;
  ASSERT_EQ(a.ck.has_value(), b.ck.has_value()) << what;
  if (!a.ck) return;
  ASSERT_EQ(a.ck->records.size(), b.ck->records.size()) << what;
  for (size_t i = 0; i < a.ck->records.size(); ++i)
    EXPECT_EQ(a.ck->records[i].crc_ok, b.ck->records[i].crc_ok) << what << " record " << a.ck->records[i].name;
  ASSERT_EQ(a.scan.tensors.size(), b.scan.tensors.size()) << what;
  for (size_t i = 0; i < a.scan.tensors.size(); ++i) {
    const auto& x = a.scan.tensors[i];
    const auto& y = b.scan.tensors[i];
    EXPECT_EQ(x.counts.elements, y.counts.elements) << what << " " << x.name;
    EXPECT_EQ(x.counts.nan, y.counts.nan) << what << " " << x.name;
    EXPECT_EQ(x.counts.inf, y.counts.inf) << what << " " << x.name;
    EXPECT_EQ(x.counts.zero, y.counts.zero) << what << " " << x.name;
    EXPECT_EQ(x.counts.subnormal, y.counts.subnormal) << what << " " << x.name;
    EXPECT_EQ(x.counts.first_nan, y.counts.first_nan) << what << " " << x.name;
    EXPECT_EQ(x.first_nan_offset, y.first_nan_offset) << what << " " << x.name;
    EXPECT_EQ(x.first_inf_offset, y.first_inf_offset) << what << " " << x.name;
  }
  EXPECT_EQ(a.scan.bytes_scanned, b.scan.bytes_scanned) << what;
}

const size_t kChunks[] = {64, 192, 4096, 4u << 20};

std::vector<std::string> fixture_files() {
  std::vector<std::string> out;
  for (const char* c : {"a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"})
    for (const char* f : {"state_dict.bin", "compression_state_dict.bin"})
      out.push_back(t::fixture_dir(c) + "/" + f);
  out.push_back(t::fixture_dir("e_encodec_reflect") + "/training_checkpoint_lm.th");
  return out;
}

// A source whose reads fail from `fail_at` on (a file that shrank under the reader).
class FailingSource final : public ByteSource {
 public:
  FailingSource(std::vector<uint8_t> b, uint64_t fail_at) : inner_(std::move(b), "failing.bin"), fail_at_(fail_at) {}
  uint64_t size() const noexcept override { return inner_.size(); }
  std::span<const uint8_t> bytes() const noexcept override { return inner_.bytes(); }
  const std::string& name() const noexcept override { return inner_.name(); }
  bool copy_out(uint64_t off, std::span<uint8_t> out) const noexcept override {
    if (off + out.size() > fail_at_) return false;
    return inner_.copy_out(off, out);
  }

 private:
  MemorySource inner_;
  uint64_t fail_at_;
};

}  // namespace

TEST(BytePass, CountsMatchPythonTorchAtEveryReadSize) {
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(t::python_torch_available(), "python3 torch not available");
  t::TempDir tmp("byte-pass-python");
  const std::string file = tmp.file("placed.pt");
  auto r = t::run_python(kMakeFile, {file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, Expected> expected;
  std::istringstream lines(r.out);
  std::string name;
  Expected e{};
  while (lines >> name >> e.nan >> e.inf >> e.zero >> e.first_nan >> e.first_inf >> e.numel) expected[name] = e;
  ASSERT_EQ(expected.size(), 6u) << r.out;

  auto mapped = MappedFile::open(file);
  ASSERT_TRUE(mapped) << mapped.error().message;
  for (size_t chunk : kChunks) {
    BytePass pass;
    Route s = streamed_route(*mapped.value(), chunk, &pass);
    ASSERT_TRUE(s.ck) << chunk;
    EXPECT_FALSE(pass.read_failed);
    EXPECT_EQ(pass.records_verified, s.ck->records.size()) << "every record is stored and distinct";
    EXPECT_FALSE(s.findings.has_code("MG-ZIP-CRC")) << chunk;
    size_t seen = 0;
    for (const auto& st : s.scan.tensors) {
      auto it = expected.find(st.name);
      if (it == expected.end()) continue;
      ++seen;
      const Expected& x = it->second;
      EXPECT_EQ(st.counts.elements, x.numel) << st.name << " chunk " << chunk;
      EXPECT_EQ(st.counts.nan, x.nan) << st.name << " chunk " << chunk;
      EXPECT_EQ(st.counts.inf, x.inf) << st.name << " chunk " << chunk;
      EXPECT_EQ(st.counts.zero, x.zero) << st.name << " chunk " << chunk;
      EXPECT_EQ(st.counts.first_nan ? static_cast<int64_t>(*st.counts.first_nan) : -1, x.first_nan)
          << st.name << " chunk " << chunk;
      EXPECT_EQ(st.counts.first_inf ? static_cast<int64_t>(*st.counts.first_inf) : -1, x.first_inf)
          << st.name << " chunk " << chunk;
      // The strided view is not the pass's (it is walked by scan_weights); every contiguous one is.
      const bool by_pass = pass.counts.at(st.tensor).has_value();
      EXPECT_EQ(by_pass, st.name != "view") << st.name;
    }
    EXPECT_EQ(seen, expected.size());
    expect_same(mapped_route(*mapped.value()), s, "placed.pt chunk " + std::to_string(chunk));
  }
}

TEST(BytePass, SameFindingsAsTheMappedRouteOnEveryFixture) {
  for (const auto& path : fixture_files()) {
    auto mapped = MappedFile::open(path);
    ASSERT_TRUE(mapped) << path;
    for (size_t chunk : kChunks)
      for (unsigned threads : {1u, 2u, 3u})
        expect_same(mapped_route(*mapped.value()), streamed_route(*mapped.value(), chunk, nullptr, threads),
                    path + " chunk " + std::to_string(chunk) + " threads " + std::to_string(threads));
  }
}

TEST(BytePass, SameFindingsOnLegacyFiles) {
  // torch-written legacy (pre-1.6) files: storages follow the pickle, no CRCs; the scan must agree.
  size_t checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(t::corpus_dir() + "/fuzz/legacy")) {
    MemorySource src(t::read_file(e.path().string()), e.path().string());
    Route a = mapped_route(src);
    if (!a.ck) continue;
    ++checked;
    for (size_t chunk : kChunks)
      for (unsigned threads : {1u, 2u})
        expect_same(a, streamed_route(src, chunk, nullptr, threads), e.path().string());
  }
  EXPECT_GE(checked, 3u);
}

TEST(BytePass, SameFindingsOnCorruptedCopies) {
  const std::string path = t::fixture_dir("a_small_like") + "/state_dict.bin";
  const std::vector<uint8_t> original = t::read_file(path);
  MemorySource clean(original, path);
  Route base = mapped_route(clean);
  ASSERT_TRUE(base.ck);
  // Corrupt data records (CRC mismatches) and plant float16 NaN / Inf bit patterns in tensors.
  std::vector<std::vector<uint8_t>> variants;
  for (const auto& rec : base.ck->records) {
    if (rec.name.rfind("data/", 0) != 0 || rec.size < 8) continue;
    auto flip = original;
    flip[rec.data_offset + rec.size / 2] ^= 0x10;  // one bit in one record
    variants.push_back(std::move(flip));
    auto nan = original;
    nan[rec.data_offset] = 0x00;
    nan[rec.data_offset + 1] = 0x7e;  // float16 NaN in the first element
    nan[rec.data_offset + rec.size - 2] = 0x00;
    nan[rec.data_offset + rec.size - 1] = 0x7c;  // float16 +Inf in the last
    variants.push_back(std::move(nan));
    if (variants.size() >= 12) break;
  }
  ASSERT_GE(variants.size(), 4u);
  for (size_t i = 0; i < variants.size(); ++i) {
    MemorySource src(variants[i], path);
    Route a = mapped_route(src);
    EXPECT_TRUE(a.findings.has_code("MG-ZIP-CRC")) << "variant " << i;
    for (size_t chunk : kChunks)
      for (unsigned threads : {1u, 2u})
        expect_same(a, streamed_route(src, chunk, nullptr, threads), "variant " + std::to_string(i));
  }
}

TEST(BytePass, AFailedReadIsAFindingAndLeavesTheScanToNobody) {
  const std::string path = t::fixture_dir("a_small_like") + "/state_dict.bin";
  auto bytes = t::read_file(path);
  const uint64_t fail_at = bytes.size() / 2;
  FailingSource src(bytes, fail_at);
  Findings findings;
  ReadOptions ro;
  ro.verify_crc = false;
  auto ck = read_checkpoint(src, Limits{}, ro, findings);
  ASSERT_TRUE(ck);
  BytePassOptions bo;
  bo.chunk_bytes = 4096;
  BytePass pass = byte_pass(src, ck.value(), bo, findings);
  EXPECT_TRUE(pass.read_failed);
  ASSERT_TRUE(findings.has_code("MG-IO-READ"));
  for (const auto& f : findings.items())
    if (f.code == "MG-IO-READ") {
      ASSERT_TRUE(f.offset.has_value());
      EXPECT_LE(*f.offset, fail_at);
      EXPECT_GT(*f.offset + 4096, fail_at) << "the offset names the read that failed";
    }
  for (const auto& c : pass.counts) EXPECT_FALSE(c.has_value());
}

TEST(BytePass, MappedFileReadsTheSameBytesAsItsMapping) {
  const std::string path = t::fixture_dir("c_stereo_like") + "/state_dict.bin";
  auto mapped = MappedFile::open(path);
  ASSERT_TRUE(mapped);
  const auto& src = *mapped.value();
  std::vector<uint8_t> buf(777);
  for (uint64_t off : {uint64_t{0}, uint64_t{1}, src.size() / 3, src.size() - 777}) {
    ASSERT_TRUE(src.copy_out(off, buf)) << off;
    EXPECT_TRUE(std::equal(buf.begin(), buf.end(), src.bytes().begin() + static_cast<std::ptrdiff_t>(off))) << off;
  }
  EXPECT_FALSE(src.copy_out(src.size() - 10, buf)) << "past the end";
  EXPECT_TRUE(src.copy_out(src.size(), std::span<uint8_t>()));
}
