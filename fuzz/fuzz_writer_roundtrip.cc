// Fuzz target: writer round trip. The input drives a small tree builder (scalars, strings, lists,
// tuples, dicts, OrderedDicts, tensors of every dense dtype, shared storages, parameters); the tree is
// written with write_torch_save, read back with read_checkpoint, and must come back equal with no error
// finding. Any difference aborts (a finding for the fuzzer).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/writer.h"

namespace {

using namespace mgcheck::format;

// Consumes the fuzz input front to back; reads past the end give zeros (the tree just ends small).
class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  uint8_t byte() { return pos_ < n_ ? d_[pos_++] : 0; }
  uint64_t u64(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }
  std::vector<uint8_t> take(size_t len) {
    std::vector<uint8_t> out(len, 0);
    for (auto& b : out) b = byte();
    return out;
  }
  bool done() const { return pos_ >= n_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

constexpr DType kDTypes[] = {DType::float64, DType::float32, DType::float16, DType::bfloat16, DType::int64,
                             DType::int32,   DType::int16,   DType::int8,    DType::uint8,    DType::bool_};

[[noreturn]] void mismatch(const char* what) {
  std::fprintf(stderr, "writer round trip mismatch: %s\n", what);
  std::abort();
}

struct Builder {
  Input& in;
  size_t nodes = 0;
  std::vector<WTensor> shared;  // earlier tensors, reused with the same share_key

  std::string text() {
    size_t len = in.byte() % 24;
    std::string s;
    for (size_t i = 0; i < len; ++i) {
      uint8_t c = in.byte();
      if (c & 0x80) s += "\xc3\xa9";  // é: keep strings valid UTF-8, multi-byte included
      else s += static_cast<char>(0x20 + c % 95);
    }
    return s;
  }

  WTensor tensor() {
    if (!shared.empty() && (in.byte() & 3) == 0) return shared[in.byte() % shared.size()];
    DType dt = kDTypes[in.byte() % std::size(kDTypes)];
    size_t rank = in.byte() % 4;
    std::vector<int64_t> sizes;
    uint64_t numel = 1;
    for (size_t i = 0; i < rank; ++i) {
      int64_t s = in.byte() % 5;
      sizes.push_back(s);
      numel *= static_cast<uint64_t>(s);
    }
    std::vector<uint8_t> bytes = in.take(numel * itemsize(dt));
    if (dt == DType::bool_)
      for (auto& b : bytes) b &= 1;  // torch bools are 0/1
    WTensor t = make_tensor(dt, sizes, std::move(bytes));
    t.parameter = in.byte() & 1;
    t.requires_grad = t.parameter && (in.byte() & 1);
    t.share_key = "s" + std::to_string(shared.size());
    shared.push_back(t);
    return t;
  }

  WValue value(int depth) {
    ++nodes;
    uint8_t tag = in.byte();
    bool leaf = depth >= 8 || nodes > 200 || in.done();
    switch (leaf ? tag % 6 : tag % 10) {
      case 0: return WValue(WNone{});
      case 1: return WValue(bool(in.byte() & 1));
      case 2: return WValue(static_cast<int64_t>(in.u64(1 + in.byte() % 8)));
      case 3: {
        uint64_t bits = in.u64(8);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return WValue(d);
      }
      case 4: return WValue(text());
      case 5: return WValue(tensor());
      case 6:
      case 7: {
        WList l;
        size_t n = in.byte() % 6;
        for (size_t i = 0; i < n; ++i) l.push_back(value(depth + 1));
        WValue v(std::move(l));
        v.tuple = tag % 10 == 7;
        return v;
      }
      default: {
        WDict d;
        size_t n = in.byte() % 6;
        for (size_t i = 0; i < n; ++i) d.emplace_back(std::to_string(i) + text(), value(depth + 1));
        WValue v(std::move(d));
        v.ordered_dict = tag % 10 == 9;
        return v;
      }
    }
  }
};

void expect_equal(const WValue& w, const Checkpoint& ck, ValueId id) {
  const Value& v = ck.pickle.arena[id];
  if (std::holds_alternative<WNone>(w.v)) {
    if (v.kind != ValueKind::none) mismatch("none");
  } else if (auto* b = std::get_if<bool>(&w.v)) {
    if (v.kind != ValueKind::boolean || v.i != *b) mismatch("bool");
  } else if (auto* i = std::get_if<int64_t>(&w.v)) {
    if (v.kind != ValueKind::integer || v.i != *i || v.poisoned) mismatch("int");
  } else if (auto* d = std::get_if<double>(&w.v)) {
    if (v.kind != ValueKind::floating) mismatch("float kind");
    if (std::memcmp(&v.f, d, sizeof *d) != 0) mismatch("float bits");
  } else if (auto* s = std::get_if<std::string>(&w.v)) {
    if (v.kind != ValueKind::string || v.s != *s) mismatch("string");
  } else if (auto* l = std::get_if<WList>(&w.v)) {
    if (v.kind != (w.tuple ? ValueKind::tuple : ValueKind::list) || v.items.size() != l->size()) mismatch("list");
    for (size_t k = 0; k < l->size(); ++k) expect_equal((*l)[k], ck, v.items[k]);
  } else if (auto* dict = std::get_if<WDict>(&w.v)) {
    if (v.kind != ValueKind::dict || v.ordered_dict != w.ordered_dict || v.items.size() != 2 * dict->size())
      mismatch("dict");
    for (size_t k = 0; k < dict->size(); ++k) {
      const Value& key = ck.pickle.arena[v.items[2 * k]];
      if (key.kind != ValueKind::string || key.s != (*dict)[k].first) mismatch("dict key");
      expect_equal((*dict)[k].second, ck, v.items[2 * k + 1]);
    }
  } else if (auto* t = std::get_if<WTensor>(&w.v)) {
    if (v.kind != ValueKind::tensor || v.i < 0 || static_cast<size_t>(v.i) >= ck.tensors.size()) mismatch("tensor");
    const TensorView& tv = ck.tensors[static_cast<size_t>(v.i)];
    const TensorRef& ref = ck.pickle.tensors[static_cast<size_t>(v.i)];
    if (!tv.valid || tv.dtype != t->dtype || tv.sizes != t->sizes || tv.storage_offset != t->storage_offset)
      mismatch("tensor metadata");
    if (ref.parameter != t->parameter || ref.requires_grad != t->requires_grad) mismatch("tensor flags");
    if (tv.storage.size() != t->storage.size() ||
        (!tv.storage.empty() && std::memcmp(tv.storage.data(), t->storage.data(), tv.storage.size()) != 0))
      mismatch("tensor bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  Builder b{in, 0, {}};
  WValue root = b.value(0);
  auto file = write_torch_save(root, WriteOptions{});
  if (!file) return 0;  // the writer refused the tree (it says why); nothing to compare
  MemorySource src(std::move(file).value(), "roundtrip.pt");
  Findings findings;
  auto ck = read_checkpoint(src, Limits{}, ReadOptions{}, findings);
  if (!ck) mismatch(("read failed: " + ck.error().code + " " + ck.error().message).c_str());
  for (const auto& f : findings.items())
    if (f.severity == Severity::error) mismatch((f.code + ": " + f.message).c_str());
  expect_equal(root, *ck, ck->pickle.root);
  return 0;
}
