// LMModel.generate port against AudioCraft's recorded generations (corpus/audiocraft-tiny/*/refs.pt):
// greedy codes token for token, the KV-cached CFG step logits, decoded audio through the EnCodec port;
// sampling properties; bf16 error; and (MGCHECK_LM_BENCH=1) the musicgen-small-shaped decode-step time.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/xpcfg.h"
#include "mgcheck/model/encodec.h"
#include "mgcheck/model/generate.h"
#include "mgcheck/model/lm.h"
#include "mgcheck/model/weights.h"
#include "test_support.h"

namespace mgcheck {
namespace {

using model::GenerateParams;
using model::LmModel;

struct LoadedFile {
  std::unique_ptr<format::MappedFile> source;
  format::Checkpoint ckpt;
};

std::unique_ptr<LoadedFile> load_file(const std::string& path) {
  auto src = format::MappedFile::open(path);
  if (!src) return nullptr;
  auto out = std::make_unique<LoadedFile>();
  out->source = std::move(src.value());
  format::Findings findings;
  auto ck = format::read_checkpoint(*out->source, format::Limits{}, format::ReadOptions{}, findings);
  if (!ck) return nullptr;
  out->ckpt = std::move(ck.value());
  return out;
}

std::map<std::string, torch::Tensor> load_refs(const std::string& dir) {
  std::map<std::string, torch::Tensor> out;
  auto f = load_file(dir + "/refs.pt");
  if (!f) return out;
  for (const auto& n : f->ckpt.named)
    if (n.path.rfind("tensors/", 0) == 0) out[n.path.substr(8)] = model::view_as_torch(f->ckpt.tensors[n.tensor]).clone();
  return out;
}

std::optional<format::XpCfg> xp_cfg(const format::Checkpoint& ckpt) {
  const auto& arena = ckpt.pickle.arena;
  auto id = arena.dict_get(ckpt.pickle.root, "xp.cfg");
  if (!arena.is_string(id)) return std::nullopt;
  auto cfg = format::XpCfg::parse(arena[id].s, ckpt.file);
  if (!cfg) return std::nullopt;
  return std::move(cfg.value());
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct Case {
  std::unique_ptr<LoadedFile> lm_file, enc_file;
  std::map<std::string, torch::Tensor> refs;
  std::optional<LmModel> lm;
  std::optional<model::Encodec> encodec;
  format::Findings findings;
};

std::unique_ptr<Case> open_case(const std::string& name, torch::Dtype dtype = torch::kFloat32) {
  auto c = std::make_unique<Case>();
  const auto dir = test::fixture_dir(name);
  c->lm_file = load_file(dir + "/state_dict.bin");
  if (!c->lm_file) return nullptr;
  c->refs = load_refs(dir);
  auto cfg = xp_cfg(c->lm_file->ckpt);
  if (!cfg) return nullptr;
  auto lm_cfg = format::lm_config_from_xpcfg(*cfg, c->findings);
  if (!lm_cfg) return nullptr;
  model::WeightMap weights(c->lm_file->ckpt, "best_state");
  model::LmOptions opt;
  opt.dtype = dtype;
  auto built = LmModel::build(lm_cfg.value(), weights, opt, c->findings);
  if (!built) return nullptr;
  c->lm.emplace(std::move(built.value()));
  // The compression model, when the file is a full EnCodec export.
  c->enc_file = load_file(dir + "/compression_state_dict.bin");
  if (c->enc_file) {
    if (auto ecfg = xp_cfg(c->enc_file->ckpt)) {
      format::Findings ef;
      auto cc = format::compression_config_from_xpcfg(*ecfg, ef);
      if (cc) {
        model::WeightMap ew(c->enc_file->ckpt, "best_state");
        model::EncodecOptions eo;
        eo.interleave_stereo = lm_cfg->interleave_stereo;
        eo.interleave_per_timestep = lm_cfg->interleave_per_timestep;
        auto enc = model::Encodec::build(cc.value(), ew, eo, ef);
        if (enc) c->encodec.emplace(std::move(enc.value()));
      }
    }
  }
  return c;
}

GenerateParams greedy(int64_t T) {
  GenerateParams p;
  p.max_gen_len = T;
  p.sampling.use_sampling = false;
  p.cfg_coef = 3.0;
  p.record_step_logits = true;
  return p;
}

void expect_step_logits(const Case& c, const std::string& stage, const torch::Tensor& ours) {
  if (c.refs.count(stage + "/step_logits_cfg_item0")) {
    const auto& ref = c.refs.at(stage + "/step_logits_cfg_item0");
    ASSERT_EQ(ours.sizes(), ref.sizes());
    EXPECT_LT(max_diff(ours, ref), 1e-4) << stage;
  } else {
    const auto& v = c.refs.at(stage + "/step_logits_cfg_item0_top16_values");
    const auto& i = c.refs.at(stage + "/step_logits_cfg_item0_top16_indices");
    EXPECT_LT(max_diff(ours.gather(-1, i), v), 1e-4) << stage << " at the reference's top-16 indices";
    EXPECT_LT(max_diff(std::get<0>(ours.topk(16, -1)), v), 1e-4) << stage << " top-16 values";
  }
}

model::CodesDecoder decoder_of(const Case& c) {
  if (!c.encodec) return {};
  const auto* enc = &*c.encodec;
  return [enc](const torch::Tensor& codes) { return enc->decode(codes); };
}

class GenerateFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { model::configure_threads(1, 2); }
};

TEST_P(GenerateFixtureTest, GreedyUnconditionalIsTokenForToken) {
  auto c = open_case(GetParam());
  ASSERT_TRUE(c);
  const auto& ref = c->refs.at("gen_greedy_uncond/codes");
  const int64_t B = ref.size(0);
  auto res = model::generate(*c->lm, c->lm->null_conditions(B), B, greedy(ref.size(2)), decoder_of(*c));
  EXPECT_TRUE(torch::equal(res.codes, ref)) << res.codes << ref;
  expect_step_logits(*c, "gen_greedy_uncond", res.step_logits);
  if (c->refs.count("gen_greedy_uncond/audio")) {
    ASSERT_TRUE(c->encodec) << "fixture has audio but the EnCodec port did not build";
    const auto& audio = c->refs.at("gen_greedy_uncond/audio");
    ASSERT_EQ(res.audio.sizes(), audio.sizes());
    EXPECT_LT(max_diff(res.audio, audio), 1e-5);
  }
}

TEST_P(GenerateFixtureTest, GreedyWithTextAndCfgIsTokenForToken) {
  auto c = open_case(GetParam());
  ASSERT_TRUE(c);
  const auto& ref = c->refs.at("gen_greedy_text/codes");
  const auto& hidden = c->refs.at("text_cond/t5_hidden").narrow(0, 0, 1);
  const auto& mask = c->refs.at("text_cond/t5_mask").narrow(0, 0, 1);
  model::ConditionList conds{{"description", c->lm->t5_condition("description", hidden, mask)}};
  auto res = model::generate(*c->lm, conds, 1, greedy(ref.size(2)), decoder_of(*c));
  EXPECT_TRUE(torch::equal(res.codes, ref)) << res.codes << ref;
  expect_step_logits(*c, "gen_greedy_text", res.step_logits);
  if (c->refs.count("gen_greedy_text/audio")) {
    ASSERT_TRUE(c->encodec);
    EXPECT_LT(max_diff(res.audio, c->refs.at("gen_greedy_text/audio")), 1e-5);
  }
}

TEST_P(GenerateFixtureTest, SampledUnconditionalAgreementIsReported) {
  auto c = open_case(GetParam());
  ASSERT_TRUE(c);
  const auto& ref = c->refs.at("gen_sampled_uncond/codes");
  const int64_t B = ref.size(0);
  GenerateParams p;
  p.max_gen_len = ref.size(2);
  p.sampling = {true, 1.0, 50, 0.0};
  p.cfg_coef = 3.0;
  p.seed = 1234;
  auto res = model::generate(*c->lm, c->lm->null_conditions(B), B, p);
  const double agree = res.codes.eq(ref).to(torch::kFloat64).mean().item<double>();
  RecordProperty("sampled_code_agreement", std::to_string(agree));
  std::printf("[ info ] %s gen_sampled_uncond code agreement with AudioCraft: %.3f (informative)\n",
              GetParam().c_str(), agree);
  EXPECT_TRUE((res.codes >= 0).all().item<bool>() && (res.codes < c->lm->card()).all().item<bool>());
}

TEST_P(GenerateFixtureTest, Bfloat16GenerationRunsAndStaysClose) {
  auto c32 = open_case(GetParam());
  auto c16 = open_case(GetParam(), torch::kBFloat16);
  ASSERT_TRUE(c32 && c16);
  const auto& seq = c32->refs.at("lm/sequence_in").narrow(0, 0, 1);
  auto a = c32->lm->forward(seq, c32->lm->null_conditions(1));
  auto b = c16->lm->forward(seq, c16->lm->null_conditions(1));
  const double err = max_diff(a, b);
  const double scale = a.abs().max().item<double>();
  std::printf("[ info ] %s bf16 vs fp32 logits: max |diff| %.4g (max |logit| %.3g)\n", GetParam().c_str(), err, scale);
  EXPECT_LT(err, 0.1 * scale);
  auto res = model::generate(*c16->lm, c16->lm->null_conditions(2), 2, greedy(8));
  const auto& ref = c32->refs.at("gen_greedy_uncond/codes");
  const double agree = res.codes.eq(ref).to(torch::kFloat64).mean().item<double>();
  std::printf("[ info ] %s bf16 greedy code agreement with AudioCraft fp32: %.3f\n", GetParam().c_str(), agree);
}

TEST_P(GenerateFixtureTest, ReferenceStagesAllPass) {
  auto c = open_case(GetParam());
  ASSERT_TRUE(c);
  format::Findings f;
  auto refs = model::load_reference(test::fixture_dir(GetParam()) + "/refs.pt", f);
  ASSERT_TRUE(refs);
  auto stages = model::compare_lm_stages(*c->lm, refs.value(), decoder_of(*c));
  EXPECT_GE(stages.size(), 8u);
  for (const auto& r : stages) {
    std::printf("[ stage ] %s %s\n", GetParam().c_str(), model::format_stage(r).c_str());
    if (!r.informative) EXPECT_TRUE(r.pass) << model::format_stage(r);
  }
}

INSTANTIATE_TEST_SUITE_P(AudiocraftTiny, GenerateFixtureTest,
                         ::testing::Values("a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"));

// ---------------------------------------------------------------------------------------------------
// Sampling properties

TEST(Sampling, TopKDrawsOnlyFromTheKLargest) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto logits = torch::randn({3, 4, 64});
  auto top = std::get<1>(logits.topk(5, -1));
  model::SamplingParams p{true, 1.0, 5, 0.0};
  for (int i = 0; i < 200; ++i) {
    auto t = model::sample_next_token(logits, p, gen);
    EXPECT_TRUE(top.eq(t).any(-1).all().item<bool>());
  }
}

TEST(Sampling, TopPDrawsOnlyFromTheNucleus) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  auto logits = torch::randn({2, 4, 32}) * 3;
  auto probs = torch::softmax(logits, -1);
  auto sorted = probs.sort(-1, true);
  auto ps = std::get<0>(sorted), pi = std::get<1>(sorted);
  auto keep = (ps.cumsum(-1) - ps) <= 0.7;  // the smallest prefix reaching 0.7
  model::SamplingParams p{true, 1.0, 0, 0.7};
  for (int i = 0; i < 200; ++i) {
    auto t = model::sample_next_token(logits, p, gen);
    auto pos = pi.eq(t).to(torch::kInt64).argmax(-1, true);  // rank of the drawn token
    EXPECT_TRUE(keep.gather(-1, pos).all().item<bool>());
  }
}

