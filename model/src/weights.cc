// WeightMap: checked tensors → torch tensors, with strict (load_state_dict(strict=True)-like) accounting.
#include "mgcheck/model/weights.h"

#include "mgcheck/model/small_linear.h"
#include "mgcheck/model/weight_arena.h"

#include <sstream>

#include <ATen/Parallel.h>

#ifdef MGCHECK_HAVE_OPENBLAS
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}
#endif

namespace mgcheck::model {
namespace {

std::optional<torch::Dtype> torch_dtype(format::DType d) {
  using format::DType;
  switch (d) {
    case DType::float64: return torch::kFloat64;
    case DType::float32: return torch::kFloat32;
    case DType::float16: return torch::kFloat16;
    case DType::bfloat16: return torch::kBFloat16;
    case DType::int64: return torch::kInt64;
    case DType::int32: return torch::kInt32;
    case DType::int16: return torch::kInt16;
    case DType::int8: return torch::kInt8;
    case DType::uint8: return torch::kUInt8;
    case DType::bool_: return torch::kBool;
    case DType::complex64: return torch::kComplexFloat;
    case DType::complex128: return torch::kComplexDouble;
    default: return std::nullopt;  // quantized storages: never views, never weights of these models
  }
}

std::string shape_text(c10::IntArrayRef s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

format::Finding weight_finding(std::string code, const std::string& file, const std::string& name,
                               std::string message, std::string hint) {
  format::Finding f = format::make_error(std::move(code), std::move(message), std::move(hint));
  f.file = file;
  f.name = name;
  return f;
}

bool torch_dtype_known(const std::string& name) {
  auto d = format::dtype_from_name(name);
  return d && torch_dtype(*d).has_value();
}

}  // namespace

std::string dtype_label(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat64: return "float64";
    case torch::kInt64: return "int64";
    default: return std::string(c10::toString(dtype));
  }
}

torch::Tensor view_as_torch(const format::TensorView& t) {
  auto dt = torch_dtype(t.dtype);
  if (!dt) return {};
  // Re-check the view against its storage (read_checkpoint reports bad views but still lists them): the
  // highest element addressed must lie inside the bytes we hold.
  if (t.sizes.size() != t.strides.size() || t.storage_offset < 0) return {};
  if (t.numel != 0) {
    unsigned __int128 hi = static_cast<uint64_t>(t.storage_offset);
    for (size_t i = 0; i < t.sizes.size(); ++i) {
      if (t.sizes[i] <= 0 || t.strides[i] < 0) return {};
      hi += static_cast<unsigned __int128>(t.sizes[i] - 1) * static_cast<uint64_t>(t.strides[i]);
    }
    if ((hi + 1) * format::itemsize(t.dtype) > t.storage.size()) return {};
  }
  // Element 0 of the view; read_checkpoint guarantees [first_byte, first_byte + span_bytes) lies in the
  // storage, and that the storage offset is in range. The bytes are never written through this view.
  const uint64_t offset_bytes = static_cast<uint64_t>(t.storage_offset) * format::itemsize(t.dtype);
  auto* data = const_cast<uint8_t*>(t.storage.data()) + (t.numel == 0 ? 0 : offset_bytes);
  auto options = torch::TensorOptions().dtype(*dt).device(torch::kCPU);
  if (t.numel == 0) return torch::empty(t.sizes, options);
  return torch::from_blob(data, t.sizes, t.strides, options);
}

WeightMap::WeightMap(const format::Checkpoint& ckpt, const std::string& prefix) : file_(ckpt.file) {
  const std::string head = prefix.empty() ? std::string() : prefix + "/";
  for (const auto& named : ckpt.named) {
    if (named.path.compare(0, head.size(), head) != 0) continue;
    if (named.tensor >= ckpt.tensors.size()) continue;
    const auto& view = ckpt.tensors[named.tensor];
    Entry e;
    e.tensor = view_as_torch(view);
    e.stored_dtype = format::dtype_name(view.dtype);
    // A duplicate path keeps its first tensor; the pickle layer already reported the duplicate key.
    tensors_.emplace(named.path.substr(head.size()), std::move(e));
  }
}

WeightMap::WeightMap(std::map<std::string, torch::Tensor> tensors, std::string file) : file_(std::move(file)) {
  for (auto& [name, t] : tensors) {
    Entry e;
    e.stored_dtype = t.defined() ? dtype_label(t.scalar_type()) : "undefined";
    e.tensor = std::move(t);
    tensors_.emplace(name, std::move(e));
  }
}

std::optional<torch::Dtype> WeightMap::stored_scalar_type(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end() || !it->second.tensor.defined()) return std::nullopt;
  return it->second.tensor.scalar_type();
}

std::vector<std::string> WeightMap::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

