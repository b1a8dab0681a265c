#include "mgcheck/format/value.h"

namespace mgcheck::format {

const char* value_kind_name(ValueKind k) noexcept {
  switch (k) {
    case ValueKind::none: return "None";
    case ValueKind::boolean: return "bool";
    case ValueKind::integer: return "int";
    case ValueKind::floating: return "float";
    case ValueKind::string: return "str";
    case ValueKind::bytes: return "bytes";
    case ValueKind::list: return "list";
    case ValueKind::tuple: return "tuple";
    case ValueKind::dict: return "dict";
    case ValueKind::set: return "set";
    case ValueKind::global: return "global";
    case ValueKind::storage: return "storage";
    case ValueKind::tensor: return "tensor";
    case ValueKind::object: return "object";
    case ValueKind::mark: return "mark";
  }
  return "?";
}

ValueId ValueArena::dict_get(ValueId dict, std::string_view key) const {
  if (!is_dict(dict)) return kNoValue;
  const auto& items = (*this)[dict].items;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const Value& k = (*this)[items[i]];
    if (k.kind == ValueKind::string && k.s == key) return items[i + 1];
  }
  return kNoValue;
}

}  // namespace mgcheck::format