TEST(Sampling, AFixedSeedReproducesAndTemperatureZeroIsGreedy) {
  auto logits = torch::randn({2, 4, 50});
  model::SamplingParams p{true, 1.0, 20, 0.0};
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(42);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(42);
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(torch::equal(model::sample_next_token(logits, p, g1), model::sample_next_token(logits, p, g2)));
  auto greedy_tok = logits.argmax(-1, true);
  // Near-zero temperature is greedy once the best logit leads by a margin: ≥ 1.0 here, so at T = 1e-3 any
  // other token has probability ≤ e^-1000. (Without the margin, two randn logits within ~1e-3 of each
  // other made this test flaky.)
  auto separated = logits.scatter_add(-1, greedy_tok, torch::ones_like(greedy_tok, logits.options()));
  model::SamplingParams cold{true, 1e-3, 0, 0.0};
  auto g3 = at::make_generator<at::CPUGeneratorImpl>(1);
  int agree = 0;
  for (int i = 0; i < 50; ++i) agree += torch::equal(model::sample_next_token(separated, cold, g3), greedy_tok) ? 1 : 0;
  EXPECT_EQ(agree, 50);
  model::SamplingParams off{false, 1.0, 20, 0.0};
  EXPECT_TRUE(torch::equal(model::sample_next_token(logits, off, g3), greedy_tok));
}

