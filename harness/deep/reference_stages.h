// `deep --reference refs.pt`: recomputes every stage whose inputs refs.pt holds (contract §5) with the
// rebuilt fp32 models — EnCodec stages through model/'s compare_encodec_stages, LM, conditioning and
// generation stages here with model::compare_stage — and records each in the report.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/harness/report.h"
#include "mgcheck/model/encodec.h"
#include "mgcheck/model/lm.h"
#include "mgcheck/model/reference.h"

namespace mgcheck::harness::deep {

// LM / conditioning / generation stages present in `refs` (null_cond/*, text_cond/description_emb,
// lm/logits_null, lm/pred_*, lm/logits_text (or its top-16 form), gen_greedy_uncond/*, gen_greedy_text/*,
// gen_sampled_uncond/* (informative)). `encodec` may be null (LM-only refs or no compression model).
// A stage whose computation throws is a failed stage with the message as its note.
std::vector<model::StageResult> compare_lm_stages(const model::LmModel& lm, const model::Encodec* encodec,
                                                  const model::ReferenceSet& refs);

// Loads `path`, runs every stage (EnCodec ones when `encodec` is given), and appends them to
// report.reference; each failure adds MG-REF-MISMATCH naming the stage and the first differing index.
void run_reference(const std::string& path, const model::LmModel* lm, const model::Encodec* encodec, Report& report);

}  // namespace mgcheck::harness::deep
