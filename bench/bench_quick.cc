// `quick` end to end (resolution, both files read strictly with every CRC, schema, xp.cfg, inventory,
// weights scan, SHA-256) on the benchmark model, warm page cache.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include "bench_env.h"
#include "mgcheck/harness/quick.h"

namespace {

uint64_t file_bytes(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void BM_Quick(benchmark::State& state) {
  const std::string dir = mgcheck::bench::model_dir();
  const uint64_t bytes = file_bytes(mgcheck::bench::lm_file()) + file_bytes(mgcheck::bench::compression_file());
  mgcheck::harness::QuickOptions opts;
  opts.verify_crc = state.range(0) != 0;
  bool errors = false;
  for (auto _ : state) {
    mgcheck::harness::Report report;
    report.command = "quick";
    auto q = mgcheck::harness::run_quick(dir, opts, report);
    errors = report.findings.has_errors() || !q.lm_ready() || !q.compression_ready();
    benchmark::DoNotOptimize(q.resolved);
  }
  if (errors) state.SkipWithError("quick reported errors on the benchmark model");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetLabel(opts.verify_crc ? "with CRC" : "no CRC");
  state.counters["peak_rss_MB"] = static_cast<double>(mgcheck::bench::peak_rss_kb()) / 1024.0;
}
BENCHMARK(BM_Quick)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const auto& [k, v] : mgcheck::bench::machine_context()) benchmark::AddCustomContext(k, v);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
