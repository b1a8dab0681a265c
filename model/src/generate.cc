// Codebook patterns (plain C++), AudioCraft's sampling and LMModel.generate's step loop.
#include "mgcheck/model/generate.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include "mgcheck/model/patterns.h"

namespace mgcheck::model {

// ---------------------------------------------------------------------------------------------------
// Patterns — mirrors audiocraft/modules/codebooks_patterns.py

int64_t CodebookPattern::max_delay() const {
  int64_t max_t = 0;
  for (size_t s = 1; s < layout.size(); ++s)
    for (const auto& c : layout[s]) max_t = std::max(max_t, c.t + 1);
  return max_t - timesteps;
}

size_t CodebookPattern::valid_steps() const {
  const int64_t v = static_cast<int64_t>(layout.size()) - max_delay();
  return static_cast<size_t>(std::clamp<int64_t>(v, 0, static_cast<int64_t>(layout.size())));
}

std::optional<int64_t> CodebookPattern::first_step_with_timestep(int64_t t, std::optional<int64_t> q) const {
  for (size_t s = 0; s < layout.size(); ++s)
    for (const auto& c : layout[s])
      if (c.t == t && (!q || c.q == *q)) return static_cast<int64_t>(s);
  return std::nullopt;
}

void CodebookPattern::build_indexes(int64_t T, bool keep_only_valid_steps, std::vector<int64_t>& index,
                                    std::vector<uint8_t>& mask, int64_t& steps) const {
  const size_t S = keep_only_valid_steps ? valid_steps() : layout.size();
  steps = static_cast<int64_t>(S);
  index.assign(static_cast<size_t>(n_q) * S, n_q * T);
  mask.assign(static_cast<size_t>(n_q) * S, 0);
  for (size_t s = 0; s < S; ++s)
    for (const auto& c : layout[s])
      if (c.t < T) {
        index[static_cast<size_t>(c.q) * S + s] = c.t + c.q * T;
        mask[static_cast<size_t>(c.q) * S + s] = 1;
      }
}

void CodebookPattern::revert_indexes(int64_t S, bool keep_only_valid_steps, bool is_model_output,
                                     std::vector<int64_t>& index, std::vector<uint8_t>& mask) const {
  size_t n = keep_only_valid_steps ? valid_steps() : layout.size();
  if (S > static_cast<int64_t>(n)) throw std::invalid_argument("sequence longer than the pattern");
  const size_t first = is_model_output ? 1 : 0;
  const int64_t T = timesteps;
  index.assign(static_cast<size_t>(n_q * T), n_q * S);
  mask.assign(static_cast<size_t>(n_q * T), 0);
  for (size_t s = 0; s + first < n; ++s) {
    if (static_cast<int64_t>(s) >= S) break;
    for (const auto& c : layout[s + first])
      if (c.t < T) {
        index[static_cast<size_t>(c.q * T + c.t)] = static_cast<int64_t>(s) + c.q * S;
        mask[static_cast<size_t>(c.q * T + c.t)] = 1;
      }
  }
}

namespace {

bool non_decreasing(const std::vector<int64_t>& v) { return std::is_sorted(v.begin(), v.end()); }

// Pattern._validate_layout: codebook timesteps never go backwards, one coordinate per codebook per step.
bool validate(const CodebookPattern& p, std::string* error) {
  std::vector<int64_t> last(static_cast<size_t>(p.n_q), 0);
  for (size_t s = 0; s < p.layout.size(); ++s) {
    std::vector<uint8_t> seen(static_cast<size_t>(p.n_q), 0);
    for (const auto& c : p.layout[s]) {
      if (c.q < 0 || c.q >= p.n_q) {
        if (error) *error = "coordinate outside the codebooks";
        return false;
      }
      if (c.t < last[static_cast<size_t>(c.q)] || seen[static_cast<size_t>(c.q)]) {
        if (error) *error = "invalid layout at step " + std::to_string(s);
        return false;
      }
      last[static_cast<size_t>(c.q)] = c.t;
      seen[static_cast<size_t>(c.q)] = 1;
    }
  }
  return true;
}

std::optional<CodebookPattern> fail(std::string* error, const std::string& msg) {
  if (error) *error = msg;
  return std::nullopt;
}

}  // namespace

std::optional<CodebookPattern> make_pattern(const format::PatternConfig& cfg, int64_t n_q, int64_t T,
                                            std::string* error) {
  if (n_q <= 0 || T < 0) return fail(error, "n_q must be positive");
  CodebookPattern p;
  p.n_q = n_q;
  p.timesteps = T;
  p.layout.push_back({});
  const auto& m = cfg.modeling;
  if (m == "delay" || m == "parallel") {
    // DelayedPatternProvider / ParallelPatternProvider
    std::vector<int64_t> delays = cfg.delays;
    if (m == "parallel") delays.assign(static_cast<size_t>(n_q), 0);
    if (delays.empty()) {
      delays.resize(static_cast<size_t>(n_q));
      std::iota(delays.begin(), delays.end(), 0);
    }
    if (static_cast<int64_t>(delays.size()) != n_q) return fail(error, "delays must have n_q entries");
    if (!non_decreasing(delays)) return fail(error, "delays must be non-decreasing");
    if (delays.front() < 0) return fail(error, "delays must be non-negative");
    if (cfg.flatten_first < 0 || cfg.empty_initial < 0) return fail(error, "flatten_first/empty_initial must be >= 0");
    const int64_t max_delay = delays.back();
    for (int64_t i = 0; i < cfg.empty_initial; ++i) p.layout.push_back({});
    const int64_t ff = m == "delay" ? cfg.flatten_first : 0;
    for (int64_t t = 0; t < std::min(T, ff); ++t)
      for (int64_t q = 0; q < n_q; ++q) p.layout.push_back({LayoutCoord{t, q}});
    for (int64_t t = ff; t < T + max_delay; ++t) {
      std::vector<LayoutCoord> v;
      for (int64_t q = 0; q < n_q; ++q)
        if (t - delays[static_cast<size_t>(q)] >= ff) v.push_back({t - delays[static_cast<size_t>(q)], q});
      p.layout.push_back(std::move(v));
    }
  } else if (m == "unroll") {
    // UnrolledPatternProvider
    std::vector<int64_t> flattening = cfg.flattening, delays = cfg.delays;
    if (flattening.empty()) {
      flattening.resize(static_cast<size_t>(n_q));
      std::iota(flattening.begin(), flattening.end(), 0);
    }
    if (delays.empty()) delays.assign(static_cast<size_t>(n_q), 0);
    if (static_cast<int64_t>(flattening.size()) != n_q || static_cast<int64_t>(delays.size()) != n_q)
      return fail(error, "flattening and delays must have n_q entries");
    if (!non_decreasing(flattening) || !non_decreasing(delays)) return fail(error, "flattening/delays must be sorted");
    if (flattening.front() < 0) return fail(error, "flattening must be non-negative");
    std::map<int64_t, std::pair<std::vector<int64_t>, int64_t>> groups;  // inner step → (codebooks, delay)
    for (int64_t q = 0; q < n_q; ++q) {
      auto [it, fresh] = groups.try_emplace(flattening[static_cast<size_t>(q)], std::vector<int64_t>{}, delays[static_cast<size_t>(q)]);
      if (!fresh && it->second.second != delays[static_cast<size_t>(q)])
        return fail(error, "codebooks flattened to the same step need the same delay");
      it->second.first.push_back(q);
    }
    const int64_t inner = groups.rbegin()->first + 1;
    const int64_t max_t = T + delays.back();
    std::vector<std::pair<int64_t, std::vector<LayoutCoord>>> indexed{{-1, {}}};
    for (int64_t t = 0; t < max_t; ++t)
      for (int64_t step = 0; step < inner; ++step) {
        auto g = groups.find(step);
        if (g != groups.end()) {
          const int64_t t_for_q = t + g->second.second;
          std::vector<LayoutCoord> coords;
          for (auto q : g->second.first) coords.push_back({t, q});
          if (t_for_q < max_t && t < max_t) indexed.emplace_back(t_for_q, std::move(coords));
        } else {
          indexed.emplace_back(t, std::vector<LayoutCoord>{});
        }
      }
    // Python's sorted() on (int, list of (t, q) tuples): lexicographic, stable.
    auto less = [](const std::pair<int64_t, std::vector<LayoutCoord>>& a,
                   const std::pair<int64_t, std::vector<LayoutCoord>>& b) {
      if (a.first != b.first) return a.first < b.first;
      return std::lexicographical_compare(a.second.begin(), a.second.end(), b.second.begin(), b.second.end(),
                                          [](const LayoutCoord& x, const LayoutCoord& y) {
                                            return x.t != y.t ? x.t < y.t : x.q < y.q;
                                          });
    };
    std::stable_sort(indexed.begin(), indexed.end(), less);
    p.layout.clear();
    for (auto& e : indexed) p.layout.push_back(std::move(e.second));
  } else if (m == "coarse_first") {
    // CoarseFirstPattern
    std::vector<int64_t> delays = cfg.delays;
    if (delays.empty()) delays.assign(static_cast<size_t>(n_q - 1), 0);
    if (static_cast<int64_t>(delays.size()) != n_q - 1 || delays.empty())
      return fail(error, "coarse_first needs n_q - 1 delays (n_q >= 2)");
    if (!non_decreasing(delays)) return fail(error, "delays must be non-decreasing");
    for (int64_t t = 0; t < T; ++t) p.layout.push_back({LayoutCoord{t, 0}});
    for (int64_t t = 0; t < T + delays.back(); ++t) {
      std::vector<LayoutCoord> v;
      for (size_t q = 0; q < delays.size(); ++q)
        if (t - delays[q] >= 0) v.push_back({t - delays[q], static_cast<int64_t>(q) + 1});
      p.layout.push_back(std::move(v));
    }
  } else if (m == "musiclm") {
    // MusicLMPattern
    if (cfg.group_by <= 0) return fail(error, "group_by must be positive");
    for (int64_t off = 0; off < n_q; off += cfg.group_by)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t q = off; q < off + cfg.group_by; ++q) p.layout.push_back({LayoutCoord{t, q}});
  } else {
    return fail(error, "unknown codebooks_pattern.modeling '" + m + "'");
  }
  if (!validate(p, error)) return std::nullopt;
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Sampling — mirrors audiocraft/models/lm.py _sample_next_token and audiocraft/utils/utils.py

namespace {

torch::Tensor multinomial(const torch::Tensor& probs, at::Generator& gen) {
  auto flat = probs.reshape({-1, probs.size(-1)});
  auto out = at::multinomial(flat, 1, false, gen);
  std::vector<int64_t> shape(probs.sizes().begin(), probs.sizes().end());
  shape.back() = 1;
  return out.reshape(shape);
}

}  // namespace

torch::Tensor sample_next_token(const torch::Tensor& logits, const SamplingParams& p, at::Generator& gen) {
  if (p.use_sampling && p.temperature > 0.0) {
    auto probs = torch::softmax(logits / p.temperature, -1);
    if (p.top_p > 0.0) {
      auto sorted = probs.sort(-1, /*descending=*/true);
      auto ps = std::get<0>(sorted);
      auto pi = std::get<1>(sorted);
      auto mask = (ps.cumsum(-1) - ps) > p.top_p;
      ps = ps * (~mask).to(ps.scalar_type());
      ps = ps / ps.sum(-1, true);
      return pi.gather(-1, multinomial(ps, gen));
    }
    if (p.top_k > 0) {
      if (p.top_k > probs.size(-1)) throw std::invalid_argument("selected index k out of range (top_k > card)");
      auto top = std::get<0>(probs.topk(p.top_k, -1));
      auto threshold = top.narrow(-1, p.top_k - 1, 1);
      probs = probs * (probs >= threshold).to(probs.scalar_type());
      probs = probs / probs.sum(-1, true);
      return multinomial(probs, gen);
    }
    return multinomial(probs, gen);
  }
  return logits.argmax(-1, true);
}

// ---------------------------------------------------------------------------------------------------
// Generation — mirrors audiocraft/models/lm.py LMModel.generate

GenerateResult generate(const LmModel& lm, const ConditionList& conditions, int64_t B, const GenerateParams& params,
                        const CodesDecoder& decoder, const ConditionList* wav_conditions) {
  c10::InferenceMode guard;
  const auto& cfg = lm.config();
  const int64_t K = lm.num_codebooks(), T = params.max_gen_len, special = lm.special_token();
  if (B <= 0 || T <= 0) throw std::invalid_argument("batch and max_gen_len must be positive");
  auto pattern = make_pattern(cfg.pattern, K, T);
  if (!pattern) throw std::invalid_argument("invalid codebooks pattern");
  const double cfg_coef = params.cfg_coef.value_or(cfg.cfg_inference_coef);
  const bool two_step = params.use_cfg && params.two_step_cfg.value_or(cfg.two_step_cfg) && !params.cfg_coef_beta;
  const bool double_cfg = params.use_cfg && params.cfg_coef_beta.has_value();
  if (double_cfg && !wav_conditions) throw std::invalid_argument("double CFG needs the wav-only condition block");

  // gen_sequence = build_pattern_sequence(full(-1), special)
  std::vector<int64_t> idx;
  std::vector<uint8_t> msk;
  int64_t S = 0;
  pattern->build_indexes(T, false, idx, msk, S);
  auto iopt = torch::TensorOptions().dtype(torch::kInt64);
  auto index = torch::from_blob(idx.data(), {K, S}, iopt).clone();
  auto mask = torch::from_blob(msk.data(), {K, S}, torch::TensorOptions().dtype(torch::kUInt8)).to(torch::kBool);
  auto gen = torch::where(mask, torch::full({}, -1, iopt), torch::full({}, special, iopt)).unsqueeze(0).repeat({B, 1, 1});
  const int64_t start = pattern->first_step_with_timestep(0).value_or(1);

  // Condition blocks and streams: [cond, null] in one 2B batch, [cond, wav, null] for double CFG, or two
  // separate streams for two-step CFG.
  const ConditionList null = lm.null_conditions(B);
  std::vector<LmStream> streams;
  int64_t blocks = 1;
  if (!params.use_cfg) {
    streams.push_back(lm.begin_stream(conditions, B, S));
  } else if (two_step) {
    streams.push_back(lm.begin_stream(conditions, B, S));
    streams.push_back(lm.begin_stream(null, B, S));
  } else if (double_cfg) {
    blocks = 3;
    streams.push_back(lm.begin_stream(LmModel::concat_batch({&conditions, wav_conditions, &null}), 3 * B, S));
  } else {
    blocks = 2;
    streams.push_back(lm.begin_stream(LmModel::concat_batch({&conditions, &null}), 2 * B, S));
  }
  // The fed tokens live in one preallocated buffer per stream batch ([blocks·B, K, S]).
  auto feed = torch::empty({blocks * B, K, S}, iopt);
  at::Generator rng = at::make_generator<at::CPUGeneratorImpl>(params.seed);

  GenerateResult res;
  const int64_t steps = S - start;
  if (params.record_step_logits) res.step_logits = torch::empty({steps, K, lm.card()}, torch::kFloat32);
  int64_t prev = 0;
  for (int64_t offset = start; offset < S; ++offset) {
    const int64_t n = offset - prev;
    auto curr = gen.narrow(2, prev, n);
    torch::Tensor logits;  // [B, K, card]
    if (two_step) {
      auto c = lm.step(streams[0], curr).select(2, n - 1);
      auto u = lm.step(streams[1], curr).select(2, n - 1);
      // AudioCraft quirk: two-step CFG uses the model's inference_coef, not the generate() argument.
      logits = u + (c - u) * cfg.cfg_inference_coef;
    } else {
      for (int64_t b = 0; b < blocks; ++b) feed.narrow(0, b * B, B).narrow(2, prev, n).copy_(curr);
      auto all = lm.step(streams[0], feed.narrow(2, prev, n)).select(2, n - 1);
      if (blocks == 1) {
        logits = all;
      } else if (blocks == 2) {
        auto c = all.narrow(0, 0, B), u = all.narrow(0, B, B);
        logits = u + (c - u) * cfg_coef;
      } else {
        auto c = all.narrow(0, 0, B), w = all.narrow(0, B, B), u = all.narrow(0, 2 * B, B);
        logits = u + cfg_coef * (w + *params.cfg_coef_beta * (c - w) - u);
      }
    }
    if (params.record_step_logits) res.step_logits[offset - start].copy_(logits[0].to(torch::kFloat32));
    auto next = sample_next_token(logits, params.sampling, rng);  // [B, K, 1]
    auto valid = mask.narrow(1, offset, 1).unsqueeze(0).expand({B, K, 1});
    next = torch::where(valid, next, torch::full({}, special, iopt));
    auto col = gen.narrow(2, offset, 1);
    col.copy_(torch::where(col == -1, next, col));
    prev = offset;
  }
  res.steps = steps;
  if ((gen == -1).any().item<bool>()) throw std::runtime_error("generation left unknown tokens");
  // out = revert_pattern_sequence(gen, special = -1)[..., :T]
  std::vector<int64_t> ridx;
  std::vector<uint8_t> rmask;
  pattern->revert_indexes(S, false, false, ridx, rmask);
  auto flat = torch::cat({gen.reshape({B, -1}), torch::full({B, 1}, -1, iopt)}, 1);
  auto rindex = torch::from_blob(ridx.data(), {K * T}, iopt).clone();
  res.codes = flat.index_select(1, rindex).view({B, K, T});
  if ((res.codes < 0).any().item<bool>() || (res.codes > special).any().item<bool>())
    throw std::runtime_error("generated codes out of range");
  (void)index;
  if (decoder) res.audio = decoder(res.codes);
  return res;
}

// ---------------------------------------------------------------------------------------------------
// Reference comparison of the LM stages

std::vector<StageResult> compare_lm_stages(const LmModel& lm, const ReferenceSet& refs, const CodesDecoder& decoder) {
  std::vector<StageResult> out;
  auto guarded = [&](const std::string& stage, const std::function<void()>& body) {
    try {
      body();
    } catch (const std::exception& e) {
      StageResult r;
      r.stage = stage;
      r.note = std::string("libtorch error: ") + e.what();
      if (auto nl = r.note.find('\n'); nl != std::string::npos) r.note.resize(nl);
      out.push_back(std::move(r));
    }
  };
  // Logits either in full or in the top-16 form (card 2048 fixtures): ours gathered at the reference's
  // indices must equal the reference values.
  auto logits_stage = [&](const std::string& stage, const torch::Tensor& ours) {
    if (refs.has(stage)) {
      out.push_back(compare_stage(stage, ours, refs.at(stage), kLogitsTolerance, false));
    } else if (refs.has(stage + "_top16_values") && refs.has(stage + "_top16_indices")) {
      const auto& idx = refs.at(stage + "_top16_indices");
      out.push_back(compare_stage(stage + "_top16_values", ours.gather(-1, idx.to(torch::kInt64)),
                                  refs.at(stage + "_top16_values"), kLogitsTolerance, false));
    }
  };
  for (const auto& name : lm.provider_order()) {
    const std::string e = "null_cond/" + name + "/emb", m = "null_cond/" + name + "/mask";
    if (!refs.has(e)) continue;
    guarded(e, [&] {
      auto c = lm.null_condition(name, refs.at(e).size(0));
      out.push_back(compare_stage(e, c.emb.to(torch::kFloat32), refs.at(e), 0.0, true));
      if (refs.has(m)) out.push_back(compare_stage(m, c.mask, refs.at(m), 0.0, true));
    });
  }
  const bool has_text = refs.has("text_cond/t5_hidden") && refs.has("text_cond/t5_mask");
  // Conditions for `rows` text-conditioned items: the recorded T5 state through the description
  // conditioner, every other provider null (what text-only generation feeds an LM with more providers).
  auto text_conditions = [&](int64_t rows) {
    auto conds = lm.null_conditions(rows);
    auto h = refs.at("text_cond/t5_hidden").narrow(0, 0, rows);
    auto mk = refs.at("text_cond/t5_mask").narrow(0, 0, rows);
    for (auto& [n, c] : conds)
      if (n == "description") c = lm.t5_condition(n, h, mk);
    return conds;
  };
  if (has_text && refs.has("text_cond/description_emb"))
    guarded("text_cond/description_emb", [&] {
      auto c = lm.t5_condition("description", refs.at("text_cond/t5_hidden"), refs.at("text_cond/t5_mask"));
      out.push_back(compare_stage("text_cond/description_emb", c.emb.to(torch::kFloat32),
                                  refs.at("text_cond/description_emb"), kConditionTolerance, false));
    });
  if (refs.has("lm/sequence_in")) {
    const auto& seq = refs.at("lm/sequence_in");
    if (refs.has("lm/logits_null"))
      guarded("lm/logits_null", [&] { logits_stage("lm/logits_null", lm.forward(seq.narrow(0, 0, 1), lm.null_conditions(1))); });
    if (has_text)
      guarded("lm/logits_text", [&] {
        const int64_t rows = refs.at("text_cond/t5_hidden").size(0);
        logits_stage("lm/logits_text", lm.forward(seq.narrow(0, 0, rows), text_conditions(rows)));
      });
  }
  if (refs.has("lm/codes_in") && refs.has("lm/pred_logits_null"))
    guarded("lm/pred_logits_null", [&] {
      auto p = lm.compute_predictions(refs.at("lm/codes_in").narrow(0, 0, 1), lm.null_conditions(1));
      out.push_back(compare_stage("lm/pred_logits_null", p.logits, refs.at("lm/pred_logits_null"), kLogitsTolerance, false));
      if (refs.has("lm/pred_mask_null"))
        out.push_back(compare_stage("lm/pred_mask_null", p.mask.to(torch::kInt64),
                                    refs.at("lm/pred_mask_null").to(torch::kInt64), 0.0, true));
    });
  auto gen_stages = [&](const std::string& stage, const ConditionList& conds, int64_t B, const GenerateParams& p,
                        bool informative) {
    guarded(stage, [&] {
      auto res = generate(lm, conds, B, p, decoder);
      out.push_back(compare_stage(stage + "/codes", res.codes, refs.at(stage + "/codes"), 0.0, true, informative));
      if (!informative) logits_stage(stage + "/step_logits_cfg_item0", res.step_logits);
      if (res.audio.defined() && refs.has(stage + "/audio"))
        out.push_back(compare_stage(stage + "/audio", res.audio, refs.at(stage + "/audio"), kAudioTolerance, false,
                                    informative));
    });
  };
  GenerateParams greedy;
  greedy.sampling.use_sampling = false;
  greedy.cfg_coef = 3.0;  // the fixtures' classifier_free_guidance.inference_coef, passed explicitly
  greedy.record_step_logits = true;
  if (refs.has("gen_greedy_uncond/codes")) {
    const auto& c = refs.at("gen_greedy_uncond/codes");
    auto p = greedy;
    p.max_gen_len = c.size(2);
    gen_stages("gen_greedy_uncond", lm.null_conditions(c.size(0)), c.size(0), p, false);
  }
  if (refs.has("gen_greedy_text/codes") && has_text) {
    const auto& c = refs.at("gen_greedy_text/codes");
    auto p = greedy;
    p.max_gen_len = c.size(2);
    const int64_t B = c.size(0);
    guarded("gen_greedy_text", [&] { gen_stages("gen_greedy_text", text_conditions(B), B, p, false); });
  }
  if (refs.has("gen_sampled_uncond/codes")) {
    const auto& c = refs.at("gen_sampled_uncond/codes");
    GenerateParams p;
    p.max_gen_len = c.size(2);
    p.sampling = {true, 1.0, std::min<int64_t>(50, lm.card()), 0.0};
    p.cfg_coef = 3.0;
    p.seed = 1234;
    gen_stages("gen_sampled_uncond", lm.null_conditions(c.size(0)), c.size(0), p, true);
  }
  return out;
}

}  // namespace mgcheck::model
