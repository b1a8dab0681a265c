#include "mgcheck/format/dtype.h"

#include <array>

namespace mgcheck::format {
namespace {
struct DTypeInfo {
  DType dtype;
  const char* name;
  const char* storage;
  uint32_t size;
  bool floating;
  bool quantized;
};
// torch-save-format.md §3.3: storage class → dtype → itemsize.
constexpr std::array<DTypeInfo, 17> kTable = {{
    {DType::float64, "float64", "DoubleStorage", 8, true, false},
    {DType::float32, "float32", "FloatStorage", 4, true, false},
    {DType::float16, "float16", "HalfStorage", 2, true, false},
    {DType::bfloat16, "bfloat16", "BFloat16Storage", 2, true, false},
    {DType::int64, "int64", "LongStorage", 8, false, false},
    {DType::int32, "int32", "IntStorage", 4, false, false},
    {DType::int16, "int16", "ShortStorage", 2, false, false},
    {DType::int8, "int8", "CharStorage", 1, false, false},
    {DType::uint8, "uint8", "ByteStorage", 1, false, false},
    {DType::bool_, "bool", "BoolStorage", 1, false, false},
    {DType::complex64, "complex64", "ComplexFloatStorage", 8, false, false},
    {DType::complex128, "complex128", "ComplexDoubleStorage", 16, false, false},
    {DType::qint8, "qint8", "QInt8Storage", 1, false, true},
    {DType::quint8, "quint8", "QUInt8Storage", 1, false, true},
    {DType::qint32, "qint32", "QInt32Storage", 4, false, true},
    {DType::quint4x2, "quint4x2", "QUInt4x2Storage", 1, false, true},
    {DType::quint2x4, "quint2x4", "QUInt2x4Storage", 1, false, true},
}};
const DTypeInfo& info(DType d) { return kTable[static_cast<size_t>(d)]; }
}  // namespace

uint32_t itemsize(DType d) noexcept { return info(d).size; }
const char* dtype_name(DType d) noexcept { return info(d).name; }
const char* storage_class_name(DType d) noexcept { return info(d).storage; }
bool is_floating(DType d) noexcept { return info(d).floating; }
bool is_quantized(DType d) noexcept { return info(d).quantized; }

std::optional<DType> dtype_from_storage_class(std::string_view name) noexcept {
  for (const auto& e : kTable)
    if (name == e.storage) return e.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  if (name.substr(0, 6) == "torch.") name.remove_prefix(6);
  for (const auto& e : kTable)
    if (name == e.name) return e.dtype;
  // torch aliases
  if (name == "float" ) return DType::float32;
  if (name == "double") return DType::float64;
  if (name == "half") return DType::float16;
  if (name == "long") return DType::int64;
  if (name == "int") return DType::int32;
  if (name == "short") return DType::int16;
  return std::nullopt;
}

}  // namespace mgcheck::format
