// Resource bounds as tests: for every limit in Limits::table(), an input exactly at the limit is
// accepted and the same input with the limit one lower is rejected with the limit's code. Inputs are
// built here (writer + hand-assembled pickles) with sizes and counts known by construction, not measured
// with the code under test. A counting global operator new checks that reading a small input never
// allocates more than a small multiple of its size plus a fixed budget.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../corpus/tools/pickle_bytes.h"
#include "../../corpus/tools/zip_layout.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/legacy.h"
#include "mgcheck/format/pickle.h"
#include "mgcheck/format/writer.h"
#include "mgcheck/format/xpcfg.h"
#include "test_support.h"

// --- a counting allocator for this test executable ----------------------------------------------------
// Not under AddressSanitizer: ASan owns operator new/delete (and frees memory allocated inside the runtime
// through them), so a header-prefixed replacement corrupts its bookkeeping. The budget tests skip there;
// the plain build runs them.
#if defined(__SANITIZE_ADDRESS__)
#define MGCHECK_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MGCHECK_UNDER_ASAN 1
#endif
#endif
#ifndef MGCHECK_UNDER_ASAN
#define MGCHECK_UNDER_ASAN 0
#endif
// Every allocation carries a 16-byte header with its size, so live and peak bytes are exact.
namespace {
std::atomic<uint64_t> g_live{0};
std::atomic<uint64_t> g_peak{0};
void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n + 16);
  if (p == nullptr) throw std::bad_alloc();
  *static_cast<std::size_t*>(p) = n;
  uint64_t now = g_live.fetch_add(n) + n;
  uint64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
  return static_cast<char*>(p) + 16;
}
void counted_free(void* q) noexcept {
  if (q == nullptr) return;
  void* p = static_cast<char*>(q) - 16;
  g_live.fetch_sub(*static_cast<std::size_t*>(p));
  std::free(p);
}
}  // namespace
#if !MGCHECK_UNDER_ASAN
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
#else
[[maybe_unused]] static auto* const kKeepCountingAllocator = &counted_alloc;
[[maybe_unused]] static auto* const kKeepCountingFree = &counted_free;
#endif

