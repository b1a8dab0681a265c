// Weight statistics in one streaming pass over every tensor of a checkpoint (contract §2 `quick`, §6):
// NaN / Inf / zero / subnormal counts per tensor, decoded by hand from the raw bytes (no libtorch).
// The per-dtype kernel is a plain function over a byte span of whole elements so it can be fused with
// another pass over the same bytes (e.g. the CRC of the storage record).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/dtype.h"
#include "mgcheck/format/finding.h"

namespace mgcheck::format {

// Counters for a run of elements of one floating dtype. Counts are over elements; "first_*" are element
// indices relative to the start of the span the kernel was given (nullopt: none seen).
struct FloatCounts {
  uint64_t elements = 0;
  uint64_t nan = 0;
  uint64_t inf = 0;
  uint64_t zero = 0;       // +0 and -0
  uint64_t subnormal = 0;
  std::optional<uint64_t> first_nan;
  std::optional<uint64_t> first_inf;
};

// The kernel: counts over `bytes`, which holds whole little-endian elements of `dtype` (float16,
// bfloat16, float32, float64; other dtypes count elements only). Trailing bytes that do not make a
// whole element are ignored. Adds into `out`; `first_*` indices are offset by `index_base`.
void scan_float_bytes(DType dtype, std::span<const uint8_t> bytes, FloatCounts& out,
                      uint64_t index_base = 0) noexcept;

// Per-tensor result for reports.
struct TensorStats {
  std::string name;               // NamedTensor::path
  uint32_t tensor = 0;            // index into Checkpoint::tensors
  DType dtype = DType::float32;
  uint64_t numel = 0;
  bool floating = false;
  FloatCounts counts;             // floating tensors only
  std::optional<uint64_t> first_nan_offset;  // file offsets of the first bad element
  std::optional<uint64_t> first_inf_offset;
  bool all_zero = false;          // floating, numel > 0, every element ±0
};

// A tensor's counts gathered by another pass over its bytes (byte_pass.h): what scan_tensor would find.
struct ScannedCounts {
  FloatCounts counts;                        // first_* are linear element indices within the tensor
  std::optional<uint64_t> first_nan_offset;  // file offsets
  std::optional<uint64_t> first_inf_offset;
};

struct WeightsScanOptions {
  // The dtype AudioCraft writes for floating tensors of this file (float16 for the LM, float32 for
  // EnCodec, musicgen-model.md §1.2); others get one MG-WEIGHTS-DTYPE note. nullopt: no expectation.
  std::optional<DType> expected_float_dtype;
  // Only tensors whose path starts with this prefix ("best_state/"); empty: every reachable tensor.
  std::string path_prefix;
  // Counts already gathered, by tensor index (Checkpoint::tensors): such tensors are not read again.
  const std::vector<std::optional<ScannedCounts>>* precomputed = nullptr;
};

struct WeightsScan {
  std::vector<TensorStats> tensors;          // in Checkpoint::named order
  std::map<std::string, uint64_t> dtype_counts;  // dtype name → tensor count
  uint64_t bytes_scanned = 0;
  uint64_t nan_tensors = 0, inf_tensors = 0, all_zero_tensors = 0;
  uint64_t subnormal_elements = 0;
};

// Scans every named tensor (over the viewed elements, strided views included). Findings:
// MG-WEIGHTS-NAN / MG-WEIGHTS-INF (error, per tensor: count + file offset of the first bad element),
// MG-WEIGHTS-ALL-ZERO (warning, per tensor), MG-WEIGHTS-SUBNORMAL (note, one per file),
// MG-WEIGHTS-DTYPE (note, one per file).
WeightsScan scan_weights(const Checkpoint& ckpt, const WeightsScanOptions& opts, Findings& findings);

}  // namespace mgcheck::format