torch::Tensor WeightMap::take(const std::string& name, const std::vector<int64_t>& shape, torch::Dtype dtype,
                              const torch::Device& device, format::Findings& findings) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    findings.push(weight_finding("MG-MODEL-MISSING-WEIGHT", file_, name,
                                 "expected tensor '" + name + "' " + shape_text(shape) + " is missing",
                                 "the file does not match its own xp.cfg; re-export it with AudioCraft"));
    return {};
  }
  if (!taken_.insert(name).second) {
    findings.push(weight_finding("MG-MODEL-DUPLICATE-TAKE", file_, name,
                                 "tensor '" + name + "' would be loaded into two places",
                                 "internal error in mgcheck's model builder; please report it"));
    return {};
  }
  const torch::Tensor& stored = it->second.tensor;
  if (!stored.defined() && torch_dtype_known(it->second.stored_dtype)) {
    findings.push(weight_finding("MG-MODEL-BAD-TENSOR", file_, name,
                                 "tensor '" + name + "' does not lie inside its storage and cannot be loaded",
                                 "the file is damaged; the tensor layer's findings say where"));
    return {};
  }
  if (!stored.defined()) {
    findings.push(weight_finding("MG-MODEL-DTYPE", file_, name,
                                 "tensor '" + name + "' has dtype " + it->second.stored_dtype +
                                     ", which cannot be loaded into a " + dtype_label(dtype) + " parameter",
                                 "store model weights as float32, float16 or bfloat16"));
    return {};
  }
  if (stored.sizes() != c10::IntArrayRef(shape)) {
    findings.push(weight_finding("MG-MODEL-SHAPE", file_, name,
                                 "tensor '" + name + "' has shape " + shape_text(stored.sizes()) +
                                     ", the configuration expects " + shape_text(shape),
                                 "the weights do not belong to this xp.cfg; re-export the model"));
    return {};
  }
  const bool want_float = c10::isFloatingType(dtype);
  if (want_float != c10::isFloatingType(stored.scalar_type()) || c10::isComplexType(stored.scalar_type())) {
    findings.push(weight_finding("MG-MODEL-DTYPE", file_, name,
                                 "tensor '" + name + "' has dtype " + it->second.stored_dtype + ", expected " +
                                     dtype_label(dtype),
                                 "store model weights as float32, float16 or bfloat16"));
    return {};
  }
  if (stored.scalar_type() == dtype && stored.device() == device) return stored;
  // load_state_dict copies into the model's parameters, casting; so do we (a new contiguous tensor). On
  // the CPU the copy goes into the huge-page arena.
  if (device.is_cpu() && stored.device().is_cpu()) {
    if (!arena_) arena_ = std::make_shared<WeightArena>();
    const size_t bytes = static_cast<size_t>(stored.numel()) * c10::elementSize(dtype);
    if (void* p = arena_->allocate(bytes)) {
      auto dst = torch::from_blob(p, shape, [keep = arena_](void*) {}, torch::TensorOptions().dtype(dtype));
      dst.copy_(stored);
      return dst;
    }
  }
  return stored.to(device, dtype, /*non_blocking=*/false, /*copy=*/true).contiguous();
}

void WeightMap::report_unused(format::Findings& findings) const {
  for (const auto& kv : tensors_) {
    if (taken_.count(kv.first)) continue;
    findings.push(weight_finding("MG-MODEL-UNEXPECTED-WEIGHT", file_, kv.first,
                                 "tensor '" + kv.first + "' is not used by the model its xp.cfg describes",
                                 "the file does not match its own xp.cfg; re-export it with AudioCraft"));
  }
}

format::Finding torch_error_finding(const std::exception& e, const std::string& what) {
  std::string msg = e.what();
  // libtorch messages carry multi-line backtraces; the first line says what went wrong.
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return format::make_error("MG-MODEL-TORCH-ERROR", what + ": libtorch error: " + msg,
                            "the model could not run with these weights and settings; see the message");
}

std::string configure_threads(int torch_threads, int blas_threads) {
  if (torch_threads < 1) torch_threads = 1;
  if (blas_threads < 1) blas_threads = 1;
  at::set_num_threads(torch_threads);
  std::ostringstream o;
  o << "torch intra-op threads " << at::get_num_threads();
#ifdef MGCHECK_HAVE_OPENBLAS
  openblas_set_num_threads(blas_threads);
  o << ", OpenBLAS threads " << openblas_get_num_threads();
#else
  o << ", OpenBLAS not linked (requested " << blas_threads << ")";
#endif
  // The decode step's few-row linears run in small_linear's pool instead of OpenBLAS: same thread count.
  set_small_linear_threads(blas_threads);
  if (small_linear_supported())
    o << ", small-linear kernel threads " << small_linear_threads() << " (AVX-512)";
  else
    o << ", small-linear kernel off (no AVX-512: at::linear)";
  return o.str();
}

}  // namespace mgcheck::model
