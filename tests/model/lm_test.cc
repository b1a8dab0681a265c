// The MusicGen LM port against AudioCraft's own numbers (corpus/audiocraft-tiny/*/refs.pt), read through
// mgcheck's reader with the config derived from each file's xp.cfg; plus property tests with random
// weights (rope cached decoding == full forward, layouts, gated activations, patterns).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/xpcfg.h"
#include "mgcheck/model/lm.h"
#include "mgcheck/model/patterns.h"
#include "mgcheck/model/weights.h"
#include "test_support.h"

namespace mgcheck {
namespace {

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

// refs.pt tensors (cloned out of the mapping), keyed like "lm/logits_null".
std::map<std::string, torch::Tensor> load_refs(const std::string& dir) {
  std::map<std::string, torch::Tensor> out;
  auto f = load_file(dir + "/refs.pt");
  if (!f) return out;
  for (const auto& n : f->ckpt.named) {
    if (n.path.rfind("tensors/", 0) != 0) continue;
    out[n.path.substr(8)] = model::view_as_torch(f->ckpt.tensors[n.tensor]).clone();
  }
  return out;
}

std::optional<format::LmConfig> lm_config(const format::Checkpoint& ckpt) {
  const auto& arena = ckpt.pickle.arena;
  auto id = arena.dict_get(ckpt.pickle.root, "xp.cfg");
  if (!arena.is_string(id)) return std::nullopt;
  format::Findings findings;
  auto cfg = format::XpCfg::parse(arena[id].s, ckpt.file);
  if (!cfg) return std::nullopt;
  auto lm = format::lm_config_from_xpcfg(cfg.value(), findings);
  if (!lm) return std::nullopt;
  return lm.value();
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// Top-16 form: our logits at the reference's indices equal the reference values, and our own top-16
// values equal them too (indices may only differ inside ties closer than the tolerance).
void expect_top16(const torch::Tensor& logits, const torch::Tensor& values, const torch::Tensor& indices, double tol,
                  const std::string& what) {
  auto at_ref = logits.gather(-1, indices);
  EXPECT_LT(max_diff(at_ref, values), tol) << what << " (logits at the reference's top-16 indices)";
  auto ours = std::get<0>(logits.topk(16, -1));
  EXPECT_LT(max_diff(ours, values), tol) << what << " (top-16 values)";
}

struct Fixture {
  std::string name;
  std::unique_ptr<LoadedFile> lm_file;
  std::map<std::string, torch::Tensor> refs;
  std::optional<LmModel> lm;
  format::Findings findings;
};

std::unique_ptr<Fixture> open_fixture(const std::string& name, torch::Dtype dtype = torch::kFloat32) {
  auto fx = std::make_unique<Fixture>();
  fx->name = name;
  const auto dir = test::fixture_dir(name);
  fx->lm_file = load_file(dir + "/state_dict.bin");
  if (!fx->lm_file) return nullptr;
  fx->refs = load_refs(dir);
  auto cfg = lm_config(fx->lm_file->ckpt);
  if (!cfg) return nullptr;
  model::WeightMap weights(fx->lm_file->ckpt, "best_state");
  model::LmOptions opt;
  opt.dtype = dtype;
  auto built = LmModel::build(*cfg, weights, opt, fx->findings);
  if (!built) return nullptr;
  fx->lm.emplace(std::move(built.value()));
  return fx;
}

class LmFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { model::configure_threads(1, 2); }
};

TEST_P(LmFixtureTest, LoadsStrictlyFromTheFilesConfig) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx) << "could not read/build " << GetParam();
  EXPECT_FALSE(fx->findings.has_errors());
  for (const auto& f : fx->findings.items()) EXPECT_NE(f.severity, format::Severity::error) << f.code << " " << f.message;
}

TEST_P(LmFixtureTest, NullConditionsAreAudioCraftsExactly) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx);
  const auto& emb = fx->refs.at("null_cond/description/emb");
  const auto& mask = fx->refs.at("null_cond/description/mask");
  auto c = fx->lm->null_condition("description", emb.size(0));
  EXPECT_TRUE(torch::equal(c.emb, emb));
  EXPECT_TRUE(torch::equal(c.mask, mask));
}

