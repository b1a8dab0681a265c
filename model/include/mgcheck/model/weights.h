// The libtorch boundary for weights: format/'s checked TensorViews become torch tensors without a second
// file read (views into the mapping; a copy only when the dtype changes, as load_state_dict casts), and
// strict loading — every expected parameter/buffer is taken exactly once; missing, mis-shaped or unused
// (unexpected) names become findings, never silent skips.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/finding.h"

namespace mgcheck::model {

class WeightArena;

// A non-owning torch view of a checked tensor (same dtype). The Checkpoint's ByteSource must outlive it.
// Returns an undefined tensor for dtypes libtorch cannot view (the quantized ones).
torch::Tensor view_as_torch(const format::TensorView& t);

// Name → tensor for one state dict (e.g. the "best_state" dict of an export).
class WeightMap {
 public:
  // `prefix` selects the state dict inside the checkpoint: tensors whose path starts with prefix + "/"
  // (e.g. "best_state"); the map key is the remainder of the path.
  WeightMap(const format::Checkpoint& ckpt, const std::string& prefix);
  // Tensors already in memory (random-weight benchmarks, tests). `file` names them in findings.
  WeightMap(std::map<std::string, torch::Tensor> tensors, std::string file);

  // Takes `name` as a tensor of `shape` converted to `dtype` on `device` (a contiguous copy when the dtype
  // or device differs, else a view). Missing → MG-MODEL-MISSING-WEIGHT; wrong shape → MG-MODEL-SHAPE;
  // a floating parameter stored as integers (or the reverse) → MG-MODEL-DTYPE; a second take of the
  // same name → MG-MODEL-DUPLICATE-TAKE. Each pushes a finding and returns an undefined tensor.
  torch::Tensor take(const std::string& name, const std::vector<int64_t>& shape, torch::Dtype dtype,
                     const torch::Device& device, format::Findings& findings);
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The dtype `name` is stored in; nullopt when absent or not viewable by libtorch.
  std::optional<torch::Dtype> stored_scalar_type(const std::string& name) const;
  // Every name in the map, sorted.
  std::vector<std::string> names() const;
  // Names never taken: each becomes MG-MODEL-UNEXPECTED-WEIGHT (call once, after building).
  void report_unused(format::Findings& findings) const;
  const std::string& file() const { return file_; }

 private:
  // The tensor as stored (a view for checkpoint tensors); undefined when its dtype has no torch view.
  struct Entry {
    torch::Tensor tensor;
    std::string stored_dtype;  // for messages
  };
  std::map<std::string, Entry> tensors_;
  std::set<std::string> taken_;
  std::string file_;
  // Converted CPU copies live here (weight_arena.h); each tensor's deleter keeps the arena alive.
  std::shared_ptr<WeightArena> arena_;
};

// Converts a libtorch exception at the model boundary into a finding (MG-MODEL-TORCH-ERROR).
format::Finding torch_error_finding(const std::exception& e, const std::string& what);

// Sets the thread configuration explicitly and returns a description for reports:
// torch intra-op threads (default 1) and OpenBLAS threads (default 2). See DEVELOPERS notes in README.
std::string configure_threads(int torch_threads, int blas_threads);

// "float32", "bfloat16", ... for reports.
std::string dtype_label(torch::Dtype dtype);

}  // namespace mgcheck::model
