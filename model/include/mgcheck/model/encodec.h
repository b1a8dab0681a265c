// AudioCraft's EnCodec compression model rebuilt in libtorch for inference (musicgen-model.md §6):
// SEANet encoder/decoder, residual vector quantiser, optional renormalisation, and the interleaved-stereo
// wrapper. Every setting comes from the typed CompressionConfig; weights are loaded strictly from a
// WeightMap and the build is refused (findings, no model) before any forward pass when anything is
// missing, mis-shaped, unexpected or unsupported.
//
// Forward calls run under inference mode and throw on misuse (wrong rank, dtype, device, code range);
// callers at the harness boundary convert exceptions with torch_error_finding().
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include "mgcheck/format/configs.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/result.h"
#include "mgcheck/model/weights.h"

namespace mgcheck::model {

struct EncodecOptions {
  torch::Device device = torch::kCPU;
  // Compute dtype. Weights are cast to it at load (weight norm is folded in float32 first).
  torch::Dtype dtype = torch::kFloat32;
  // Wrap the (mono) model as AudioCraft's InterleaveStereoCompressionModel (the LM's
  // interleave_stereo_codebooks.use); per_timestep interleaves along time instead of codebooks.
  bool interleave_stereo = false;
  bool interleave_per_timestep = false;
};

struct EncodeResult {
  torch::Tensor codes;  // [B, K, T] int64
  torch::Tensor scale;  // undefined unless renormalize (then [B, 1], or [B, 2, 1] for stereo)
};

class Encodec {
 public:
  // Builds the model. Refusals (each also pushed to `findings`, then the first is returned):
  // MG-MODEL-ENCODEC-CONFIG (unsupported or inconsistent setting), MG-MODEL-MISSING-WEIGHT, MG-MODEL-SHAPE,
  // MG-MODEL-DTYPE, MG-MODEL-UNEXPECTED-WEIGHT, MG-MODEL-PRECISION (dtype/device not available),
  // MG-MODEL-TORCH-ERROR.
  static format::Result<Encodec> build(const format::CompressionConfig& cfg, WeightMap& weights,
                                       const EncodecOptions& options, format::Findings& findings);

  Encodec(Encodec&&) noexcept;
  Encodec& operator=(Encodec&&) noexcept;
  ~Encodec();

  // audio [B, channels(), N] (model dtype/device) → codes [B, num_codebooks(), ceil(N / hop)].
  EncodeResult encode(const torch::Tensor& audio) const;
  // codes [B, num_codebooks(), T] → audio [B, channels(), T · hop]. `scale` from encode when renormalising.
  torch::Tensor decode(const torch::Tensor& codes, const torch::Tensor& scale = {}) const;
  // The mono encoder output before quantisation, [B', dimension, T] (stereo: B' = 2B, input viewed as
  // [2B, 1, N], i.e. rows b·2 + c). Renormalisation is applied first when configured.
  torch::Tensor latent(const torch::Tensor& audio) const;
  // quantizer.decode(quantizer.encode(latent)) with the active number of (mono) codebooks.
  torch::Tensor quantize_roundtrip(const torch::Tensor& latent) const;
  // Mono quantiser halves, for callers that hold latents: [B', dim, T] ↔ [B', K_mono, T].
  torch::Tensor quantize(const torch::Tensor& latent) const;
  torch::Tensor dequantize(const torch::Tensor& mono_codes) const;

  int64_t sample_rate() const;
  int64_t frame_rate() const;      // sample_rate // hop (× 2 for per-timestep stereo)
  int64_t hop_length() const;
  int64_t channels() const;        // 2 with the stereo wrapper
  int64_t num_codebooks() const;   // active; × 2 with codebook-interleaved stereo
  int64_t total_codebooks() const; // of the quantiser (mono)
  int64_t cardinality() const;
  int64_t dimension() const;
  // Active codebooks of the wrapped quantiser, 1..total_codebooks(); like AudioCraft's wrapper this is
  // the count BEFORE interleaving. Throws std::invalid_argument outside that range.
  void set_num_codebooks(int64_t n);
  torch::Dtype dtype() const;
  torch::Device device() const;
  int64_t parameter_count() const;  // elements loaded (weights + buffers, as in the file)

 private:
  struct Impl;
  explicit Encodec(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when libtorch can run EnCodec in `dtype` on `device` (probes conv, transposed conv, padding, LSTM
// and matmul on a tiny input). `why` gets the libtorch message when not.
bool encodec_dtype_supported(torch::Dtype dtype, const torch::Device& device, std::string* why = nullptr);

}  // namespace mgcheck::model