TEST(Sampling, TopKLargerThanTheVocabularyFailsLikeAudioCraft) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  model::SamplingParams p{true, 1.0, 250, 0.0};
  EXPECT_THROW(model::sample_next_token(torch::randn({1, 4, 64}), p, gen), std::exception);
}

// ---------------------------------------------------------------------------------------------------
// CFG variants on a fixture

TEST(Cfg, TwoStepUsesTheModelsInferenceCoefAndDoubleCfgReducesToCfg) {
  model::configure_threads(1, 2);
  auto c = open_case("a_small_like");
  ASSERT_TRUE(c);
  const auto& hidden = c->refs.at("text_cond/t5_hidden").narrow(0, 0, 1);
  const auto& mask = c->refs.at("text_cond/t5_mask").narrow(0, 0, 1);
  model::ConditionList conds{{"description", c->lm->t5_condition("description", hidden, mask)}};
  auto one = model::generate(*c->lm, conds, 1, greedy(8));
  // Two-step CFG with a different cfg_coef argument: AudioCraft ignores it (uses inference_coef = 3).
  auto p = greedy(8);
  p.two_step_cfg = true;
  p.cfg_coef = 7.0;
  auto two = model::generate(*c->lm, conds, 1, p);
  EXPECT_TRUE(torch::equal(one.codes, two.codes));
  EXPECT_LT(max_diff(one.step_logits, two.step_logits), 1e-4);
  // Double CFG with beta = 1 and the wav block = null: uncond + coef·(cond − uncond), i.e. plain CFG.
  auto q = greedy(8);
  q.cfg_coef_beta = 1.0;
  auto nulls = c->lm->null_conditions(1);
  auto dbl = model::generate(*c->lm, conds, 1, q, {}, &nulls);
  EXPECT_TRUE(torch::equal(one.codes, dbl.codes));
  EXPECT_LT(max_diff(one.step_logits, dbl.step_logits), 1e-4);
}

