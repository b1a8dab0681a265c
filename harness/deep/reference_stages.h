// `deep --reference refs.pt`: recomputes every stage whose inputs refs.pt holds (contract §5) with the
// rebuilt fp32 models — EnCodec stages through model::compare_encodec_stages, LM, conditioning and
// generation stages through model::compare_lm_stages (one tolerance policy, model/generate.h, the one the
// model tests check) — and records each in the report.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/harness/report.h"
#include "mgcheck/model/encodec.h"
#include "mgcheck/model/lm.h"
#include "mgcheck/model/reference.h"

namespace mgcheck::harness::deep {

// Loads `path`, runs every stage (EnCodec ones when `encodec` is given), and appends them to
// report.reference; each failure adds MG-REF-MISMATCH naming the stage and the first differing index.
void run_reference(const std::string& path, const model::LmModel* lm, const model::Encodec* encodec, Report& report);

}  // namespace mgcheck::harness::deep
