// The protocol-2 pickler of the writer. Byte for byte what CPython's C pickler (Modules/_pickle.c)
// writes when torch.save pickles the equivalent Python objects, so files are indistinguishable from
// torch's own: memo slots dense (BINPUT after every memoisable object), globals, the "storage"/"cpu"
// literals and shared storage keys fetched again with BINGET, dict batches of <= 1000 pairs.
#include "pickle_writer.h"

#include <bit>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/utf8.h"

namespace mgcheck::format::detail {
namespace {

constexpr uint8_t PROTO = 0x80, STOP = '.', MARK = '(', EMPTY_DICT = '}', EMPTY_LIST = ']',
                  EMPTY_TUPLE = ')', TUPLE = 't', TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87,
                  SETITEM = 's', SETITEMS = 'u', APPEND = 'a', APPENDS = 'e', BINUNICODE = 'X',
                  BININT = 'J', BININT1 = 'K', BININT2 = 'M', LONG1 = 0x8a, BINFLOAT = 'G',
                  NEWTRUE = 0x88, NEWFALSE = 0x89, NONE = 'N', GLOBAL = 'c', REDUCE = 'R',
                  BINPUT = 'q', LONG_BINPUT = 'r', BINGET = 'h', LONG_BINGET = 'j', BINPERSID = 'Q';
constexpr size_t kBatch = 1000;       // pickle's BATCHSIZE
constexpr int kMaxDepth = 1000;       // Python's own recursion limit is of this order

Finding invalid(std::string message) {
  return make_error("MG-TENSOR-WRITE-INVALID", std::move(message),
                    "build the value tree with tensors and values torch.load(weights_only=True) accepts");
}

std::span<const uint8_t> storage_bytes(const WTensor& t) {
  if (!t.storage.empty() || !t.owned) return t.storage;
  return {t.owned->data(), t.owned->size()};
}

class Pickler {
 public:
  explicit Pickler(const WriteOptions& opts) : opts_(opts) {}

  Result<PickledObject> run(const WValue& root) {
    op(PROTO);
    op(2);
    if (auto st = save(root, 0); !st) return st.error();
    op(STOP);
    PickledObject r;
    r.pickle = std::move(out_);
    r.storages = std::move(storages_);
    return r;
  }

 private:
  struct StorageInfo {
    std::optional<uint32_t> key_memo;
  };

  void op(uint8_t b) { out_.push_back(b); }
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out_.push_back(static_cast<uint8_t>(v >> (8 * k)));
  }

  // Every memoisable object gets the next dense memo slot, like memo_put in _pickle.c.
  uint32_t put() {
    uint32_t idx = next_memo_++;
    if (idx < 256) {
      op(BINPUT);
      op(static_cast<uint8_t>(idx));
    } else {
      op(LONG_BINPUT);
      le(idx, 4);
    }
    return idx;
  }
  void get(uint32_t idx) {
    if (idx < 256) {
      op(BINGET);
      op(static_cast<uint8_t>(idx));
    } else {
      op(LONG_BINGET);
      le(idx, 4);
    }
  }

  void save_int(int64_t v) {
    if (v >= 0 && v <= 0xFF) {
      op(BININT1);
      op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v <= 0xFFFF) {
      op(BININT2);
      le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op(BININT);
      le(static_cast<uint64_t>(v), 4);
    } else {
      // LONG1: minimal two's-complement little-endian, as encode_long / save_long produce.
      uint8_t b[8];
      auto u = static_cast<uint64_t>(v);
      for (int k = 0; k < 8; ++k) b[k] = static_cast<uint8_t>(u >> (8 * k));
      int n = 8;
      while (n > 1 && ((b[n - 1] == 0x00 && !(b[n - 2] & 0x80)) || (b[n - 1] == 0xFF && (b[n - 2] & 0x80))))
        --n;
      op(LONG1);
      op(static_cast<uint8_t>(n));
      out_.insert(out_.end(), b, b + n);
    }
  }

  void save_float(double d) {
    op(BINFLOAT);
    auto u = std::bit_cast<uint64_t>(d);
    for (int k = 7; k >= 0; --k) op(static_cast<uint8_t>(u >> (8 * k)));  // big-endian
  }

  Status save_string(std::string_view s) {
    if (!valid_utf8(s)) return invalid("string is not valid UTF-8");
    if (s.size() > 0xFFFFFFFFu) return invalid("string longer than 4 GiB");
    op(BINUNICODE);
    le(s.size(), 4);
    out_.insert(out_.end(), s.begin(), s.end());
    put();
    return ok_status();
  }

  // A string literal the Python side reuses as one object (fetched again with BINGET).
  void save_shared_string(std::string_view s, std::optional<uint32_t>& memo) {
    if (memo) return get(*memo);
    op(BINUNICODE);
    le(s.size(), 4);
    out_.insert(out_.end(), s.begin(), s.end());
    memo = put();
  }

