// The two fixed GLOBAL allowlists of the pickle machine (docs/pickle-allowlist.md explains every entry).
// Matching is on exact (module, name) strings after the Python-2 → 3 mapping; nothing is ever imported.
#include <array>
#include <string_view>

#include "mgcheck/format/dtype.h"
#include "mgcheck/format/pickle.h"

namespace mgcheck::format {

namespace {

struct Name {
  std::string_view module;
  std::string_view name;
};

// Weights-only, MusicGen profile: what torch.save writes for a state dict, plus the plain-data helpers
// protocol 2 uses for bytes, sets and complex numbers. Storage classes and dtypes are matched separately.
constexpr std::array<Name, 13> kAllowed = {{
    {"collections", "OrderedDict"},
    {"torch._utils", "_rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_tensor_v3"},
    {"torch._utils", "_rebuild_tensor"},
    {"torch._utils", "_rebuild_parameter"},
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"torch.storage", "UntypedStorage"},
    {"_codecs", "encode"},
    {"builtins", "set"},
    {"builtins", "frozenset"},
    {"builtins", "bytes"},
    {"builtins", "bytearray"},
    {"builtins", "complex"},
}};

// Inert classes of raw AudioCraft training checkpoints (omegaconf's pickled DictConfig and its
// metadata): rebuilt as plain `object` values, never called.
constexpr std::array<Name, 21> kInert = {{
    {"builtins", "dict"},
    {"builtins", "list"},
    {"builtins", "int"},
    {"builtins", "float"},
    {"builtins", "str"},
    {"builtins", "bool"},
    {"collections", "defaultdict"},
    {"typing", "Any"},
    {"omegaconf.base", "ContainerMetadata"},
    {"omegaconf.base", "Metadata"},
    {"omegaconf.dictconfig", "DictConfig"},
    {"omegaconf.listconfig", "ListConfig"},
    {"omegaconf.nodes", "AnyNode"},
    {"omegaconf.nodes", "StringNode"},
    {"omegaconf.nodes", "IntegerNode"},
    {"omegaconf.nodes", "FloatNode"},
    {"omegaconf.nodes", "BooleanNode"},
    {"omegaconf.nodes", "BytesNode"},
    {"omegaconf.nodes", "PathNode"},
    {"omegaconf.nodes", "EnumNode"},
    {"omegaconf.nodes", "InterpolationResultNode"},
}};

template <size_t N>
bool listed(const std::array<Name, N>& list, std::string_view module, std::string_view name) {
  for (const auto& e : list)
    if (e.module == module && e.name == name) return true;
  return false;
}

}  // namespace

CanonicalGlobal canonical_global(std::string_view module, std::string_view name) {
  CanonicalGlobal g{std::string(module), std::string(name)};
  if (module == "__builtin__") {
    g.module = "builtins";
    if (name == "long") g.name = "int";
    if (name == "unicode") g.name = "str";
  } else if (module == "copy_reg") {
    g.module = "copyreg";
  }
  return g;
}

GlobalClass classify_global(std::string_view module, std::string_view name) noexcept {
  const CanonicalGlobal g = canonical_global(module, name);
  if (listed(kAllowed, g.module, g.name)) return GlobalClass::allowed;
  if (g.module == "torch" && g.name.find('.') == std::string::npos) {
    // torch.FloatStorage …: every storage class of dtype.cc (quantized ones are refused by the tensor
    // layer, not here); torch.float32 …: dtype objects, meaningful only as _rebuild_tensor_v3's dtype.
    if (dtype_from_storage_class(g.name) || dtype_from_name(g.name)) return GlobalClass::allowed;
  }
  if (listed(kInert, g.module, g.name)) return GlobalClass::inert;
  return GlobalClass::unsafe;
}

const char* global_class_name(GlobalClass c) noexcept {
  switch (c) {
    case GlobalClass::allowed: return "allowed";
    case GlobalClass::inert: return "inert";
    case GlobalClass::unsafe: return "unsafe";
  }
  return "unsafe";
}

}  // namespace mgcheck::format
