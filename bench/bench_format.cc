// Per-layer suites of the format reader on the benchmark model's LM file (warm page cache): zip
// directory, pickle machine, CRC-32 (libdeflate as used, zlib for comparison), SHA-256 (quick hashes each
// file), NaN/Inf scan kernel, the whole strict read and the weights scan, plus the floors (memory read of
// the mapping, read(2) into a buffer).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <future>
#include <memory>
#include <vector>

#include "bench_env.h"
#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/container.h"
#include "mgcheck/format/pickle.h"
#include "mgcheck/format/weights_scan.h"
#include "mgcheck/harness/file_info.h"

namespace {

using namespace mgcheck::format;

// The LM file, mapped once and faulted in (warm), shared by every benchmark.
const MappedFile& lm() {
  static std::unique_ptr<MappedFile> f = [] {
    auto m = MappedFile::open(mgcheck::bench::lm_file());
    if (!m) {
      std::fprintf(stderr, "cannot open %s: run bench/make-model first (or set MGCHECK_BENCH_MODEL)\n",
                   mgcheck::bench::lm_file().c_str());
      std::exit(2);
    }
    auto p = std::move(m).value();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < p->size(); i += 4096) sink = sink + p->bytes()[i];
    return p;
  }();
  return *f;
}

void BM_ZipDirectory(benchmark::State& state) {
  ZipOptions zo;
  zo.verify_crc = false;
  size_t records = 0;
  for (auto _ : state) {
    Findings findings;
    auto z = read_zip(lm(), Limits{}, zo, findings);
    if (!z) state.SkipWithError("read_zip failed");
    records = z ? z->records.size() : 0;
    benchmark::DoNotOptimize(records);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records));
  state.counters["records"] = static_cast<double>(records);
}
BENCHMARK(BM_ZipDirectory)->Unit(benchmark::kMicrosecond);

