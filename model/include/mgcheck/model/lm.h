// AudioCraft's MusicGen language model (LMModel) rebuilt in libtorch from the typed LmConfig and a
// strict WeightMap (musicgen-model.md §3, §7): token embeddings, the streaming transformer (sin / rope /
// sin_rope positions, pre/post-norm, causal self-attention with kv_repeat and q/k LayerNorm, cross
// attention, layer scale, relu/gelu and the gated activations), out_norm, one head per codebook, the
// condition provider's projections, null conditions and the fuser.
//
// Two ways to run it: `forward` (one full pass, no cache, as LMModel.forward) and a stream (`begin_stream`
// then `step`) with a preallocated KV cache and cross-attention keys/values computed once.
// Forward calls run under inference mode and throw on misuse; callers at the harness boundary convert
// exceptions with torch_error_finding().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/result.h"
#include "mgcheck/model/weights.h"

namespace mgcheck::model {

struct LmOptions {
  torch::Device device = torch::kCPU;
  // Compute dtype of every module (AudioCraft on CPU: float32). bfloat16 is supported on CPU.
  torch::Dtype dtype = torch::kFloat32;
  // Replicate AudioCraft's memory-efficient rope offset during cached decoding (it reads the cache's
  // head dimension, H, instead of its length; musicgen-model.md §3.4). Off: the mathematically
  // consistent offset, so cached decoding equals one full forward.
  bool audiocraft_rope_offset_quirk = false;
  // float32 on a CPU with the small-linear kernel: keep the transformer's and heads' matrices in the file's
  // float16/bfloat16 (views of the mapping, widened exactly when read) instead of converted fp32 copies.
  // Same numbers up to summation order; no 1.7 GB of fresh memory; half the bytes per decode step.
  bool matrices_in_file_dtype = true;
};

// One condition as the provider hands it to the fuser: emb [B, T, D] (model dtype), mask [B, T] int64.
struct Condition {
  torch::Tensor emb;
  torch::Tensor mask;
};
// Conditions by attribute name, in the provider's order (text, then wav, then joint embeddings).
using ConditionList = std::vector<std::pair<std::string, Condition>>;

// The KV-cached state of one generation (AudioCraft's streaming state), allocated once by begin_stream.
struct LmStream {
  int64_t batch = 0;
  int64_t capacity = 0;   // transformer positions the cache can hold (prepended tokens included)
  int64_t length = 0;     // positions already processed (the streaming offset)
  bool first = true;      // the fuser prepends only on the first call
  std::vector<torch::Tensor> keys, values;              // per layer [B, H_kv, capacity, hd]
  std::vector<torch::Tensor> cross_keys, cross_values;  // per layer [B, H, Tc, hd] (cross attention)
  ConditionList conditions;                              // kept for prepend / sum / interpolate
};

struct LmPredictions {
  torch::Tensor logits;  // [B, K, T, card], NaN where mask is false
  torch::Tensor mask;    // [B, K, T] bool
};

class LmModel {
 public:
  // Builds the model and loads every parameter strictly (unused names reported). Refusals (pushed, and
  // the first returned): MG-MODEL-CONFIG, MG-MODEL-MISSING-WEIGHT, MG-MODEL-SHAPE, MG-MODEL-DTYPE,
  // MG-MODEL-UNEXPECTED-WEIGHT, MG-MODEL-TORCH-ERROR. Warnings for configurations AudioCraft itself
  // cannot run the same way (MG-MODEL-LM-GATED-ACTIVATION, MG-MODEL-LM-ROPE-OFFSET, ...).
  static format::Result<LmModel> build(const format::LmConfig& cfg, WeightMap& weights, const LmOptions& options,
                                       format::Findings& findings);

  LmModel(LmModel&&) noexcept;
  LmModel& operator=(LmModel&&) noexcept;
  ~LmModel();

  const format::LmConfig& config() const;
  const LmOptions& options() const;
  int64_t num_codebooks() const;
  int64_t card() const;
  int64_t special_token() const { return card(); }
  int64_t parameter_count() const;

  // Conditioner names in the provider's order (text, wav, joint-embedding kinds; cfg order within).
  std::vector<std::string> provider_order() const;
  // What AudioCraft's conditioner produces for a null (dropped) attribute, batch B (§5.4, §7).
  Condition null_condition(const std::string& name, int64_t batch) const;
  ConditionList null_conditions(int64_t batch) const;
  // T5Conditioner on a recorded encoder state: output_proj(hidden) · mask. hidden [B, L, internal_dim].
  Condition t5_condition(const std::string& name, const torch::Tensor& hidden, const torch::Tensor& mask) const;
  // LUTConditioner on token ids [B, L] with mask [B, L]: output_proj(embed(tokens)) · mask.
  Condition lut_condition(const std::string& name, const torch::Tensor& tokens, const torch::Tensor& mask) const;
  // Concatenates condition lists along the batch (conditional block first): CFG's 2B batch.
  static ConditionList concat_batch(const std::vector<const ConditionList*>& blocks);

  // LMModel.forward: sequence [B, K, S] int64 → logits [B, K, S, card] (float32 copy of the model dtype).
  torch::Tensor forward(const torch::Tensor& sequence, const ConditionList& conditions) const;
  // LMModel.compute_predictions with the configured pattern (keep_only_valid_steps = true).
  LmPredictions compute_predictions(const torch::Tensor& codes, const ConditionList& conditions) const;

  // Streaming: preallocates the cache for `max_steps` sequence steps (plus prepended tokens) and computes
  // the cross-attention keys/values once. `step` feeds tokens [B, K, n] and returns [B, K, n, card] logits
  // in the model dtype (a view may be reused by the next call: copy what you keep).
  LmStream begin_stream(const ConditionList& conditions, int64_t batch, int64_t max_steps) const;
  torch::Tensor step(LmStream& stream, const torch::Tensor& tokens) const;

 private:
  struct Impl;
  explicit LmModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Sinusoidal embedding of AudioCraft's create_sin_embedding: positions [B, T, 1] → [B, T, dim], cosines
// first, computed in `dtype`.
torch::Tensor sin_embedding(const torch::Tensor& positions, int64_t dim, double max_period, torch::Dtype dtype);

}  // namespace mgcheck::model
