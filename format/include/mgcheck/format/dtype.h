// Tensor element types and the torch storage classes that carry them (torch-save-format.md §3.3).
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace mgcheck::format {

enum class DType : uint8_t {
  float64, float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool_,
  complex64, complex128,
  qint8, quint8, qint32, quint4x2, quint2x4,
};

// Bytes per element.
uint32_t itemsize(DType d) noexcept;
// torch's spelling without the "torch." prefix: "float32", "bool", ...
const char* dtype_name(DType d) noexcept;
// Storage class name (module torch) → dtype, e.g. "FloatStorage" → float32. nullopt if unknown.
std::optional<DType> dtype_from_storage_class(std::string_view name) noexcept;
const char* storage_class_name(DType d) noexcept;
// "float32" / "torch.float32" → dtype.
std::optional<DType> dtype_from_name(std::string_view name) noexcept;
bool is_floating(DType d) noexcept;
bool is_quantized(DType d) noexcept;

}  // namespace mgcheck::format