TEST_P(LmFixtureTest, LogitsNullMatchAudioCraft) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx);
  const auto& seq = fx->refs.at("lm/sequence_in");
  const auto& ref = fx->refs.at("lm/logits_null");
  auto logits = fx->lm->forward(seq.narrow(0, 0, 1), fx->lm->null_conditions(1));
  ASSERT_EQ(logits.sizes(), ref.sizes());
  EXPECT_LT(max_diff(logits, ref), 1e-4);
}

TEST_P(LmFixtureTest, ComputePredictionsMatchAudioCraftIncludingNaNs) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx);
  if (!fx->refs.count("lm/pred_logits_null")) GTEST_SKIP() << "fixture has no compute_predictions reference";
  const auto& codes = fx->refs.at("lm/codes_in");
  const auto& ref = fx->refs.at("lm/pred_logits_null");
  const auto& ref_mask = fx->refs.at("lm/pred_mask_null");
  auto pred = fx->lm->compute_predictions(codes.narrow(0, 0, 1), fx->lm->null_conditions(1));
  ASSERT_EQ(pred.logits.sizes(), ref.sizes());
  EXPECT_TRUE(torch::equal(pred.mask, ref_mask));
  EXPECT_TRUE(torch::equal(torch::isnan(pred.logits), torch::isnan(ref)));
  auto finite = ~torch::isnan(ref);
  EXPECT_LT(max_diff(pred.logits.masked_select(finite), ref.masked_select(finite)), 1e-4);
}

TEST_P(LmFixtureTest, TextConditionerProjectionMatchesAudioCraft) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx);
  const auto& hidden = fx->refs.at("text_cond/t5_hidden");
  const auto& mask = fx->refs.at("text_cond/t5_mask");
  auto c = fx->lm->t5_condition("description", hidden, mask);
  EXPECT_LT(max_diff(c.emb, fx->refs.at("text_cond/description_emb")), 1e-5);
}

TEST_P(LmFixtureTest, LogitsWithTextCrossAttentionMatchAudioCraft) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx);
  const auto& hidden = fx->refs.at("text_cond/t5_hidden");
  const auto& mask = fx->refs.at("text_cond/t5_mask");
  const int64_t B = hidden.size(0);
  model::ConditionList conds{{"description", fx->lm->t5_condition("description", hidden, mask)}};
  auto logits = fx->lm->forward(fx->refs.at("lm/sequence_in").narrow(0, 0, B), conds);
  if (fx->refs.count("lm/logits_text")) {
    EXPECT_LT(max_diff(logits, fx->refs.at("lm/logits_text")), 1e-4);
  } else {
    expect_top16(logits, fx->refs.at("lm/logits_text_top16_values"), fx->refs.at("lm/logits_text_top16_indices"),
                 1e-4, "lm/logits_text top16");
  }
}

