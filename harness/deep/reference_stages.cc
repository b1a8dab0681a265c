#include "reference_stages.h"

#include <torch/torch.h>

#include <cstdio>
#include <functional>

#include "mgcheck/model/generate.h"
#include "mgcheck/model/weights.h"

namespace mgcheck::harness::deep {

namespace {

constexpr double kLogitsTolerance = 1e-4;  // contract §5
constexpr double kCondTolerance = 1e-5;    // conditioner projections: float32 matmul of the same inputs

model::StageResult failed_stage(const std::string& stage, const std::string& why) {
  model::StageResult r;
  r.stage = stage;
  r.pass = false;
  r.note = why;
  return r;
}

// Runs `fn`, turning a libtorch error into a failed stage.
void guarded(std::vector<model::StageResult>& out, const std::string& stage,
             const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    out.push_back(failed_stage(stage, std::string("error: ") + e.what()));
  }
}

// Step logits: full tensors, or the top-16 form the fixtures use for large cards.
void step_logit_stages(std::vector<model::StageResult>& out, const model::ReferenceSet& refs, const std::string& prefix,
                       const torch::Tensor& ours) {
  const std::string full = prefix + "/step_logits_cfg_item0";
  if (refs.has(full)) {
    out.push_back(model::compare_stage(full, ours, refs.at(full), kLogitsTolerance, false));
  } else if (refs.has(full + "_top16_values") && refs.has(full + "_top16_indices")) {
    const auto& idx = refs.at(full + "_top16_indices");
    out.push_back(model::compare_stage(full + "_top16_values", ours.gather(-1, idx.to(torch::kInt64)),
                                       refs.at(full + "_top16_values"), kLogitsTolerance, false));
  }
}

}  // namespace

std::vector<model::StageResult> compare_lm_stages(const model::LmModel& lm, const model::Encodec* enc,
                                                  const model::ReferenceSet& refs) {
  std::vector<model::StageResult> out;
  torch::NoGradGuard no_grad;
  // Null conditions (what unconditional generation feeds the LM).
  for (const auto& name : lm.provider_order()) {
    const std::string e = "null_cond/" + name + "/emb", m = "null_cond/" + name + "/mask";
    if (!refs.has(e)) continue;
    guarded(out, e, [&] {
      auto c = lm.null_condition(name, refs.at(e).size(0));
      out.push_back(model::compare_stage(e, c.emb, refs.at(e), kCondTolerance, false));
      if (refs.has(m)) out.push_back(model::compare_stage(m, c.mask, refs.at(m), 0, true));
    });
  }
  // The text conditioner on the recorded T5 state.
  const bool has_text = refs.has("text_cond/t5_hidden") && refs.has("text_cond/t5_mask");
  auto text_conditions = [&](int64_t rows) {
    auto conds = lm.null_conditions(rows);
    auto h = refs.at("text_cond/t5_hidden").narrow(0, 0, rows);
    auto mk = refs.at("text_cond/t5_mask").narrow(0, 0, rows);
    for (auto& [n, c] : conds)
      if (n == "description") c = lm.t5_condition(n, h, mk);
    return conds;
  };
  if (has_text && refs.has("text_cond/description_emb"))
    guarded(out, "text_cond/description_emb", [&] {
      auto conds = text_conditions(refs.at("text_cond/t5_hidden").size(0));
      for (const auto& [n, c] : conds)
        if (n == "description")
          out.push_back(model::compare_stage("text_cond/description_emb", c.emb, refs.at("text_cond/description_emb"),
                                             kCondTolerance, false));
    });
  // One full forward pass.
  if (refs.has("lm/sequence_in") && refs.has("lm/logits_null"))
    guarded(out, "lm/logits_null", [&] {
      auto seq = refs.at("lm/sequence_in").narrow(0, 0, 1).to(torch::kInt64);
      out.push_back(model::compare_stage("lm/logits_null", lm.forward(seq, lm.null_conditions(1)),
                                         refs.at("lm/logits_null"), kLogitsTolerance, false));
    });
  if (refs.has("lm/codes_in") && refs.has("lm/pred_logits_null"))
    guarded(out, "lm/pred_logits_null", [&] {
      auto codes = refs.at("lm/codes_in").narrow(0, 0, 1).to(torch::kInt64);
      auto p = lm.compute_predictions(codes, lm.null_conditions(1));
      out.push_back(model::compare_stage("lm/pred_logits_null", p.logits, refs.at("lm/pred_logits_null"),
                                         kLogitsTolerance, false));
      if (refs.has("lm/pred_mask_null"))
        out.push_back(model::compare_stage("lm/pred_mask_null", p.mask.to(torch::kInt64),
                                           refs.at("lm/pred_mask_null").to(torch::kInt64), 0, true));
    });
  if (has_text && refs.has("lm/sequence_in")) {
    const bool full = refs.has("lm/logits_text");
    const bool top16 = refs.has("lm/logits_text_top16_values") && refs.has("lm/logits_text_top16_indices");
    if (full || top16)
      guarded(out, "lm/logits_text", [&] {
        auto seq = refs.at("lm/sequence_in").to(torch::kInt64);
        auto logits = lm.forward(seq, text_conditions(seq.size(0)));
        if (full) {
          out.push_back(model::compare_stage("lm/logits_text", logits, refs.at("lm/logits_text"), kLogitsTolerance, false));
        } else {
          auto idx = refs.at("lm/logits_text_top16_indices").to(torch::kInt64);
          out.push_back(model::compare_stage("lm/logits_text_top16_values", logits.gather(-1, idx),
                                             refs.at("lm/logits_text_top16_values"), kLogitsTolerance, false));
        }
      });
  }
  // Generation (AudioCraft's recorded runs: cfg_coef 3.0, max_gen_len = the reference's frames).
  model::CodesDecoder decoder;
  if (enc) decoder = [enc](const torch::Tensor& c) { return enc->decode(c); };
  auto generation = [&](const std::string& prefix, const model::ConditionList& conds, int64_t batch, bool sampled) {
    const std::string codes_key = prefix + "/codes";
    if (!refs.has(codes_key)) return;
    guarded(out, codes_key, [&] {
      const auto& ref_codes = refs.at(codes_key);
      model::GenerateParams p;
      p.max_gen_len = ref_codes.size(2);
      p.cfg_coef = 3.0;
      p.record_step_logits = !sampled;
      if (sampled) {
        p.sampling = {true, 1.0, 50, 0.0};  // the README's recorded run: top_k 50, seed 1234
        p.seed = 1234;
      } else {
        p.sampling.use_sampling = false;
      }
      auto res = model::generate(lm, conds, batch, p, decoder);
      out.push_back(model::compare_stage(codes_key, res.codes, ref_codes, 0, true, sampled));
      if (!sampled) step_logit_stages(out, refs, prefix, res.step_logits);
      if (res.audio.defined() && refs.has(prefix + "/audio"))
        out.push_back(model::compare_stage(prefix + "/audio", res.audio, refs.at(prefix + "/audio"),
                                           model::kAudioTolerance, false, sampled));
    });
  };
  if (refs.has("gen_greedy_uncond/codes")) {
    const int64_t B = refs.at("gen_greedy_uncond/codes").size(0);
    generation("gen_greedy_uncond", lm.null_conditions(B), B, false);
  }
  if (has_text && refs.has("gen_greedy_text/codes")) generation("gen_greedy_text", text_conditions(1), 1, false);
  if (refs.has("gen_sampled_uncond/codes")) {
    const int64_t B = refs.at("gen_sampled_uncond/codes").size(0);
    generation("gen_sampled_uncond", lm.null_conditions(B), B, true);
  }
  return out;
}