  void save_global(const std::string& module, const std::string& name) {
    std::string k = module + "\n" + name + "\n";
    if (auto it = globals_.find(k); it != globals_.end()) return get(it->second);
    op(GLOBAL);
    out_.insert(out_.end(), k.begin(), k.end());
    globals_.emplace(k, put());
  }

  void save_int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return op(EMPTY_TUPLE);  // the empty tuple is a singleton: never memoised
    if (v.size() > 3) op(MARK);
    for (auto x : v) save_int(x);
    if (v.size() == 1) op(TUPLE1);
    else if (v.size() == 2) op(TUPLE2);
    else if (v.size() == 3) op(TUPLE3);
    else op(TUPLE);
    put();
  }

  // OrderedDict() as REDUCE of the class with no arguments.
  void save_empty_ordered_dict() {
    save_global("collections", "OrderedDict");
    op(EMPTY_TUPLE);
    op(REDUCE);
    put();
  }

  Status save(const WValue& v, int depth) {
    if (depth > kMaxDepth) return invalid("value tree nested deeper than 1000 levels");
    return std::visit(
        [&](const auto& x) -> Status {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, WNone>) {
            op(NONE);
          } else if constexpr (std::is_same_v<T, bool>) {
            op(x ? NEWTRUE : NEWFALSE);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            save_int(x);
          } else if constexpr (std::is_same_v<T, double>) {
            save_float(x);
          } else if constexpr (std::is_same_v<T, std::string>) {
            return save_string(x);
          } else if constexpr (std::is_same_v<T, WList>) {
            return v.tuple ? save_tuple(x, depth) : save_list(x, depth);
          } else if constexpr (std::is_same_v<T, WDict>) {
            return save_dict(x, v.ordered_dict, depth);
          } else if constexpr (std::is_same_v<T, WTensor>) {
            return save_tensor(x);
          }
          return ok_status();
        },
        v.v);
  }

  Status save_tuple(const WList& items, int depth) {
    if (items.empty()) {
      op(EMPTY_TUPLE);
      return ok_status();
    }
    if (items.size() > 3) op(MARK);
    for (const auto& it : items)
      if (auto st = save(it, depth + 1); !st) return st;
    static constexpr uint8_t kSmall[4] = {0, TUPLE1, TUPLE2, TUPLE3};
    op(items.size() <= 3 ? kSmall[items.size()] : TUPLE);
    put();
    return ok_status();
  }

  // batch_list_exact: one item → APPEND; otherwise MARK … APPENDS batches of 1000.
  Status save_list(const WList& items, int depth) {
    op(EMPTY_LIST);
    put();
    if (items.size() == 1) {
      if (auto st = save(items[0], depth + 1); !st) return st;
      op(APPEND);
      return ok_status();
    }
    size_t total = 0;
    while (total < items.size()) {
      op(MARK);
      for (size_t n = 0; n < kBatch && total < items.size(); ++n, ++total)
        if (auto st = save(items[total], depth + 1); !st) return st;
      op(APPENDS);
    }
    return ok_status();
  }

  Status save_pair(const std::pair<std::string, WValue>& kv, int depth) {
    if (auto st = save_string(kv.first); !st) return st;
    return save(kv.second, depth + 1);
  }

  Status save_dict(const WDict& items, bool ordered, int depth) {
    {
      std::map<std::string_view, int> seen;
      for (const auto& kv : items)
        if (!seen.emplace(kv.first, 0).second) return invalid("duplicate dict key '" + kv.first + "'");
    }
    if (ordered) {
      // OrderedDict.__reduce__ → save_reduce + batch_dict (generic): a lone trailing pair uses SETITEM.
      save_empty_ordered_dict();
      size_t i = 0;
      while (i < items.size()) {
        if (items.size() - i == 1) {
          if (auto st = save_pair(items[i], depth); !st) return st;
          op(SETITEM);
          break;
        }
        op(MARK);
        size_t n = 0;
        for (; n < kBatch && i < items.size(); ++n, ++i)
          if (auto st = save_pair(items[i], depth); !st) return st;
        op(SETITEMS);
        if (n < kBatch) break;
      }
      return ok_status();
    }
    // batch_dict_exact: one pair → SETITEM; otherwise batches, and (a CPython quirk reproduced on
    // purpose) a size that is a multiple of 1000 ends with an empty MARK SETITEMS.
    op(EMPTY_DICT);
    put();
    if (items.empty()) return ok_status();
    if (items.size() == 1) {
      if (auto st = save_pair(items[0], depth); !st) return st;
      op(SETITEM);
      return ok_status();
    }
    size_t i = 0, n = 0;
    do {
      op(MARK);
      for (n = 0; n < kBatch && i < items.size(); ++n, ++i)
        if (auto st = save_pair(items[i], depth); !st) return st;
      op(SETITEMS);
    } while (n == kBatch);
    return ok_status();
  }

  Status check_tensor(const WTensor& t, std::span<const uint8_t> bytes, const std::vector<int64_t>& strides) {
    if (is_quantized(t.dtype)) return invalid("quantized tensors cannot be written");
    uint64_t isz = itemsize(t.dtype);
    if (bytes.size() % isz != 0) return invalid("storage byte size is not a multiple of the itemsize");
    if (strides.size() != t.sizes.size()) return invalid("sizes and strides differ in length");
    if (t.storage_offset < 0) return invalid("negative storage offset");
    uint64_t storage_numel = bytes.size() / isz;
    uint64_t numel = 1, last = static_cast<uint64_t>(t.storage_offset);
    for (size_t k = 0; k < t.sizes.size(); ++k) {
      if (t.sizes[k] < 0 || strides[k] < 0) return invalid("negative size or stride");
      auto m = checked_mul(numel, static_cast<uint64_t>(t.sizes[k]));
      if (!m || *m > static_cast<uint64_t>(INT64_MAX)) return invalid("element count overflows");
      numel = *m;
      if (t.sizes[k] > 0) {
        auto step = checked_mul(static_cast<uint64_t>(t.sizes[k] - 1), static_cast<uint64_t>(strides[k]));
        auto nl = step ? checked_add(last, *step) : std::nullopt;
        if (!nl) return invalid("view extent overflows");
        last = *nl;
      }
    }
    if (numel > 0 ? last >= storage_numel : static_cast<uint64_t>(t.storage_offset) > storage_numel)
      return invalid("view extends beyond its storage");
    return ok_status();
  }

  // torch/_tensor.py _reduce_ex_internal → _rebuild_tensor_v2(storage, offset, size, stride,
  // requires_grad, OrderedDict()); nn.Parameter wraps it in _rebuild_parameter(data, rg, OrderedDict()).
  Status save_tensor(const WTensor& t) {
    std::vector<int64_t> strides = t.strides;
    if (strides.empty() && !t.sizes.empty()) {
      strides.assign(t.sizes.size(), 1);
      for (size_t k = t.sizes.size() - 1; k > 0; --k) {
        auto m = checked_mul_i64(strides[k], std::max<int64_t>(t.sizes[k], 1));
        if (!m) return invalid("contiguous strides overflow");
        strides[k - 1] = *m;
      }
    }
    std::span<const uint8_t> bytes = storage_bytes(t);

    // Which storage: a shared one by share_key, else a fresh one.
    uint32_t sidx;
    auto found = t.share_key.empty() ? shared_.end() : shared_.find(t.share_key);
    if (found != shared_.end()) {
      sidx = found->second;
      const auto& s = storages_[sidx];
      if (opts_.check_tensors && s.dtype != t.dtype)
        return invalid("tensors sharing storage '" + t.share_key + "' have different dtypes");
      if (opts_.check_tensors && !bytes.empty() && bytes.size() != s.bytes.size())
        return invalid("tensors sharing storage '" + t.share_key + "' give different storage sizes");
      bytes = s.bytes;
    } else {
      sidx = static_cast<uint32_t>(storages_.size());
      storages_.push_back({std::to_string(sidx), t.dtype, bytes});
      info_.push_back({});
      if (!t.share_key.empty()) shared_.emplace(t.share_key, sidx);
    }
    if (opts_.check_tensors)
      if (auto st = check_tensor(t, bytes, strides); !st) return st;

    if (t.parameter) save_global("torch._utils", "_rebuild_parameter");
    save_global("torch._utils", "_rebuild_tensor_v2");
    op(MARK);
    // Persistent id ('storage', torch.<Class>, key, 'cpu', numel) followed by BINPERSID.
    op(MARK);
    save_shared_string("storage", storage_literal_);
    save_global("torch", storage_class_name(t.dtype));
    save_shared_string(storages_[sidx].key, info_[sidx].key_memo);
    save_shared_string(opts_.location, cpu_literal_);
    save_int(t.declared_numel >= 0 ? t.declared_numel
                                   : static_cast<int64_t>(bytes.size() / itemsize(t.dtype)));
    op(TUPLE);
    put();
    op(BINPERSID);
    save_int(t.storage_offset);
    save_int_tuple(t.sizes);
    save_int_tuple(strides);
    op(!t.parameter && t.requires_grad ? NEWTRUE : NEWFALSE);
    save_empty_ordered_dict();
    op(TUPLE);
    put();
    op(REDUCE);
    put();
    if (t.parameter) {
      op(t.requires_grad ? NEWTRUE : NEWFALSE);
      save_empty_ordered_dict();
      op(TUPLE3);
      put();
      op(REDUCE);
      put();
    }
    return ok_status();
  }

  const WriteOptions& opts_;
  std::vector<uint8_t> out_;
  uint32_t next_memo_ = 0;
  std::unordered_map<std::string, uint32_t> globals_;
  std::optional<uint32_t> storage_literal_, cpu_literal_;
  std::vector<PickledStorage> storages_;
  std::vector<StorageInfo> info_;
  std::unordered_map<std::string, uint32_t> shared_;
};

}  // namespace

Result<PickledObject> pickle_for_torch_save(const WValue& root, const WriteOptions& opts) {
  if (opts.pickle_protocol != 2) return invalid("only pickle protocol 2 is written");
  Pickler p(opts);
  return p.run(root);
}

}  // namespace mgcheck::format::detail
