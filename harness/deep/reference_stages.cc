#include "reference_stages.h"

#include <torch/torch.h>

#include <cstdio>

#include "mgcheck/model/generate.h"
#include "mgcheck/model/weights.h"

namespace mgcheck::harness::deep {

namespace {

model::StageResult failed_stage(const std::string& stage, const std::string& why) {
  model::StageResult r;
  r.stage = stage;
  r.pass = false;
  r.note = why;
  return r;
}

}  // namespace

void run_reference(const std::string& path, const model::LmModel* lm, const model::Encodec* enc, Report& report) {
  format::Findings read_findings;
  auto refs = model::load_reference(path, read_findings);
  if (!refs) {
    auto f = format::make_error("MG-REF-READ", "cannot read the reference file: " + refs.error().message,
                                "pass a refs.pt holding {'tensors': {...}} that torch.load(weights_only=True) reads");
    f.file = path;
    report.findings.push(f);
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
      report.findings.push(format::make_warning("MG-REF-MISSING",
                                               "refs.pt has encodec/* stages but no compression model was built",
                                               "check the compression file's findings above"));
  }
  if (lm) {
    model::CodesDecoder decoder;
    if (enc) decoder = [enc](const torch::Tensor& codes) { return enc->decode(codes); };
    auto lm_stages = model::compare_lm_stages(*lm, *refs, decoder);
    stages.insert(stages.end(), lm_stages.begin(), lm_stages.end());
  }
  if (stages.empty())
    report.findings.push(format::make_warning("MG-REF-MISSING", "no stage of " + path + " could be compared",
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
      report.findings.push(f);
    }
    report.reference.push_back(r);
  }
}

}  // namespace mgcheck::harness::deep