void run_reference(const std::string& path, const model::LmModel* lm, const model::Encodec* enc, Report& report) {
  format::Findings read_findings;
  auto refs = model::load_reference(path, read_findings);
  if (!refs) {
    auto f = format::make_error("MG-REF-READ", "cannot read the reference file: " + refs.error().message,
                                "pass a refs.pt holding {'tensors': {...}} that torch.load(weights_only=True) reads");
    f.file = path;
    report.findings.add(f);
    return;
  }
  std::vector<model::StageResult> stages;
  if (enc) {
    try {
      stages = model::compare_encodec_stages(*enc, *refs);
    } catch (const std::exception& e) {
      stages.push_back(failed_stage("encodec", std::string("error: ") + e.what()));
    }
  } else {
    bool any = false;
    for (const auto& [name, _] : refs->tensors) any = any || name.rfind("encodec/", 0) == 0;
    if (any)
      report.findings.add(format::make_warning("MG-REF-MISSING",
                                               "refs.pt has encodec/* stages but no compression model was built",
                                               "check the compression file's findings above"));
  }
  if (lm) {
    auto lm_stages = compare_lm_stages(*lm, enc, *refs);
    stages.insert(stages.end(), lm_stages.begin(), lm_stages.end());
  }
  if (stages.empty())
    report.findings.add(format::make_warning("MG-REF-MISSING", "no stage of " + path + " could be compared",
                                             "refs.pt needs the tensors listed in corpus/audiocraft-tiny/README.md"));
  for (const auto& s : stages) {
    ReferenceStage r;
    r.stage = s.stage;
    r.max_abs = s.max_abs;
    r.tolerance = s.tolerance;
    r.status = s.informative ? "info" : s.pass ? "pass" : "fail";
    r.first_diff_index = s.first_diff_index;
    r.note = s.note;
    if (s.informative && r.note.empty()) r.note = "sampled: informative (RNG parity with AudioCraft is not guaranteed)";
    if (r.status == "fail") {
      std::string idx;
      for (size_t i = 0; i < s.first_diff_index.size(); ++i) idx += (i ? "," : "") + std::to_string(s.first_diff_index[i]);
      char detail[160];
      std::snprintf(detail, sizeof detail, "max |diff| %.6g > tolerance %.3g", s.max_abs, s.tolerance);
      std::string msg = "stage " + s.stage + " differs from AudioCraft's reference: " + detail;
      if (!idx.empty()) {
        char at[128];
        std::snprintf(at, sizeof at, " (mgcheck %.9g, AudioCraft %.9g)", s.actual_at_diff, s.expected_at_diff);
        msg += "; first at [" + idx + "]" + at;
      }
      if (!s.note.empty()) msg += "; " + s.note;
      auto f = format::make_error("MG-REF-MISMATCH", msg,
                                  "the rebuilt model disagrees with AudioCraft here: report the stage and index; "
                                  "if the export was changed, regenerate refs.pt");
      f.file = path;
      f.name = s.stage;
      report.findings.add(f);
    }
    report.reference.push_back(r);
  }
}

}  // namespace mgcheck::harness::deep