namespace mgcheck::format {
namespace {

using corpus::PickleBytes;
using Bytes = std::vector<uint8_t>;

Bytes f32(size_t n) {
  Bytes b(n * 4);
  for (size_t i = 0; i < n; ++i) {
    float v = static_cast<float>(i) * 0.5f;
    std::memcpy(b.data() + 4 * i, &v, 4);
  }
  return b;
}

// Three tensors in three storages: 12 + 4 + 2 elements, 48 + 16 + 8 = 72 storage bytes.
WValue three_tensors() {
  WDict d;
  d.emplace_back("w", make_tensor(DType::float32, {3, 4}, f32(12)));
  d.emplace_back("b", make_tensor(DType::float32, {4}, f32(4)));
  d.emplace_back("r", make_tensor(DType::float32, {1, 1, 1, 1, 1, 2}, f32(2)));
  return WValue(std::move(d));
}

Bytes write(const WValue& v) {
  auto r = write_torch_save(v, WriteOptions{});
  EXPECT_TRUE(r.ok());
  return r.ok() ? r.value() : Bytes{};
}

// read_checkpoint with one limit set; returns the findings (fatal error included).
Findings read_with(const Bytes& file, uint64_t Limits::*field, uint64_t value) {
  Limits limits;
  limits.*field = value;
  MemorySource src(file.data(), file.size(), "limits.pt");
  Findings f;
  auto ck = read_checkpoint(src, limits, ReadOptions{}, f);
  if (!ck && !f.has_code(ck.error().code)) f.push(ck.error());
  return f;
}

Findings pickle_with(const Bytes& pickle, uint64_t Limits::*field, uint64_t value) {
  Limits limits;
  limits.*field = value;
  Findings f;
  PickleOptions po;
  auto r = run_pickle(pickle, po, limits, f);
  if (!r) f.push(r.error());
  return f;
}

// The boundary: at `limit` nothing carries `code` (and, for a fully valid input, no error at all);
// at limit - 1 the finding is there.
void expect_boundary(const Findings& at, const Findings& past, const std::string& code, bool valid_input = true) {
  EXPECT_FALSE(at.has_code(code)) << code << " at the limit";
  if (valid_input) {
    for (const auto& f : at.items()) EXPECT_NE(f.severity, Severity::error) << f.code << ": " << f.message;
  }
  EXPECT_TRUE(past.has_code(code)) << code << " one past the limit";
}

// The limits this file has a boundary test for (one TEST each, named after the field).
const std::set<std::string> kTested = {
    "max_file_bytes", "max_records", "max_central_directory_bytes", "max_name_bytes", "max_pickle_bytes",
    "max_pickle_opcodes", "max_memo_entries", "max_nesting_depth", "max_string_bytes", "max_objects",
    "max_int_bytes", "max_pickle_memory_bytes", "max_tensors", "max_rank", "max_tensor_elements", "max_total_storage_bytes",
    "max_config_bytes", "max_config_nodes", "max_config_depth", "max_config_interpolation_hops",
    "max_config_string_bytes", "max_config_interpolation_steps", "max_config_interpolation_bytes", "max_findings"};

TEST(Limits, MaxFileBytes) {
  Bytes file = write(three_tensors());
  expect_boundary(read_with(file, &Limits::max_file_bytes, file.size()),
                  read_with(file, &Limits::max_file_bytes, file.size() - 1), "MG-IO-TOO-LARGE");
}

TEST(Limits, MaxRecords) {
  Bytes file = write(three_tensors());
  // data.pkl, byteorder, data/0..2, version: six records by construction (torch-save-format.md §2.1).
  ASSERT_EQ(corpus::zip_layout(file).entries.size(), 6u);
  expect_boundary(read_with(file, &Limits::max_records, 6), read_with(file, &Limits::max_records, 5),
                  "MG-ZIP-TOO-MANY-RECORDS");
}

TEST(Limits, MaxCentralDirectoryBytes) {
  Bytes file = write(three_tensors());
  uint64_t cd = corpus::zip_layout(file).cd_size;
  expect_boundary(read_with(file, &Limits::max_central_directory_bytes, cd),
                  read_with(file, &Limits::max_central_directory_bytes, cd - 1), "MG-ZIP-CD-TOO-LARGE");
}

TEST(Limits, MaxNameBytes) {
  Bytes file = write(three_tensors());
  size_t longest = 0;  // "archive/byteorder" and "archive/data.pkl": names inside the folder are shorter
  for (const auto& e : corpus::zip_layout(file).entries) longest = std::max(longest, e.name.size());
  ASSERT_EQ(longest, std::string("archive/byteorder").size());
  // The limit applies to the whole record name as stored.
  expect_boundary(read_with(file, &Limits::max_name_bytes, longest),
                  read_with(file, &Limits::max_name_bytes, longest - 1), "MG-ZIP-NAME-TOO-LONG");
}

TEST(Limits, MaxPickleBytesLegacy) {
  Bytes file = test::read_file(test::corpus_dir() + "/fuzz/legacy/small_sd.legacy");
  // The legacy stacked pickles: magic, protocol, sys_info, object, keys. Their lengths come from
  // Python's pickletools (an independent parser).
  auto r = test::run_python(
      "import pickletools, sys\n"
      "b = open(sys.argv[1], 'rb').read(); pos = 0; longest = 0\n"
      "for _ in range(5):\n"
      "    end = max(p for _, _, p in pickletools.genops(b[pos:])) + 1\n"
      "    longest = max(longest, end); pos += end\n"
      "print(longest)\n",
      {test::corpus_dir() + "/fuzz/legacy/small_sd.legacy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t longest = std::stoull(r.out);
  expect_boundary(read_with(file, &Limits::max_pickle_bytes, longest),
                  read_with(file, &Limits::max_pickle_bytes, longest - 1), "MG-IO-LEGACY-PICKLE-TOO-LARGE");
}

// max_pickle_bytes bounds data.pkl in the zip path too (checked before the pickle machine runs).
TEST(Limits, MaxPickleBytesZipDataPkl) {
  PickleBytes p;
  p.proto().empty_dict().stop();  // 5 bytes
  WriteOptions wo;
  wo.omit_records = {"data.pkl"};
  wo.extra_records.emplace_back("data.pkl", p.bytes);
  auto file = write_torch_save(WValue(WDict{}), wo);
  ASSERT_TRUE(file.ok());
  Findings past = read_with(file.value(), &Limits::max_pickle_bytes, p.bytes.size() - 1);
  EXPECT_TRUE(past.has_code("MG-PICKLE-LIMIT-SIZE"));
  Findings at = read_with(file.value(), &Limits::max_pickle_bytes, p.bytes.size());
  EXPECT_FALSE(at.has_code("MG-PICKLE-LIMIT-SIZE"));
}

TEST(Limits, MaxPickleOpcodes) {
  PickleBytes p;
  p.proto().none();
  for (int i = 0; i < 100; ++i) p.pop().none();
  p.stop();  // 1 + 1 + 200 + 1 = 203 opcodes
  expect_boundary(pickle_with(p.bytes, &Limits::max_pickle_opcodes, 203),
                  pickle_with(p.bytes, &Limits::max_pickle_opcodes, 202), "MG-PICKLE-LIMIT-OPCODES");
}

TEST(Limits, MaxMemoEntries) {
  PickleBytes p;
  p.proto();
  for (uint8_t i = 0; i < 50; ++i) p.none().binput(i).pop();
  p.none().stop();  // 50 memo entries
  expect_boundary(pickle_with(p.bytes, &Limits::max_memo_entries, 50),
                  pickle_with(p.bytes, &Limits::max_memo_entries, 49), "MG-PICKLE-LIMIT-MEMO");
}

TEST(Limits, MaxNestingDepthContainers) {
  PickleBytes p;
  p.proto();
  for (int i = 0; i < 10; ++i) p.empty_list();
  for (int i = 0; i < 9; ++i) p.append();
  p.stop();  // ten lists, each inside the previous one: depth 10
  expect_boundary(pickle_with(p.bytes, &Limits::max_nesting_depth, 10),
                  pickle_with(p.bytes, &Limits::max_nesting_depth, 9), "MG-PICKLE-LIMIT-DEPTH");
}

TEST(Limits, MaxNestingDepthMarks) {
  PickleBytes p;
  p.proto();
  for (int i = 0; i < 10; ++i) p.mark();
  for (int i = 0; i < 10; ++i) p.op('t');  // TUPLE closes one MARK frame: ten frames open at once
  p.stop();
  // The innermost tuples nest too, so only the MARK bound is checked here with a high container bound.
  Findings past = pickle_with(p.bytes, &Limits::max_nesting_depth, 9);
  EXPECT_TRUE(past.has_code("MG-PICKLE-LIMIT-DEPTH"));
  Findings at = pickle_with(p.bytes, &Limits::max_nesting_depth, 10);
  EXPECT_FALSE(at.has_code("MG-PICKLE-LIMIT-DEPTH"));
}

TEST(Limits, MaxStringBytes) {
  PickleBytes p;
  p.proto().str(std::string(1000, 's')).stop();
  expect_boundary(pickle_with(p.bytes, &Limits::max_string_bytes, 1000),
                  pickle_with(p.bytes, &Limits::max_string_bytes, 999), "MG-PICKLE-LIMIT-STRING");
  PickleBytes b;  // bytes too
  b.proto().op('B').le(1000, 4).raw(std::string(1000, 'b')).stop();
  expect_boundary(pickle_with(b.bytes, &Limits::max_string_bytes, 1000),
                  pickle_with(b.bytes, &Limits::max_string_bytes, 999), "MG-PICKLE-LIMIT-STRING");
}

TEST(Limits, MaxObjects) {
  // The exact count of values depends on the machine's bookkeeping; the contract is monotone: a limit
  // that admits the pickle admits it, one value less refuses it. Find the smallest admitting limit by
  // bisection and check that it is within the number of values the pickle can build (1 list + 100 ints).
  PickleBytes p;
  p.proto().empty_list().mark();
  for (int i = 0; i < 100; ++i) p.binint(i);
  p.appends().stop();
  uint64_t lo = 1, hi = 1000;
  ASSERT_FALSE(pickle_with(p.bytes, &Limits::max_objects, hi).has_code("MG-PICKLE-LIMIT-OBJECTS"));
  while (lo < hi) {
    uint64_t mid = (lo + hi) / 2;
    if (pickle_with(p.bytes, &Limits::max_objects, mid).has_code("MG-PICKLE-LIMIT-OBJECTS")) lo = mid + 1;
    else hi = mid;
  }
  EXPECT_GE(lo, 101u);
  EXPECT_LE(lo, 110u);  // a little bookkeeping (e.g. the MARK) at most
  expect_boundary(pickle_with(p.bytes, &Limits::max_objects, lo), pickle_with(p.bytes, &Limits::max_objects, lo - 1),
                  "MG-PICKLE-LIMIT-OBJECTS");
}

TEST(Limits, MaxIntBytes) {
  PickleBytes p;
  p.proto().op(0x8a).op(4).le(0x01020304, 4).stop();  // LONG1 with a 4-byte payload
  Findings at = pickle_with(p.bytes, &Limits::max_int_bytes, 4);
  Findings past = pickle_with(p.bytes, &Limits::max_int_bytes, 3);
  EXPECT_FALSE(at.has_code("MG-PICKLE-LIMIT-INT"));
  EXPECT_TRUE(past.has_code("MG-PICKLE-LIMIT-INT"));
}

TEST(Limits, MaxPickleMemoryBytes) {
  // The charge per value is bookkeeping (sizeof(Value) plus item-list and stack growth); the contract is
  // monotone: find the smallest admitting budget by bisection, check it is what 1 list + 1,000 ints can
  // plausibly need (between 40 and 200 bytes a value), then test at it and one byte under it.
  PickleBytes p;
  p.proto().empty_list().mark();
  for (int i = 0; i < 1000; ++i) p.binint(i);
  p.appends().stop();
  uint64_t lo = 1, hi = 1u << 20;
  ASSERT_FALSE(pickle_with(p.bytes, &Limits::max_pickle_memory_bytes, hi).has_code("MG-PICKLE-LIMIT-MEMORY"));
  while (lo < hi) {
    uint64_t mid = (lo + hi) / 2;
    if (pickle_with(p.bytes, &Limits::max_pickle_memory_bytes, mid).has_code("MG-PICKLE-LIMIT-MEMORY")) lo = mid + 1;
    else hi = mid;
  }
  EXPECT_GE(lo, 1001u * 40);
  EXPECT_LE(lo, 1001u * 200);
  expect_boundary(pickle_with(p.bytes, &Limits::max_pickle_memory_bytes, lo),
                  pickle_with(p.bytes, &Limits::max_pickle_memory_bytes, lo - 1), "MG-PICKLE-LIMIT-MEMORY");
}

TEST(Limits, MaxTensors) {
  Bytes file = write(three_tensors());
  expect_boundary(read_with(file, &Limits::max_tensors, 3), read_with(file, &Limits::max_tensors, 2),
                  "MG-TENSOR-LIMIT-COUNT");
}

// One tensor named through a DAG of shared lists: level 0 is the tensor, level i+1 = [level i, level i]
// (memo'd), and the root {'laughs': level `depth`, 'extra': the tensor if `extra`}. The tree walk names
// 2^depth paths under 'laughs' (+1 for 'extra'); the pickle itself holds one tensor and depth + 2 containers.
Bytes laughs_file(int depth, bool extra) {
  PickleBytes p;
  p.proto().tensor_v2("FloatStorage", "0", 16, 0, {16}, {1}).binput(0).pop();
  for (int i = 0; i < depth; ++i)
    p.mark().binget(static_cast<uint8_t>(i)).binget(static_cast<uint8_t>(i)).op('l').binput(static_cast<uint8_t>(i + 1)).pop();
  p.empty_dict().str("laughs").binget(static_cast<uint8_t>(depth)).setitem();
  if (extra) p.str("extra").binget(0).setitem();
  p.stop();
  WriteOptions wo;
  wo.omit_records = {"data.pkl"};
  wo.extra_records.emplace_back("data.pkl", p.bytes);
  wo.extra_records.emplace_back("data/0", f32(16));
  auto r = write_torch_save(WValue(WDict{}), wo);
  EXPECT_TRUE(r.ok());
  return r.ok() ? r.value() : Bytes{};
}

// max_tensors also bounds the paths the tree walk names (every path is listed by inspect and the schema),
// not only the tensors the pickle builds: 64 paths to one tensor pass at 64, not at 63, and 65 paths
// fail at 64.
TEST(Limits, MaxTensorsBoundsTheWalksPaths) {
  Bytes file = laughs_file(6, false);  // 2^6 = 64 paths
  {
    Limits l;
    l.max_tensors = 64;
    MemorySource src(file.data(), file.size(), "laughs.pt");
    Findings f;
    auto ck = read_checkpoint(src, l, ReadOptions{}, f);
    ASSERT_TRUE(ck.ok()) << ck.error().code;
    EXPECT_EQ(ck.value().named.size(), 64u);
    EXPECT_EQ(ck.value().tensors.size(), 1u);
    std::set<std::string> paths;
    for (const auto& n : ck.value().named) paths.insert(n.path);
    EXPECT_EQ(paths.size(), 64u);
    EXPECT_TRUE(paths.count("laughs/0/0/0/0/0/0"));
    EXPECT_TRUE(paths.count("laughs/1/1/1/1/1/1"));
  }
  expect_boundary(read_with(file, &Limits::max_tensors, 64), read_with(file, &Limits::max_tensors, 63),
                  "MG-TENSOR-LIMIT-WALK");
  Bytes more = laughs_file(6, true);  // 64 + 1 paths
  expect_boundary(read_with(more, &Limits::max_tensors, 65), read_with(more, &Limits::max_tensors, 64),
                  "MG-TENSOR-LIMIT-WALK");
  // One tensor in the pickle: the count limit itself is not what fires.
  EXPECT_FALSE(read_with(more, &Limits::max_tensors, 64).has_code("MG-TENSOR-LIMIT-COUNT"));
}

// The walk's paths and frames share max_pickle_memory_bytes with the pickle run: budgets under what
// the run needs get MG-PICKLE-LIMIT-MEMORY, budgets from there up to the run plus the walk get
// MG-TENSOR-LIMIT-WALK, and the smallest budget admitting both reads the file cleanly. Both edges are
// found by bisection (the charges are bookkeeping; the contract is monotone), and the walk's share is
// checked against what 2^8 paths of 22 characters and 2^9 frames can plausibly take.
TEST(Limits, MaxPickleMemoryBytesBoundsTheWalk) {
  Bytes file = laughs_file(8, false);  // 256 paths "laughs/i/i/i/i/i/i/i/i", 512 frames
  auto smallest = [&](const std::function<bool(const Findings&)>& refused) {
    uint64_t lo = 1, hi = 64u << 20;
    EXPECT_FALSE(refused(read_with(file, &Limits::max_pickle_memory_bytes, hi)));
    while (lo < hi) {
      uint64_t mid = (lo + hi) / 2;
      if (refused(read_with(file, &Limits::max_pickle_memory_bytes, mid))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const uint64_t run = smallest([](const Findings& f) { return f.has_code("MG-PICKLE-LIMIT-MEMORY"); });
  const uint64_t both = smallest([](const Findings& f) {
    return f.has_code("MG-PICKLE-LIMIT-MEMORY") || f.has_code("MG-TENSOR-LIMIT-WALK");
  });
  ASSERT_GT(both, run);
  const uint64_t walk = both - run;
  RecordProperty("pickle_run_bytes", std::to_string(run));
  RecordProperty("walk_bytes", std::to_string(walk));
  EXPECT_GE(walk, 512u * 32) << "512 frames of two strings each";
  EXPECT_LE(walk, 512u * 400) << "512 frames and 256 names";
  expect_boundary(read_with(file, &Limits::max_pickle_memory_bytes, both),
                  read_with(file, &Limits::max_pickle_memory_bytes, both - 1), "MG-TENSOR-LIMIT-WALK");
  // Just past the run's own need, the walk (not the run) is what is refused.
  Findings past = read_with(file, &Limits::max_pickle_memory_bytes, run);
  EXPECT_TRUE(past.has_code("MG-TENSOR-LIMIT-WALK"));
  EXPECT_FALSE(past.has_code("MG-PICKLE-LIMIT-MEMORY"));
}

TEST(Limits, MaxRank) {
  Bytes file = write(three_tensors());  // "r" has rank 6
  expect_boundary(read_with(file, &Limits::max_rank, 6), read_with(file, &Limits::max_rank, 5), "MG-TENSOR-RANK");
}

TEST(Limits, MaxTensorElements) {
  Bytes file = write(three_tensors());  // the largest tensor has 12 elements
  expect_boundary(read_with(file, &Limits::max_tensor_elements, 12),
                  read_with(file, &Limits::max_tensor_elements, 11), "MG-TENSOR-LIMIT-ELEMENTS");
}

TEST(Limits, MaxTotalStorageBytes) {
  Bytes file = write(three_tensors());  // 48 + 16 + 8 bytes
  expect_boundary(read_with(file, &Limits::max_total_storage_bytes, 72),
                  read_with(file, &Limits::max_total_storage_bytes, 71), "MG-TENSOR-LIMIT-STORAGE");
}

// --- xp.cfg budgets: XpCfg::parse, then reads, with one limit set ------------------------------------------

// Parses `yaml` with `field` = value and reads each of `reads` (in order) into one Findings; a parse error
// is added as a finding.
Findings config_with(const std::string& yaml, uint64_t Limits::*field, uint64_t value,
                     const std::vector<std::string>& reads = {}) {
  Limits lim;
  lim.*field = value;
  Findings f;
  auto cfg = XpCfg::parse(yaml, "xp.cfg", lim);
  if (!cfg.ok()) {
    f.push(cfg.error());
    return f;
  }
  for (const auto& r : reads) (void)cfg->get(r, f);
  return f;
}

TEST(Limits, MaxConfigBytes) {
  const std::string y = "a: 1\nb: 2\n";  // 10 bytes
  expect_boundary(config_with(y, &Limits::max_config_bytes, 10), config_with(y, &Limits::max_config_bytes, 9),
                  "MG-CONFIG-TOO-LARGE");
}

TEST(Limits, MaxConfigNodes) {
  const std::string y = "a: 1\nb: [2, 3]\n";  // root, a, b, 2, 3: five nodes
  expect_boundary(config_with(y, &Limits::max_config_nodes, 5), config_with(y, &Limits::max_config_nodes, 4),
                  "MG-CONFIG-TOO-LARGE");
}

TEST(Limits, MaxConfigDepth) {
  const std::string y = "a: [[[1]]]\n";  // the root mapping is depth 0, the lists 1-3, the scalar 1 depth 4
  expect_boundary(config_with(y, &Limits::max_config_depth, 4), config_with(y, &Limits::max_config_depth, 3),
                  "MG-CONFIG-TOO-LARGE");
}

TEST(Limits, MaxConfigInterpolationHops) {
  const std::string y = "v0: 1\nv1: ${v0}\nv2: ${v1}\nv3: ${v2}\n";  // reading v3 follows 3 references
  expect_boundary(config_with(y, &Limits::max_config_interpolation_hops, 3, {"v3"}),
                  config_with(y, &Limits::max_config_interpolation_hops, 2, {"v3"}), "MG-CONFIG-INTERPOLATION");
}

TEST(Limits, MaxConfigStringBytes) {
  const std::string y = "s: abcdefgh\nt: ${s}-\n";  // t builds "abcdefgh-": 9 bytes
  expect_boundary(config_with(y, &Limits::max_config_string_bytes, 9, {"t"}),
                  config_with(y, &Limits::max_config_string_bytes, 8, {"t"}), "MG-CONFIG-INTERPOLATION");
}

TEST(Limits, MaxConfigInterpolationSteps) {
  // Reading v3 resolves v3, v2, v1 and v0: 4 steps; read twice, 8. The budget is the document's, so the
  // second read is what crosses a budget of 7.
  const std::string y = "v0: 1\nv1: ${v0}\nv2: ${v1}\nv3: ${v2}\n";
  expect_boundary(config_with(y, &Limits::max_config_interpolation_steps, 8, {"v3", "v3"}),
                  config_with(y, &Limits::max_config_interpolation_steps, 7, {"v3", "v3"}), "MG-CONFIG-TOO-LARGE");
  Findings past = config_with(y, &Limits::max_config_interpolation_steps, 7, {"v3", "v3"});
  ASSERT_EQ(past.size(), 1u);
  EXPECT_EQ(past.items()[0].impact, Impact::unsafe);
}

TEST(Limits, MaxConfigInterpolationBytes) {
  // A plain string costs its length (8 per read of s); "${s}-" costs its text (5), s (8) and the 9 bytes
  // it builds: 22. Together 30.
  const std::string y = "s: abcdefgh\nt: ${s}-\n";
  expect_boundary(config_with(y, &Limits::max_config_interpolation_bytes, 30, {"s", "t"}),
                  config_with(y, &Limits::max_config_interpolation_bytes, 29, {"s", "t"}), "MG-CONFIG-TOO-LARGE");
}

TEST(Limits, MaxFindings) {
  Findings f;
  f.set_cap(3);
  for (int i = 0; i < 3; ++i) f.push(make_error("MG-IO-TEST", "x", "y"));
  EXPECT_EQ(f.size(), 3u);
  EXPECT_EQ(f.dropped(), 0u);
  f.push(make_error("MG-IO-TEST", "x", "y"));
  EXPECT_EQ(f.size(), 3u);
  EXPECT_EQ(f.dropped(), 1u);
  // A flood cannot hide the verdict: the first unsafe finding is kept past the cap.
  f.push(make_unsafe("MG-PICKLE-UNSAFE-GLOBAL", "x", "y"));
  EXPECT_TRUE(f.has_unsafe());
}

// A limit added to the table without a boundary test here fails this test.
TEST(Limits, EveryLimitInTheTableIsTested) {
  for (const auto& e : Limits::table()) EXPECT_TRUE(kTested.count(e.name)) << "no boundary test for " << e.name;
  EXPECT_EQ(kTested.size(), Limits::table().size());
}

// --- allocation budget ---------------------------------------------------------------------------------

// Peak bytes allocated while reading `file` (beyond what was live before).
uint64_t peak_while_reading(const Bytes& file) {
  MemorySource src(file.data(), file.size(), "budget.pt");
  Findings f;
  uint64_t base = g_live.load();
  g_peak.store(base);
  {
    auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, f);
    (void)ck;
  }
  return g_peak.load() - base;
}

constexpr uint64_t kFixedBudget = 4ull << 20;  // tables, findings, a few strings
constexpr uint64_t kPerByte = 64;              // value tree nodes per pickle byte, generously

TEST(AllocationBudget, ValidAndMutatedSmallFiles) {
  if (MGCHECK_UNDER_ASAN) GTEST_SKIP() << "AddressSanitizer owns operator new; the plain build runs this test";
  Bytes file = write(three_tensors());
  EXPECT_LE(peak_while_reading(file), kPerByte * file.size() + kFixedBudget);
  std::mt19937_64 rng(5);
  uint64_t worst = 0;
  for (int i = 0; i < 2000; ++i) {
    Bytes m = file;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) m[rng() % m.size()] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) m.resize(rng() % m.size());
    uint64_t peak = peak_while_reading(m);
    worst = std::max(worst, peak);
    ASSERT_LE(peak, kPerByte * file.size() + kFixedBudget) << "mutation " << i;
  }
  std::printf("worst peak over 2000 mutations of a %zu-byte file: %llu bytes\n", file.size(),
              static_cast<unsigned long long>(worst));
}

TEST(AllocationBudget, HostilePickles) {
  if (MGCHECK_UNDER_ASAN) GTEST_SKIP() << "AddressSanitizer owns operator new; the plain build runs this test";
  std::vector<Bytes> pickles;
  {
    PickleBytes p;  // a memo index far beyond anything stored
    p.proto().none().long_binput(0xFFFFFFF0).stop();
    pickles.push_back(p.bytes);
  }
  {
    PickleBytes p;  // a string length that lies
    p.proto().op('X').le(0xFFFFFFFF, 4).raw("abc");
    pickles.push_back(p.bytes);
  }
  {
    PickleBytes p;  // BINBYTES8 / BYTEARRAY8 lengths of 2^63
    p.proto(5).op(0x8e).le(uint64_t{1} << 63, 8);
    pickles.push_back(p.bytes);
    PickleBytes q;
    q.proto(5).op(0x96).le(uint64_t{1} << 63, 8);
    pickles.push_back(q.bytes);
  }
  {
    PickleBytes p;  // a FRAME that claims 2^62 bytes
    p.proto(4).op(0x95).le(uint64_t{1} << 62, 8).none().stop();
    pickles.push_back(p.bytes);
  }
  {
    PickleBytes p;  // 4000 nested MARKs
    p.proto();
    for (int i = 0; i < 4000; ++i) p.mark();
    pickles.push_back(p.bytes);
  }
  {
    PickleBytes p;  // a set() over a list that shares one list 200 times
    p.proto().empty_list().binput(0).pop().global("builtins", "set").mark();
    p.empty_list().mark();
    for (int i = 0; i < 200; ++i) p.binget(0);
    p.appends().tuple1().reduce().stop();
    pickles.push_back(p.bytes);
  }
  {
    PickleBytes p;  // ten million cheap opcodes: None, POP, None, POP, ... (every None is a value)
    p.proto();
    for (int i = 0; i < 5000000; ++i) p.none().pop();
    p.none().stop();
    pickles.push_back(p.bytes);
  }
  {
    PickleBytes p;  // a list of four million ints, appended in batches of 1,000 as pickle writes it
    p.proto().empty_list();
    for (int b = 0; b < 4000; ++b) {
      p.mark();
      for (int i = 0; i < 1000; ++i) p.binint(b * 1000 + i);
      p.appends();
    }
    p.stop();
    pickles.push_back(p.bytes);
  }
  for (size_t i = 0; i < pickles.size(); ++i) {
    Findings f;
    uint64_t base = g_live.load();
    g_peak.store(base);
    {
      auto r = run_pickle(pickles[i], PickleOptions{}, Limits{}, f);
      (void)r;
    }
    uint64_t peak = g_peak.load() - base;
    EXPECT_LE(peak, kPerByte * pickles[i].size() + kFixedBudget) << "pickle " << i;
    // Whatever the input, the machine's heap stays within max_pickle_memory_bytes (plus fixed tables).
    EXPECT_LE(peak, Limits{}.max_pickle_memory_bytes + kFixedBudget) << "pickle " << i;
  }
  // The two floods are refused by the memory budget, not by running out of memory.
  for (size_t i = pickles.size() - 2; i < pickles.size(); ++i) {
    Findings f;
    auto r = run_pickle(pickles[i], PickleOptions{}, Limits{}, f);
    ASSERT_FALSE(r.ok()) << "pickle " << i;
    EXPECT_EQ(r.error().code, "MG-PICKLE-LIMIT-MEMORY") << "pickle " << i;
  }
}

}  // namespace
}  // namespace mgcheck::format
