// libtorch helpers shared by `deep` and the generate/encode/decode commands: building the rebuilt models
// from what quick already read, the text conditioning state, tensor ↔ plain-buffer conversions and the
// .pt outputs written with mgcheck's own writer.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mgcheck/format/finding.h"
#include "mgcheck/harness/audio_metrics.h"
#include "mgcheck/harness/quick.h"
#include "mgcheck/harness/wav_io.h"
#include "mgcheck/model/encodec.h"
#include "mgcheck/model/lm.h"

namespace mgcheck::harness::deep {

// "fp32" → kFloat32, "bf16" → kBFloat16, "fp16" → kHalf.
torch::Dtype dtype_of(const std::string& precision);

// Builds the LM / EnCodec of an export quick has read. Build findings go to `findings` (each named with
// `cell` when non-empty). nullopt when the model could not be built.
std::optional<model::LmModel> build_lm(const QuickResult& q, const torch::Device& device, torch::Dtype dtype,
                                       format::Findings& findings);
std::optional<model::Encodec> build_encodec(const QuickResult& q, const torch::Device& device, torch::Dtype dtype,
                                            format::Findings& findings);

// A recorded text-encoder state: hidden [L, D], mask [L].
struct TextState {
  torch::Tensor hidden, mask;
  std::string source;  // "built-in" or the file
};
// The name of the model's text conditioner (t5 or lut), "" when it has none.
std::string text_conditioner_name(const format::LmConfig& cfg);
// A deterministic, non-zero state of width D (8 positions, smooth values of order 0.5, mask all ones).
TextState default_text_state(int64_t width);
// Reads {'hidden': [L, D], 'mask': [L]} from a torch.save file. False with `error` on a bad file.
bool load_text_state(const std::string& path, TextState& out, std::string& error);

// The conditional block for `config` ("text" swaps the text conditioner's null entry for the state fed
// through the model's own conditioner; everything else: null conditions), batch B.
model::ConditionList conditions_for(const model::LmModel& lm, const std::string& config, int64_t batch,
                                    const TextState& text);

// Tensor → plain buffers (CPU, contiguous).
std::vector<float> to_floats(const torch::Tensor& t);
std::vector<int64_t> to_int64s(const torch::Tensor& t);
std::vector<int64_t> shape_of(const torch::Tensor& t);

// Audio metrics + stuck fraction of one cell's outputs (audio [B, C, N], codes [B, K, T]).
AudioMetrics measure(const torch::Tensor& audio, const torch::Tensor& codes, double sample_rate,
                     const AudioThresholds& t);

// Writes each item of audio [B, C, N] to DIR/<stem>_<b>.wav (32-bit float, untouched). Returns the paths.
bool write_item_wavs(const std::string& dir, const std::string& stem, const torch::Tensor& audio, int sample_rate,
                     std::vector<std::string>& written, std::string& error);

// Writes {name: tensor} with mgcheck's torch.save writer (loads with torch.load(weights_only=True)).
format::Status write_tensors_pt(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& items,
                                bool overwrite);

// Reads the tensor `key` of a {key: Tensor} torch.save file (copied to memory). nullopt with `error`.
std::optional<torch::Tensor> read_tensor_pt(const std::string& path, const std::string& key, std::string& error);

// Environment block for reports: torch version, thread settings, CPU model, device.
nlohmann::json environment(int torch_threads, int blas_threads, const std::string& device);

}  // namespace mgcheck::harness::deep
