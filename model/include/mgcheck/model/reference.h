// Comparison of rebuilt models against AudioCraft's own numbers: a refs.pt file
// ({'tensors': {name: Tensor}, 'meta_json': str}, corpus/audiocraft-tiny/README.md) read through mgcheck's
// reader, and one StageResult per recomputed stage. EnCodec stages live here; the LM and the harness add
// theirs with compare_stage() and the same result type.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/result.h"
#include "mgcheck/model/encodec.h"

namespace mgcheck::model {

// One file read strictly, kept mapped: tensors viewed from it stay valid while this lives.
struct LoadedCheckpoint {
  std::unique_ptr<format::ByteSource> source;
  format::Checkpoint checkpoint;

  // A top-level str entry of the root dict (e.g. "xp.cfg", "meta_json"); nullopt when absent / not a str.
  std::optional<std::string> root_string(const std::string& key) const;
};

// Maps and reads `path` with read_checkpoint (default limits). Errors: MG-IO-*, MG-ZIP-*, MG-PICKLE-*,
// MG-TENSOR-* from the reader.
format::Result<LoadedCheckpoint> load_checkpoint_file(const std::string& path, format::Findings& findings);

// refs.pt: the `tensors` dict as torch views (names like "encodec/codes") plus meta_json.
struct ReferenceSet {
  LoadedCheckpoint file;
  std::map<std::string, torch::Tensor> tensors;
  std::string meta_json;
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  const torch::Tensor& at(const std::string& name) const { return tensors.at(name); }
};

// Errors: the reader's, or MG-REF-READ when the root is not {'tensors': {...}, ...}.
format::Result<ReferenceSet> load_reference(const std::string& path, format::Findings& findings);

struct StageResult {
  std::string stage;                       // "encodec/codes", "lm/logits_null", ...
  double max_abs = 0.0;                    // max |actual − expected| (codes: number of differing codes)
  double tolerance = 0.0;                  // atol; 0 with exact
  bool exact = false;                      // integer stages must match exactly
  bool pass = false;
  bool informative = false;                // reported, but does not decide the verdict
  std::vector<int64_t> shape;              // expected shape
  int64_t first_diff_flat = -1;            // first element beyond tolerance (row-major), -1 if none
  std::vector<int64_t> first_diff_index;   // the same as a multi-dim index
  double actual_at_diff = 0.0, expected_at_diff = 0.0;
  std::string note;                        // shape mismatch, skip reason, NaN, precision, ...
};

// Compares `actual` with `expected` (both moved to CPU float64 / int64 for the comparison). NaN in
// `expected` matches NaN in `actual` only (AudioCraft marks invalid logits with NaN). A shape mismatch
// fails with a note.
StageResult compare_stage(const std::string& stage, const torch::Tensor& actual, const torch::Tensor& expected,
                          double tolerance, bool exact, bool informative = false);

// Default tolerances for EnCodec stages (README "Tolerances"): latents and audio 1e-5 atol, codes exact.
inline constexpr double kLatentTolerance = 1e-5;
inline constexpr double kAudioTolerance = 1e-5;

// Recomputes every `encodec/*` stage present in `refs` with `model` (codes, latent, quantized_latent,
// decoded, short_codes, short_decoded), feeding encodec/input and encodec/short_input converted to the
// model's dtype and device. `tolerance_scale` multiplies the float tolerances (1 for float32; callers
// running reduced precision report their measured errors rather than claiming a tolerance). Decoding
// uses AudioCraft's own codes so that audio stages are compared on the same tokens.
std::vector<StageResult> compare_encodec_stages(const Encodec& model, const ReferenceSet& refs,
                                                double tolerance_scale = 1.0);

// One line per stage, for test logs and reports.
std::string format_stage(const StageResult& r);

}  // namespace mgcheck::model