// ---------------------------------------------------------------------------------------------------
// Decode-step time of a musicgen-small-shaped LM (random weights), fp32 and bf16. Opt-in: it needs
// ~2 GB and a minute on a 2-core machine. MGCHECK_LM_BENCH=1 ./test_model_generate --gtest_filter=Bench*

format::LmConfig small_config() {
  format::LmConfig c;
  c.dim = 1024;
  c.num_heads = 16;
  c.num_layers = 24;
  c.n_q = 4;
  c.card = 2048;
  c.norm_first = true;
  c.bias_ff = c.bias_attn = c.bias_proj = false;
  c.memory_efficient = true;
  c.pattern.delays = {0, 1, 2, 3};
  c.fuser.cross = {"description"};
  c.cross_attention = true;
  format::ConditionerConfig t5;
  t5.name = "description";
  t5.model = "t5";
  t5.internal_dim = 768;
  c.conditioners.push_back(t5);
  return c;
}

TEST(Bench, MusicgenSmallDecodeStep) {
  if (!std::getenv("MGCHECK_LM_BENCH")) GTEST_SKIP() << "set MGCHECK_LM_BENCH=1";
  // MGCHECK_LM_BENCH_BLAS overrides the OpenBLAS thread count (default 2), MGCHECK_LM_BENCH_STEPS the
  // number of timed steps (default 20). OpenBLAS threads spin: on a loaded machine use 1.
  const char* blas_env = std::getenv("MGCHECK_LM_BENCH_BLAS");
  const char* steps_env = std::getenv("MGCHECK_LM_BENCH_STEPS");
  const int blas = blas_env ? std::atoi(blas_env) : 2;
  const int64_t timed = steps_env ? std::atoll(steps_env) : 20;
  const auto threads = model::configure_threads(1, blas);
  const auto c = small_config();
  std::map<std::string, torch::Tensor> w;
  const int64_t D = 1024, F = 4096;
  auto r = [](std::vector<int64_t> s) { return torch::randn(s) * 0.02; };
  w["condition_provider.conditioners.description.output_proj.weight"] = r({D, 768});
  w["condition_provider.conditioners.description.output_proj.bias"] = r({D});
  for (int k = 0; k < 4; ++k) {
    w["emb." + std::to_string(k) + ".weight"] = r({2049, D});
    w["linears." + std::to_string(k) + ".weight"] = r({2048, D});
  }
  for (int i = 0; i < 24; ++i) {
    const std::string p = "transformer.layers." + std::to_string(i) + ".";
    w[p + "self_attn.in_proj_weight"] = r({3 * D, D});
    w[p + "self_attn.out_proj.weight"] = r({D, D});
    w[p + "cross_attention.in_proj_weight"] = r({3 * D, D});
    w[p + "cross_attention.out_proj.weight"] = r({D, D});
    w[p + "linear1.weight"] = r({F, D});
    w[p + "linear2.weight"] = r({D, F});
    for (const char* n : {"norm1", "norm2", "norm_cross"}) {
      w[p + n + ".weight"] = torch::ones({D});
      w[p + n + ".bias"] = torch::zeros({D});
    }
  }
  w["out_norm.weight"] = torch::ones({D});
  w["out_norm.bias"] = torch::zeros({D});
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    model::WeightMap weights(w, "<random>");
    format::Findings f;
    model::LmOptions opt;
    opt.dtype = dtype;
    auto lm = LmModel::build(c, weights, opt, f);
    ASSERT_TRUE(lm);
    auto text = lm.value().t5_condition("description", torch::randn({1, 12, 768}), torch::ones({1, 12}, torch::kInt64));
    auto nulls = lm.value().null_conditions(1);
    model::ConditionList cond_list{{"description", text}};
    auto both = LmModel::concat_batch({&cond_list, &nulls});
    const int64_t steps = timed + 1;
    auto st = lm.value().begin_stream(both, 2, steps + 1);
    auto tok = torch::full({2, 4, 1}, 2048, torch::kInt64);
    lm.value().step(st, tok);  // warm-up / first step
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < timed; ++s) lm.value().step(st, tok);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                      static_cast<double>(timed);
    std::printf("[ bench ] musicgen-small-shaped decode step (batch 2, CFG), %s, %s: %.1f ms/step\n",
                model::dtype_label(dtype).c_str(), threads.c_str(), ms);
    RecordProperty(model::dtype_label(dtype) + "_ms_per_step", std::to_string(ms));
  }
}

}  // namespace
}  // namespace mgcheck