TEST_P(LmFixtureTest, CachedStepsEqualOneFullForward) {
  auto fx = open_fixture(GetParam());
  ASSERT_TRUE(fx);
  const auto& seq = fx->refs.at("lm/sequence_in").narrow(0, 0, 1);
  auto nulls = fx->lm->null_conditions(1);
  auto full = fx->lm->forward(seq, nulls);
  auto st = fx->lm->begin_stream(nulls, 1, seq.size(2));
  auto first = fx->lm->step(st, seq.narrow(2, 0, 3)).to(torch::kFloat32);
  EXPECT_LT(max_diff(first, full.narrow(2, 0, 3)), 1e-4);
  for (int64_t s = 3; s < seq.size(2); ++s) {
    auto l = fx->lm->step(st, seq.narrow(2, s, 1)).to(torch::kFloat32);
    EXPECT_LT(max_diff(l, full.narrow(2, s, 1)), 1e-4) << "step " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(AudiocraftTiny, LmFixtureTest,
                         ::testing::Values("a_small_like", "c_stereo_like", "e_encodec_reflect", "e_pretrained_ref"));

// ---------------------------------------------------------------------------------------------------
// Random-weight models built in memory

format::LmConfig tiny_config() {
  format::LmConfig c;
  c.dim = 32;
  c.num_heads = 4;
  c.num_layers = 2;
  c.n_q = 4;
  c.card = 16;
  c.norm_first = true;
  c.bias_ff = c.bias_attn = c.bias_proj = false;
  c.memory_efficient = true;
  c.pattern.modeling = "delay";
  c.pattern.delays = {0, 1, 2, 3};
  c.fuser.cross = {"description"};
  c.cross_attention = true;
  format::ConditionerConfig t5;
  t5.name = "description";
  t5.model = "t5";
  t5.output_dim = 32;
  t5.internal_dim = 8;
  c.conditioners.push_back(t5);
  return c;
}

// Random tensors for every name the model asks for: build once against an empty map to learn the names
// and shapes from the MISSING findings is not possible (messages only), so the shapes are spelled out.
std::map<std::string, torch::Tensor> random_weights(const format::LmConfig& c, bool custom_names, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  std::map<std::string, torch::Tensor> w;
  const int64_t D = c.dim, F = c.ffn_dim(), hd = c.head_dim(), kvD = hd * (c.num_heads / c.kv_repeat);
  auto r = [](std::vector<int64_t> s, double scale = 0.2) { return torch::randn(s) * scale; };
  auto ln = [&](const std::string& p) {
    w[p + ".weight"] = 1 + r({D}, 0.1);
    w[p + ".bias"] = r({D}, 0.1);
  };
  for (const auto& cc : c.conditioners) {
    w["condition_provider.conditioners." + cc.name + ".output_proj.weight"] = r({D, cc.internal_dim});
    w["condition_provider.conditioners." + cc.name + ".output_proj.bias"] = r({D});
  }
  for (int64_t k = 0; k < c.n_q; ++k) {
    w["emb." + std::to_string(k) + ".weight"] = r({c.card + 1, D}, 1.0);
    w["linears." + std::to_string(k) + ".weight"] = r({c.card, D});
  }
  torch::Tensor freqs;
  if (c.uses_rope()) {
    freqs = 1.0 / torch::pow(c.max_period, torch::arange(0, hd, 2, torch::kFloat32) / static_cast<double>(hd));
    w["transformer.rope.frequencies"] = freqs;
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "transformer.layers." + std::to_string(i) + ".";
    const std::string a = custom_names ? p + "self_attn." : p + "self_attn.mha.";
    w[a + "in_proj_weight"] = r({D + 2 * kvD, D});
    w[a + "out_proj.weight"] = r({D, D});
    if (c.uses_rope()) w[p + "self_attn.rope.frequencies"] = freqs;
    w[p + "linear1.weight"] = r({F, D});
    w[p + "linear2.weight"] = r({D, F});
    ln(p + "norm1");
    ln(p + "norm2");
    if (c.cross_attention) {
      const std::string x = custom_names ? p + "cross_attention." : p + "cross_attention.mha.";
      w[x + "in_proj_weight"] = r({3 * D, D});
      w[x + "out_proj.weight"] = r({D, D});
      ln(p + "norm_cross");
    }
  }
  if (c.norm_first) ln("out_norm");
  return w;
}

std::optional<LmModel> build_random(const format::LmConfig& c, bool custom_names, format::Findings& f,
                                    model::LmOptions opt = {}) {
  model::WeightMap weights(random_weights(c, custom_names, 7), "<random>");
  auto built = LmModel::build(c, weights, opt, f);
  if (!built) return std::nullopt;
  return std::move(built.value());
}

void expect_cached_equals_full(const LmModel& lm, const model::ConditionList& conds, double tol) {
  torch::manual_seed(3);
  auto seq = torch::randint(0, lm.card() + 1, {2, lm.num_codebooks(), 9});
  auto full = lm.forward(seq, conds);
  auto st = lm.begin_stream(conds, 2, 9);
  auto a = lm.step(st, seq.narrow(2, 0, 1)).to(torch::kFloat32);
  EXPECT_LT(max_diff(a, full.narrow(2, 0, 1)), tol);
  for (int64_t s = 1; s < 9; ++s)
    EXPECT_LT(max_diff(lm.step(st, seq.narrow(2, s, 1)).to(torch::kFloat32), full.narrow(2, s, 1)), tol) << s;
}

model::ConditionList random_text(const LmModel& lm, int64_t B) {
  auto hidden = torch::randn({B, 3, 8});
  auto mask = torch::ones({B, 3}, torch::kInt64);
  return {{"description", lm.t5_condition("description", hidden, mask)}};
}

TEST(LmRandom, RopeCachedDecodingEqualsFullForward) {
  auto c = tiny_config();
  c.positional_embedding = "rope";
  format::Findings f;
  auto lm = build_random(c, true, f);
  ASSERT_TRUE(lm);
  EXPECT_TRUE(f.has_code("MG-MODEL-LM-ROPE-OFFSET"));  // memory_efficient + rope: AudioCraft differs
  expect_cached_equals_full(*lm, random_text(*lm, 2), 1e-4);
}

TEST(LmRandom, AudioCraftRopeOffsetQuirkBreaksCachedDecoding) {
  auto c = tiny_config();
  c.positional_embedding = "sin_rope";
  format::Findings f;
  model::LmOptions opt;
  opt.audiocraft_rope_offset_quirk = true;
  auto lm = build_random(c, true, f, opt);
  ASSERT_TRUE(lm);
  torch::manual_seed(3);
  auto seq = torch::randint(0, lm->card() + 1, {2, lm->num_codebooks(), 9});
  auto conds = random_text(*lm, 2);
  auto full = lm->forward(seq, conds);
  auto st = lm->begin_stream(conds, 2, 9);
  lm->step(st, seq.narrow(2, 0, 1));
  lm->step(st, seq.narrow(2, 1, 1));
  auto third = lm->step(st, seq.narrow(2, 2, 1));  // offset H = 4 instead of 2
  EXPECT_GT(max_diff(third, full.narrow(2, 2, 1)), 1e-3);
}

TEST(LmRandom, XposKvRepeatQkNormPostNormLayerScaleAndPastContextStayConsistent) {
  auto c = tiny_config();
  c.positional_embedding = "rope";
  c.xpos = true;
  c.kv_repeat = 2;
  c.memory_efficient = false;
  c.custom = true;
  c.norm_first = false;
  c.past_context = 4;
  auto w = random_weights(c, true, 11);
  const int64_t hd = c.head_dim();
  auto rates = (torch::arange(hd / 2, torch::kFloat32) / static_cast<double>(hd / 2) + 0.4) / 1.4;
  w["transformer.rope.xpos.decay_rates"] = rates;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "transformer.layers." + std::to_string(i) + ".";
    w[p + "self_attn.rope.xpos.decay_rates"] = rates;
  }
  w.erase("out_norm.weight");
  w.erase("out_norm.bias");
  model::WeightMap weights(std::move(w), "<random>");
  format::Findings f;
  auto lm = LmModel::build(c, weights, {}, f);
  ASSERT_TRUE(lm) << (f.items().empty() ? "" : f.items().front().message);
  expect_cached_equals_full(lm.value(), random_text(lm.value(), 2), 1e-4);
}

TEST(LmRandom, NonCustomAcceptsBothKeyLayoutsWithTheSameNumbers) {
  auto c = tiny_config();
  c.memory_efficient = false;
  c.custom = false;
  format::Findings f1, f2;
  auto a = build_random(c, false, f1);  // self_attn.mha.*
  auto b = build_random(c, true, f2);   // self_attn.in_proj_weight (renamed by AudioCraft on load)
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(f1.has_errors());
  EXPECT_FALSE(f2.has_errors());
  auto seq = torch::randint(0, c.card + 1, {2, c.n_q, 5});
  auto conds = random_text(*a, 2);
  EXPECT_EQ(max_diff(a->forward(seq, conds), b->forward(seq, conds)), 0.0);
}

TEST(LmRandom, CustomRefusesMhaNamesAndReportsStrictly) {
  auto c = tiny_config();
  format::Findings f;
  auto lm = build_random(c, false, f);
  EXPECT_FALSE(lm);
  EXPECT_TRUE(f.has_code("MG-MODEL-MISSING-WEIGHT"));
  EXPECT_TRUE(f.has_code("MG-MODEL-UNEXPECTED-WEIGHT"));
}

TEST(LmRandom, MisShapedWeightIsAFinding) {
  auto c = tiny_config();
  auto w = random_weights(c, true, 1);
  w["linears.0.weight"] = torch::zeros({c.card + 1, c.dim});
  model::WeightMap weights(std::move(w), "<random>");
  format::Findings f;
  EXPECT_FALSE(LmModel::build(c, weights, {}, f));
  EXPECT_TRUE(f.has_code("MG-MODEL-SHAPE"));
}

TEST(LmRandom, GatedActivationsWarnAndFailLikeAudioCraft) {
  for (const char* act : {"reglu", "geglu", "swiglu"}) {
    auto c = tiny_config();
    c.activation = act;
    format::Findings f;
    auto lm = build_random(c, true, f);
    ASSERT_TRUE(lm) << act;
    EXPECT_TRUE(f.has_code("MG-MODEL-LM-GATED-ACTIVATION")) << act;
    auto seq = torch::randint(0, c.card + 1, {2, c.n_q, 3});
    EXPECT_THROW(lm->forward(seq, random_text(*lm, 2)), std::exception) << act;
  }
}

TEST(LmRandom, ZeroCrossSourceAddsNothingWithoutBiases) {
  auto c = tiny_config();
  format::Findings f;
  auto lm = build_random(c, true, f);
  ASSERT_TRUE(lm);
  auto seq = torch::randint(0, c.card + 1, {2, c.n_q, 4});
  auto nulls = lm->null_conditions(2);
  // The same model without cross attention must give the same logits on a null (zero) source.
  auto c2 = c;
  c2.cross_attention = false;
  c2.fuser.cross.clear();
  auto w = random_weights(c, true, 7);
  for (auto it = w.begin(); it != w.end();) {
    if (it->first.find("cross") != std::string::npos) it = w.erase(it);
    else ++it;
  }
  model::WeightMap weights(std::move(w), "<random>");
  format::Findings f2;
  auto plain = LmModel::build(c2, weights, {}, f2);
  ASSERT_TRUE(plain);
  EXPECT_EQ(max_diff(lm->forward(seq, nulls), plain.value().forward(seq, nulls)), 0.0);
}

TEST(LmRandom, PrependFusingKeepsTheLastStepsAndStreamsConsistently) {
  auto c = tiny_config();
  c.fuser.cross.clear();
  c.cross_attention = false;
  c.fuser.prepend = {"description"};
  auto w = random_weights(c, true, 5);
  model::WeightMap weights(std::move(w), "<random>");
  format::Findings f;
  auto lm = LmModel::build(c, weights, {}, f);
  ASSERT_TRUE(lm);
  auto conds = random_text(lm.value(), 2);
  auto seq = torch::randint(0, c.card + 1, {2, c.n_q, 6});
  EXPECT_EQ(lm.value().forward(seq, conds).size(2), 6);
  expect_cached_equals_full(lm.value(), conds, 1e-4);
}

TEST(LmRandom, SinEmbeddingIsCosinesThenSines) {
  auto pos = torch::arange(3, torch::kInt64).view({1, -1, 1});
  auto e = model::sin_embedding(pos, 8, 10000.0, torch::kFloat32);
  // E(p)[j] = cos(p / P^(j/(h-1))), E(p)[h+j] = sin(...), h = 4
  for (int64_t p = 0; p < 3; ++p)
    for (int64_t j = 0; j < 4; ++j) {
      const double phase = static_cast<double>(p) / std::pow(10000.0, static_cast<double>(j) / 3.0);
      EXPECT_NEAR(e[0][p][j].item<double>(), std::cos(phase), 1e-6);
      EXPECT_NEAR(e[0][p][4 + j].item<double>(), std::sin(phase), 1e-6);
    }
}

// ---------------------------------------------------------------------------------------------------
// Patterns

TEST(Patterns, DelayMatchesTheDocumentedExample) {
  format::PatternConfig p;
  p.modeling = "delay";
  p.delays = {0, 1, 2, 3};
  auto pat = model::make_pattern(p, 4, 3);
  ASSERT_TRUE(pat);
  std::vector<int64_t> idx;
  std::vector<uint8_t> mask;
  int64_t S = 0;
  pat->build_indexes(3, false, idx, mask, S);
  ASSERT_EQ(S, 7);
  // (t, q) at s = t + q + 1
  for (int64_t q = 0; q < 4; ++q)
    for (int64_t s = 0; s < 7; ++s) {
      const int64_t t = s - q - 1;
      const bool placed = t >= 0 && t < 3;
      EXPECT_EQ(mask[static_cast<size_t>(q * S + s)], placed ? 1 : 0);
      EXPECT_EQ(idx[static_cast<size_t>(q * S + s)], placed ? t + q * 3 : 12);
    }
  EXPECT_EQ(*pat->first_step_with_timestep(0), 1);
}

// Step of each (t, q) for the other providers, from musicgen-model.md §4's descriptions.
int64_t step_of(const model::CodebookPattern& p, int64_t t, int64_t q) {
  for (size_t s = 0; s < p.layout.size(); ++s)
    for (const auto& c : p.layout[s])
      if (c.t == t && c.q == q) return static_cast<int64_t>(s);
  return -1;
}

TEST(Patterns, OtherProvidersFollowTheirDefinitions) {
  const int64_t K = 4, T = 3;
  format::PatternConfig un;
  un.modeling = "unroll";  // full flattening: one step per codebook, timestep-major
  auto u = model::make_pattern(un, K, T);
  ASSERT_TRUE(u);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t q = 0; q < K; ++q) EXPECT_EQ(step_of(*u, t, q), 1 + t * K + q);
  format::PatternConfig cf;
  cf.modeling = "coarse_first";  // all of codebook 0, then the others in parallel (delays 0)
  auto c = model::make_pattern(cf, K, T);
  ASSERT_TRUE(c);
  for (int64_t t = 0; t < T; ++t) {
    EXPECT_EQ(step_of(*c, t, 0), 1 + t);
    for (int64_t q = 1; q < K; ++q) EXPECT_EQ(step_of(*c, t, q), 1 + T + t);
  }
  format::PatternConfig ml;
  ml.modeling = "musiclm";  // groups of 2 codebooks, fully flattened group by group
  auto m = model::make_pattern(ml, K, T);
  ASSERT_TRUE(m);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t q = 0; q < K; ++q) EXPECT_EQ(step_of(*m, t, q), 1 + (q / 2) * T * 2 + t * 2 + q % 2);
  format::PatternConfig dl;
  dl.modeling = "delay";
  dl.delays = {0, 1, 1, 2};
  dl.flatten_first = 1;
  dl.empty_initial = 2;
  auto d = model::make_pattern(dl, K, T);
  ASSERT_TRUE(d);
  // [] + 2 empty + t=0 flattened (4 steps) + t from 1: (t - delay_q, q) for t - delay_q >= 1
  for (int64_t q = 0; q < K; ++q) EXPECT_EQ(step_of(*d, 0, q), 3 + q);
  EXPECT_EQ(step_of(*d, 1, 0), 7);
  EXPECT_EQ(step_of(*d, 1, 1), 8);
  EXPECT_EQ(step_of(*d, 1, 3), 9);
  EXPECT_EQ(d->layout.size(), static_cast<size_t>(1 + 2 + 4 + (T + 2 - 1)));
}

TEST(Patterns, InvalidParametersAreRefused) {
  format::PatternConfig p;
  p.modeling = "delay";
  p.delays = {0, 2, 1, 3};
  std::string err;
  EXPECT_FALSE(model::make_pattern(p, 4, 3, &err));
  EXPECT_FALSE(err.empty());
  p.delays = {0, 1};
  EXPECT_FALSE(model::make_pattern(p, 4, 3, &err));
  p.modeling = "nope";
  EXPECT_FALSE(model::make_pattern(p, 4, 3, &err));
}

}  // namespace
}  // namespace mgcheck
