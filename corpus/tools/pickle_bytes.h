// A tiny pickle assembler for the corruption generator: emits opcodes by name so hostile and malformed
// pickles are written as readable code (what each byte means is visible at the call site).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mgcheck::corpus {

class PickleBytes {
 public:
  std::vector<uint8_t> bytes;

  PickleBytes& op(uint8_t code) { bytes.push_back(code); return *this; }
  PickleBytes& raw(std::string_view s) { bytes.insert(bytes.end(), s.begin(), s.end()); return *this; }
  PickleBytes& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  PickleBytes& proto(uint8_t p = 2) { return op(0x80).op(p); }
  PickleBytes& stop() { return op('.'); }
  PickleBytes& mark() { return op('('); }
  PickleBytes& none() { return op('N'); }
  PickleBytes& newtrue() { return op(0x88); }
  PickleBytes& newfalse() { return op(0x89); }
  PickleBytes& empty_dict() { return op('}'); }
  PickleBytes& empty_list() { return op(']'); }
  PickleBytes& empty_tuple() { return op(')'); }
  PickleBytes& tuple() { return op('t'); }
  PickleBytes& tuple1() { return op(0x85); }
  PickleBytes& tuple2() { return op(0x86); }
  PickleBytes& tuple3() { return op(0x87); }
  PickleBytes& setitem() { return op('s'); }
  PickleBytes& setitems() { return op('u'); }
  PickleBytes& append() { return op('a'); }
  PickleBytes& appends() { return op('e'); }
  PickleBytes& reduce() { return op('R'); }
  PickleBytes& build() { return op('b'); }
  PickleBytes& newobj() { return op(0x81); }
  PickleBytes& pop() { return op('0'); }
  PickleBytes& binpersid() { return op('Q'); }
  PickleBytes& stack_global() { return op(0x93); }
  PickleBytes& global(std::string_view module, std::string_view name) {
    return op('c').raw(module).raw("\n").raw(name).raw("\n");
  }
  PickleBytes& inst(std::string_view module, std::string_view name) {
    return op('i').raw(module).raw("\n").raw(name).raw("\n");
  }
  PickleBytes& obj() { return op('o'); }
  PickleBytes& str(std::string_view s) { return op('X').le(s.size(), 4).raw(s); }  // BINUNICODE
  PickleBytes& binint(int64_t v) {
    if (v >= 0 && v < 256) return op('K').le(static_cast<uint64_t>(v), 1);
    if (v >= 0 && v < 65536) return op('M').le(static_cast<uint64_t>(v), 2);
    if (v >= INT32_MIN && v <= INT32_MAX) return op('J').le(static_cast<uint64_t>(v), 4);
    return op(0x8a).op(8).le(static_cast<uint64_t>(v), 8);  // LONG1, 8 bytes
  }
  PickleBytes& binput(uint8_t i) { return op('q').op(i); }
  PickleBytes& long_binput(uint32_t i) { return op('r').le(i, 4); }
  PickleBytes& binget(uint8_t i) { return op('h').op(i); }
  PickleBytes& long_binget(uint32_t i) { return op('j').le(i, 4); }
  PickleBytes& ints_tuple(const std::vector<int64_t>& v) {
    mark();
    for (auto x : v) binint(x);
    return tuple();
  }

  // collections.OrderedDict(): the backward-hooks argument of _rebuild_tensor_v2.
  PickleBytes& ordered_dict() { return global("collections", "OrderedDict").empty_tuple().reduce(); }

  // The persistent id torch.save writes for a storage: ('storage', torch.<cls>, key, location, numel).
  PickleBytes& storage_id(std::string_view cls, std::string_view key, std::string_view location, int64_t numel) {
    mark().str("storage").global("torch", cls).str(key).str(location).binint(numel).tuple();
    return binpersid();
  }

  // torch._utils._rebuild_tensor_v2(storage, offset, sizes, strides, False, OrderedDict()).
  PickleBytes& tensor_v2(std::string_view cls, std::string_view key, int64_t numel, int64_t offset,
                         const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
                         std::string_view location = "cpu") {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    storage_id(cls, key, location, numel);
    binint(offset).ints_tuple(sizes).ints_tuple(strides).newfalse().ordered_dict();
    tuple();
    return reduce();
  }
};

}  // namespace mgcheck::corpus