void BM_Pickle(benchmark::State& state) {
  Findings f0;
  ZipOptions zo;
  zo.verify_crc = false;
  auto z = read_zip(lm(), Limits{}, zo, f0);
  const ZipRecord* pkl = z ? z->find("data.pkl") : nullptr;
  if (!pkl) {
    state.SkipWithError("no data.pkl");
    return;
  }
  auto bytes = z->data(lm(), *pkl);
  uint64_t opcodes = 0;
  for (auto _ : state) {
    Findings findings;
    PickleOptions po;
    auto r = run_pickle(bytes, po, Limits{}, findings);
    if (!r) state.SkipWithError("run_pickle failed");
    opcodes = r ? r->opcodes : 0;
    benchmark::DoNotOptimize(opcodes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["opcodes"] = static_cast<double>(opcodes);
}
BENCHMARK(BM_Pickle)->Unit(benchmark::kMicrosecond);

void BM_Crc32_libdeflate(benchmark::State& state) {
  auto b = lm().bytes();
  for (auto _ : state) benchmark::DoNotOptimize(mgcheck::format::crc32(b));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}
BENCHMARK(BM_Crc32_libdeflate)->Unit(benchmark::kMillisecond);

void BM_Crc32_zlib(benchmark::State& state) {
  auto b = lm().bytes();
  for (auto _ : state) {
    uLong c = ::crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < b.size(); off += 1u << 30) {
      size_t n = std::min<size_t>(1u << 30, b.size() - off);
      c = ::crc32(c, b.data() + off, static_cast<uInt>(n));
    }
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}
BENCHMARK(BM_Crc32_zlib)->Unit(benchmark::kMillisecond);

void BM_Sha256(benchmark::State& state) {
  auto b = lm().bytes();
  for (auto _ : state) benchmark::DoNotOptimize(mgcheck::harness::sha256_hex(b));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}
BENCHMARK(BM_Sha256)->Unit(benchmark::kMillisecond);

void BM_ScanFloat16Kernel(benchmark::State& state) {
  auto b = lm().bytes();
  b = b.first(b.size() & ~size_t{1});
  for (auto _ : state) {
    FloatCounts c;
    scan_float_bytes(DType::float16, b, c);
    benchmark::DoNotOptimize(c.nan);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}
BENCHMARK(BM_ScanFloat16Kernel)->Unit(benchmark::kMillisecond);

// Floor 1: every byte of the (warm) mapping loaded once, 8 bytes at a time.
void BM_MemoryRead(benchmark::State& state) {
  auto b = lm().bytes();
  for (auto _ : state) {
    const uint64_t* p = reinterpret_cast<const uint64_t*>(b.data());
    size_t n = b.size() / 8;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      a0 ^= p[i];
      a1 ^= p[i + 1];
      a2 ^= p[i + 2];
      a3 ^= p[i + 3];
    }
    benchmark::DoNotOptimize(a0 ^ a1 ^ a2 ^ a3);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}
BENCHMARK(BM_MemoryRead)->Unit(benchmark::kMillisecond);

// Floor 2: read(2) of the whole (warm) file into a 1 MiB buffer (page cache → user copy).
void BM_PlainRead(benchmark::State& state) {
  std::vector<uint8_t> buf(1u << 20);
  uint64_t total = 0;
  for (auto _ : state) {
    int fd = ::open(mgcheck::bench::lm_file().c_str(), O_RDONLY | O_CLOEXEC);
    total = 0;
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) total += static_cast<uint64_t>(n);
    ::close(fd);
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * total));
}
BENCHMARK(BM_PlainRead)->Unit(benchmark::kMillisecond);

void BM_ReadCheckpoint(benchmark::State& state) {
  ReadOptions ro;
  ro.verify_crc = state.range(0) != 0;
  for (auto _ : state) {
    Findings findings;
    auto ck = read_checkpoint(lm(), Limits{}, ro, findings);
    if (!ck) state.SkipWithError("read_checkpoint failed");
    benchmark::DoNotOptimize(ck.ok());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * lm().size()));
  state.SetLabel(ro.verify_crc ? "with CRC" : "no CRC");
}
BENCHMARK(BM_ReadCheckpoint)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_ScanWeights(benchmark::State& state) {
  Findings f0;
  ReadOptions ro;
  ro.verify_crc = false;
  auto ck = read_checkpoint(lm(), Limits{}, ro, f0);
  if (!ck) {
    state.SkipWithError("read_checkpoint failed");
    return;
  }
  uint64_t scanned = 0;
  for (auto _ : state) {
    Findings findings;
    auto s = scan_weights(*ck, WeightsScanOptions{}, findings);
    scanned = s.bytes_scanned;
    benchmark::DoNotOptimize(scanned);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * scanned));
}
BENCHMARK(BM_ScanWeights)->Unit(benchmark::kMillisecond);

// quick's per-file work as it is sequenced today (strict read with CRCs, weights scan, SHA-256), against
// the proposal of hashing on a second thread while the checks run (the machine has 2 cores; SHA-256 is
// the slowest pass and needs nothing from the others).
void read_scan(const MappedFile& f) {
  Findings findings;
  auto ck = read_checkpoint(f, Limits{}, ReadOptions{}, findings);
  if (ck) {
    auto s = scan_weights(*ck, WeightsScanOptions{}, findings);
    benchmark::DoNotOptimize(s.bytes_scanned);
  }
}
void BM_QuickFileWork_Sequential(benchmark::State& state) {
  for (auto _ : state) {
    read_scan(lm());
    benchmark::DoNotOptimize(mgcheck::harness::sha256_hex(lm().bytes()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * lm().size()));
}
BENCHMARK(BM_QuickFileWork_Sequential)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_QuickFileWork_ShaThread(benchmark::State& state) {
  for (auto _ : state) {
    auto sha = std::async(std::launch::async, [] { return mgcheck::harness::sha256_hex(lm().bytes()); });
    read_scan(lm());
    benchmark::DoNotOptimize(sha.get());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * lm().size()));
}
BENCHMARK(BM_QuickFileWork_ShaThread)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const auto& [k, v] : mgcheck::bench::machine_context()) benchmark::AddCustomContext(k, v);
  benchmark::AddCustomContext("mgcheck_file", mgcheck::bench::lm_file());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
