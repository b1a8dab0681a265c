// libtorch suites on the benchmark model: model build (file → ready LM + EnCodec), one LM decode step
// (batch 2 for classifier-free guidance; fp32 and bf16), EnCodec decode of 1 s of codes.
// Threads: $MGCHECK_BENCH_THREADS (default 2) for torch intra-op and OpenBLAS; recorded in the context.
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <memory>
#include <optional>

#include "bench_env.h"
#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/xpcfg.h"
#include "mgcheck/model/encodec.h"
#include "mgcheck/model/lm.h"
#include "mgcheck/model/weights.h"

namespace {

using namespace mgcheck;

struct Loaded {
  std::unique_ptr<format::MappedFile> lm_src, comp_src;
  std::optional<format::Checkpoint> lm_ck, comp_ck;
  format::LmConfig lm_cfg;
  format::CompressionConfig comp_cfg;
};

bool load(Loaded& out, bool verify_crc) {
  format::Findings f;
  format::ReadOptions ro;
  ro.verify_crc = verify_crc;
  for (int which = 0; which < 2; ++which) {
    auto src = format::MappedFile::open(which == 0 ? bench::lm_file() : bench::compression_file());
    if (!src) return false;
    auto ck = format::read_checkpoint(**src, format::Limits{}, ro, f);
    if (!ck) return false;
    format::ValueId id = ck->pickle.arena.dict_get(ck->pickle.root, "xp.cfg");
    if (!ck->pickle.arena.is_string(id)) return false;
    auto cfg = format::XpCfg::parse(ck->pickle.arena[id].s, "xp.cfg");
    if (!cfg) return false;
    if (which == 0) {
      auto c = format::lm_config_from_xpcfg(*cfg, f);
      if (!c) return false;
      out.lm_cfg = *c;
      out.lm_src = std::move(src).value();
      out.lm_ck = std::move(ck).value();
    } else {
      auto c = format::compression_config_from_xpcfg(*cfg, f);
      if (!c) return false;
      out.comp_cfg = *c;
      out.comp_src = std::move(src).value();
      out.comp_ck = std::move(ck).value();
    }
  }
  return true;
}

std::optional<model::LmModel> build_lm(Loaded& l, torch::Dtype dtype) {
  format::Findings f;
  model::WeightMap w(*l.lm_ck, "best_state");
  model::LmOptions o;
  o.dtype = dtype;
  auto m = model::LmModel::build(l.lm_cfg, w, o, f);
  if (!m) return std::nullopt;
  return std::move(m).value();
}

std::optional<model::Encodec> build_encodec(Loaded& l) {
  format::Findings f;
  model::WeightMap w(*l.comp_ck, "best_state");
  auto m = model::Encodec::build(l.comp_cfg, w, model::EncodecOptions{}, f);
  if (!m) return std::nullopt;
  return std::move(m).value();
}

// File → ready-to-generate LM (fp32) and EnCodec: map, strict read with CRCs, configs, build and load.
void BM_ModelBuild(benchmark::State& state) {
  for (auto _ : state) {
    Loaded l;
    if (!load(l, true)) {
      state.SkipWithError("cannot read the benchmark model");
      return;
    }
    auto lm = build_lm(l, torch::kFloat32);
    auto ec = build_encodec(l);
    if (!lm || !ec) state.SkipWithError("build failed");
    benchmark::DoNotOptimize(lm.has_value());
  }
  state.SetBytesProcessed(static_cast<int64_t>(
      state.iterations() * (bench::file_bytes(bench::lm_file()) + bench::file_bytes(bench::compression_file()))));
}
BENCHMARK(BM_ModelBuild)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_DecodeStep(benchmark::State& state) {
  const torch::Dtype dtype = state.range(0) == 0 ? torch::kFloat32 : torch::kBFloat16;
  const int64_t B = state.range(1);
  Loaded l;
  if (!load(l, false)) {
    state.SkipWithError("cannot read the benchmark model");
    return;
  }
  auto lm = build_lm(l, dtype);
  if (!lm) {
    state.SkipWithError("LM build failed");
    return;
  }
  torch::InferenceMode im;
  auto hidden = torch::randn({B, 16, 768}).to(dtype);
  auto mask = torch::ones({B, 16}, torch::kLong);
  model::ConditionList conds = {{"description", lm->t5_condition("description", hidden, mask)}};
  const int64_t max_steps = 1500;  // 30 s at 50 Hz: the cache a real generation allocates
  auto stream = lm->begin_stream(conds, B, max_steps);
  auto tokens = torch::randint(0, l.lm_cfg.card, {B, l.lm_cfg.n_q, 1}, torch::kLong);
  for (auto _ : state) {
    if (stream.length >= max_steps - 1) {
      state.PauseTiming();
      stream = lm->begin_stream(conds, B, max_steps);
      state.ResumeTiming();
    }
    auto logits = lm->step(stream, tokens);
    benchmark::DoNotOptimize(logits.data_ptr());
  }
  state.SetItemsProcessed(state.iterations());  // steps/s
  state.SetLabel(dtype == torch::kFloat32 ? "fp32" : "bf16");
}
BENCHMARK(BM_DecodeStep)
    ->Args({0, 2})
    ->Args({1, 2})
    ->Args({0, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

void BM_EncodecDecode1s(benchmark::State& state) {
  Loaded l;
  if (!load(l, false)) {
    state.SkipWithError("cannot read the benchmark model");
    return;
  }
  auto ec = build_encodec(l);
  if (!ec) {
    state.SkipWithError("EnCodec build failed");
    return;
  }
  torch::InferenceMode im;
  auto codes = torch::randint(0, ec->cardinality(), {1, ec->num_codebooks(), ec->frame_rate()}, torch::kLong);
  for (auto _ : state) {
    auto audio = ec->decode(codes);
    benchmark::DoNotOptimize(audio.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * ec->sample_rate());  // samples/s
}
BENCHMARK(BM_EncodecDecode1s)->Unit(benchmark::kMillisecond)->UseRealTime();

// How libtorch's CPU kernels stream a weight matrix for a batch-2 decode step: the same y = x W^T on 48
// distinct [4096, 1024] fp32 matrices (805 MB, far beyond the caches), by four routes. Bytes/s here is
// weight bytes read per second: compare with the machine's memory bandwidth.
void BM_LinearBatch2(benchmark::State& state) {
  const int route = static_cast<int>(state.range(0));
  const torch::Dtype dtype = route == 3 ? torch::kBFloat16 : torch::kFloat32;
  torch::InferenceMode im;
  std::vector<torch::Tensor> ws;
  for (int i = 0; i < 48; ++i) ws.push_back(torch::randn({4096, 1024}).to(dtype));
  auto x = torch::randn({2, 1024}).to(dtype);
  for (auto _ : state) {
    for (const auto& w : ws) {
      torch::Tensor y;
      switch (route) {
        case 0: y = torch::nn::functional::linear(x, w); break;            // addmm: sgemm, packs W
        case 1: y = torch::stack({torch::mv(w, x[0]), torch::mv(w, x[1])}); break;  // sgemv per row
        case 2: y = torch::matmul(w, x.t()).t(); break;                    // sgemm with N = 2
        default: y = torch::nn::functional::linear(x, w); break;           // bf16 (oneDNN)
      }
      benchmark::DoNotOptimize(y.data_ptr());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 48 * 4096 * 1024 *
                          static_cast<int64_t>(dtype == torch::kFloat32 ? 4 : 2));
  static const char* names[] = {"fp32 linear (addmm)", "fp32 2x mv (gemv)", "fp32 W @ x^T", "bf16 linear"};
  state.SetLabel(names[route]);
}
BENCHMARK(BM_LinearBatch2)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* t = std::getenv("MGCHECK_BENCH_THREADS");
  const int threads = t ? std::atoi(t) : 2;
  const std::string threads_desc = model::configure_threads(threads, threads);
  for (const auto& [k, v] : bench::machine_context()) benchmark::AddCustomContext(k, v);
  benchmark::AddCustomContext("mgcheck_libtorch_version", TORCH_VERSION);
  benchmark::AddCustomContext("mgcheck_threads", threads_desc);
  benchmark::AddCustomContext("mgcheck_torch_intra_op_threads", std::to_string(at::get_num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
