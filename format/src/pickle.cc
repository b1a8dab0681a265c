// The non-executing pickle machine (torch-save-format.md §3, §9.4): a table-driven loop over the bytes
// with an explicit value stack and MARK stack (no recursion), building the inert Value tree. Value
// conventions are documented in pickle.h; codes in docs/error-codes.d/pickle.md.
#include "mgcheck/format/pickle.h"

#include <array>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/hex.h"
#include "mgcheck/format/utf8.h"

namespace mgcheck::format {

namespace {

constexpr const char* kHintCorrupt = "the pickle is damaged or not produced by torch.save; re-export the checkpoint";
constexpr const char* kHintUnsafe =
    "do not load this file with torch.load; a checkpoint needs only tensors, dicts and plain values";
constexpr const char* kHintLimit = "if the file is trusted and genuinely this large, raise the limit with --limit";

bool is_container(ValueKind k) {
  return k == ValueKind::list || k == ValueKind::tuple || k == ValueKind::dict || k == ValueKind::set ||
         k == ValueKind::object;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's raw-unicode-escape decoder (protocol 0 UNICODE): bytes are latin-1 code points; "\uXXXX" and
// "\UXXXXXXXX" are escapes only after an odd run of backslashes. False on a malformed escape.
bool decode_raw_unicode_escape(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '\\') {
      append_utf8(out, static_cast<uint8_t>(in[i]));
      ++i;
      continue;
    }
    size_t run = 0;
    while (i < in.size() && in[i] == '\\') { ++run; ++i; }
    const bool escape = (run & 1) != 0 && i < in.size() && (in[i] == 'u' || in[i] == 'U');
    out.append(escape ? run - 1 : run, '\\');
    if (!escape) continue;
    const size_t count = in[i] == 'u' ? 4 : 8;
    ++i;
    if (in.size() - i < count) return false;
    uint32_t cp = 0;
    for (size_t k = 0; k < count; ++k) {
      const int d = hex_digit(in[i + k]);
      if (d < 0) return false;
      cp = (cp << 4) | static_cast<uint32_t>(d);
    }
    if (cp > 0x10FFFF) return false;
    append_utf8(out, cp);  // a lone surrogate comes out as invalid UTF-8: MG-PICKLE-UTF8 later
    i += count;
  }
  return true;
}

// Python's codecs.escape_decode (protocol 0 STRING). False on a malformed escape.
bool decode_string_escape(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i++];
    if (c != '\\') { out += c; continue; }
    if (i >= in.size()) return false;  // trailing backslash
    const char e = in[i++];
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        if (in.size() - i < 2) return false;
        const int h = hex_digit(in[i]), l = hex_digit(in[i + 1]);
        if (h < 0 || l < 0) return false;
        out += static_cast<char>(h * 16 + l);
        i += 2;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int k = 0; k < 2 && i < in.size() && in[i] >= '0' && in[i] <= '7'; ++k) v = v * 8 + (in[i++] - '0');
          out += static_cast<char>(v & 0xFF);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Decimal text as Python's int() reads it from INT/LONG/GET/PUT (sign, digits, surrounding whitespace).
// nullopt: malformed. `big` set when the value does not fit int64.
std::optional<int64_t> parse_decimal(std::string_view s, bool& big) {
  s = trim(s);
  big = false;
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  uint64_t mag = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (!big) {
      auto m = checked_mul(mag, 10);
      auto a = m ? checked_add(*m, static_cast<uint64_t>(c - '0')) : std::nullopt;
      if (!a) big = true; else mag = *a;
    }
  }
  if (big) return 0;
  if (!neg) {
    if (mag > static_cast<uint64_t>(INT64_MAX)) { big = true; return 0; }
    return static_cast<int64_t>(mag);
  }
  if (mag > static_cast<uint64_t>(INT64_MAX) + 1) { big = true; return 0; }
  return mag == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<int64_t>(mag);
}

class PickleMachine {
 public:
  PickleMachine(std::span<const uint8_t> in, const PickleOptions& opts, const Limits& limits, Findings& out)
      : in_(in), opts_(opts), lim_(limits), out_(out) {}

  Result<PickleResult> run();
  PickleResult take_partial() { return std::move(r_); }  // after a failed run: what was built so far

 private:
  using Handler = bool (PickleMachine::*)();
  struct Op {
    const char* name = nullptr;
    Handler fn = nullptr;
    bool unused = false;  // never written by CPython's pickler for checkpoint values (docs/pickle-machine.md)
  };
  static const std::array<Op, 256>& table();

  // ---- reporting
  uint64_t file_offset() const noexcept {
    auto o = checked_add(opts_.base_offset, op_pos_);
    return o ? *o : UINT64_MAX;
  }
  const char* op_name() const { return table()[op_].name; }
  Finding located(Finding f) const {
    f.file = opts_.file;
    f.offset = file_offset();
    f.name = opts_.record;
    return f;
  }
  bool fail(const char* code, const std::string& msg, const char* hint = kHintCorrupt) {
    fatal_ = located(make_error(code, msg, hint));
    return false;
  }
  void error(const char* code, const std::string& msg, const char* hint = kHintCorrupt) {
    out_.push(located(make_error(code, msg, hint)));
  }
  void unsafe(const char* code, const std::string& msg, const char* hint = kHintUnsafe) {
    out_.push(located(make_unsafe(code, msg, hint)));
  }
  std::string describe(ValueId id) const {
    const Value& v = r_.arena[id];
    if (v.kind == ValueKind::global) return v.s;
    return std::string("a ") + value_kind_name(v.kind) + " value";
  }

  // ---- reading arguments (every read bounds-checked before touching memory)
  // The end of the current FRAME is a hard boundary (docs/pickle-machine.md): an opcode that starts in
  // the frame must end in it (pos_ <= frame_end_ holds then). An argument that crosses it is read one way by pickle.loads (straight on), another by the C unpickler reading a file (the rest
  // of the frame is dropped and reading goes on after it) and rejected by pickle.py; mgcheck refuses.
  bool straddle(const std::string& what, uint64_t n) {
    fatal_ = located(make_unsafe(
        "MG-PICKLE-FRAME-STRADDLE",
        what + " of " + std::to_string(n) + " bytes crosses the end of the current FRAME (" +
            std::to_string(frame_end_ - pos_) + " bytes left in it, frame ends at file offset " +
            std::to_string(opts_.base_offset + frame_end_) + "); unpicklers disagree on what follows",
        "a pickle whose opcodes cross frame boundaries is built to make scanners and loaders disagree; do not load it"));
    return false;
  }
  bool need(uint64_t n) {
    if (op_pos_ < frame_end_ && n > frame_end_ - pos_) return straddle(std::string(op_name()) + " argument", n);
    if (fits(pos_, n, in_.size())) return true;
    return fail("MG-PICKLE-TRUNCATED", std::string(op_name()) + " argument runs past the end of the pickle (needs " +
                                           std::to_string(n) + " bytes, " + std::to_string(in_.size() - pos_) +
                                           " left)");
  }
  bool read_le(size_t n, uint64_t& v) {
    if (!need(n)) return false;
    v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(in_[pos_ + k]) << (8 * k);
    pos_ += n;
    return true;
  }
  bool read_line(std::string_view& line) {
    const void* nl = pos_ < in_.size() ? std::memchr(in_.data() + pos_, '\n', in_.size() - pos_) : nullptr;
    if (nl == nullptr)
      return fail("MG-PICKLE-TRUNCATED", std::string(op_name()) + " text argument has no terminating newline");
    const size_t end = static_cast<size_t>(static_cast<const uint8_t*>(nl) - in_.data());
    if (op_pos_ < frame_end_ && end >= frame_end_)
      return straddle(std::string(op_name()) + " text argument", end + 1 - pos_);
    if (end - pos_ > lim_.max_string_bytes)
      return fail("MG-PICKLE-LIMIT-STRING", std::string(op_name()) + " text argument of " +
                                                std::to_string(end - pos_) + " bytes exceeds max_string_bytes",
                  kHintLimit);
    line = std::string_view(reinterpret_cast<const char*>(in_.data() + pos_), end - pos_);
    pos_ = end + 1;
    return true;
  }
  // A length-prefixed payload: limit first, then bytes remaining, and only then any allocation.
  bool read_payload(uint64_t len, std::string_view& data) {
    if (len > lim_.max_string_bytes)
      return fail("MG-PICKLE-LIMIT-STRING", std::string(op_name()) + " length " + std::to_string(len) +
                                                " exceeds max_string_bytes (" + std::to_string(lim_.max_string_bytes) + ")",
                  kHintLimit);
    if (!need(len)) return false;
    data = std::string_view(reinterpret_cast<const char*>(in_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }

  // ---- working memory (max_pickle_memory_bytes): every allocation the run makes that grows with the
  // input is charged before or as it happens; nothing is released until the run ends, so the sum is an
  // upper bound of the machine's heap (values, their strings and item lists, stack, memo, side tables).
  static constexpr uint64_t kMapEntry = 64;  // one unordered_map node plus its bucket share
  bool account(uint64_t bytes) {
    auto total = checked_add(mem_, bytes);
    if (!total || *total > lim_.max_pickle_memory_bytes)
      return fail("MG-PICKLE-LIMIT-MEMORY", "the pickle needs more than max_pickle_memory_bytes (" +
                                                std::to_string(lim_.max_pickle_memory_bytes) +
                                                ") of working memory for the values it builds",
                  kHintLimit);
    mem_ = *total;
    return true;
  }
  // Charges a vector's capacity growth (elements of 4 bytes) since the last call for it.
  bool charge_growth(size_t capacity, size_t& charged) {
    if (capacity <= charged) return true;
    const uint64_t delta = (capacity - charged) * sizeof(ValueId);
    charged = capacity;
    return account(delta);
  }
  static uint64_t heap_bytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

  // ---- values
  bool charge(uint64_t n) {
    auto total = checked_add(charged_, n);
    if (!total || *total + r_.arena.size() > lim_.max_objects)
      return fail("MG-PICKLE-LIMIT-OBJECTS", "more than max_objects (" + std::to_string(lim_.max_objects) +
                                                 ") values built", kHintLimit);
    charged_ = *total;
    return true;
  }
  bool make(Value v, ValueId& id) {
    if (r_.arena.size() + charged_ >= lim_.max_objects)
      return fail("MG-PICKLE-LIMIT-OBJECTS", "more than max_objects (" + std::to_string(lim_.max_objects) +
                                                 ") values built", kHintLimit);
    v.offset = file_offset();
    if (is_container(v.kind) && v.depth == 0) v.depth = 1;
    if (!account(sizeof(Value) + heap_bytes(v.s) + v.items.capacity() * sizeof(ValueId))) return false;
    id = r_.arena.add(std::move(v));
    return true;
  }
  bool push_new(Value v) {
    ValueId id;
    if (!make(std::move(v), id)) return false;
    stack_.push_back(id);
    return true;
  }
  static Value scalar(ValueKind k) {
    Value v;
    v.kind = k;
    return v;
  }
  bool push_poisoned(std::vector<ValueId> items = {}) {
    Value v = scalar(ValueKind::object);
    v.poisoned = true;
    ValueId id;
    if (!make(std::move(v), id)) return false;
    for (ValueId c : items)
      if (c != id && !add_item(id, c)) return false;
    stack_.push_back(id);
    return true;
  }
  // Places `child` inside `parent` (never the same value): freezes a container child and raises the
  // parent's depth, which is checked against max_nesting_depth.
  bool add_item(ValueId parent, ValueId child) {
    Value& c = r_.arena[child];
    if (is_container(c.kind)) c.frozen = true;
    const uint32_t d = c.depth + 1;
    if (d > r_.arena[parent].depth) {
      if (d > lim_.max_nesting_depth)
        return fail("MG-PICKLE-LIMIT-DEPTH", "containers nested deeper than max_nesting_depth (" +
                                                 std::to_string(lim_.max_nesting_depth) + ")",
                    kHintLimit);
      r_.arena[parent].depth = d;
    }
    auto& items = r_.arena[parent].items;
    if (items.size() == items.capacity() &&
        !account((items.capacity() == 0 ? 1 : items.capacity()) * sizeof(ValueId)))
      return false;
    items.push_back(child);
    return true;
  }
  bool make_container(ValueKind k, const std::vector<ValueId>& items, ValueId& id) {
    if (!make(scalar(k), id) || !account(items.size() * sizeof(ValueId))) return false;
    r_.arena[id].items.reserve(items.size());
    for (ValueId c : items)
      if (!add_item(id, c)) return false;
    return true;
  }

  // ---- stack discipline: pops never cross the current MARK frame
  size_t frame_base() const noexcept { return marks_.empty() ? 0 : marks_.back(); }
  bool pop(ValueId& v) {
    if (stack_.size() <= frame_base())
      return fail("MG-PICKLE-STACK", std::string(op_name()) + " pops from an empty stack" +
                                         (marks_.empty() ? "" : " (current MARK frame is empty)"));
    v = stack_.back();
    stack_.pop_back();
    return true;
  }
  bool peek(ValueId& v) {
    if (stack_.size() <= frame_base())
      return fail("MG-PICKLE-STACK", std::string(op_name()) + " needs a value on the stack, found none");
    v = stack_.back();
    return true;
  }
  bool pop_mark(std::vector<ValueId>& items) {
    if (marks_.empty()) return fail("MG-PICKLE-STACK", std::string(op_name()) + " without a matching MARK");
    const size_t base = marks_.back();
    marks_.pop_back();
    items.assign(stack_.begin() + static_cast<std::ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return true;
  }

  // ---- memo
  ValueId resolve(ValueId id) {
    // Follow copy-on-build replacements (pickle.h), compressing the path.
    ValueId last = id;
    for (auto it = rebuilt_.find(last); it != rebuilt_.end(); it = rebuilt_.find(last)) last = it->second;
    for (auto it = rebuilt_.find(id); it != rebuilt_.end() && it->second != last; it = rebuilt_.find(id)) {
      const ValueId next = it->second;
      it->second = last;
      id = next;
    }
    return last;
  }
  bool memo_put(uint64_t idx) {
    ValueId v;
    if (!peek(v)) return false;
    if (idx < memo_.size()) {
      error("MG-PICKLE-MEMO-PUT", "memo slot " + std::to_string(idx) + " is overwritten (torch writes each slot once)");
      memo_[idx] = v;
      return true;
    }
    if (memo_.size() + sparse_memo_.size() >= lim_.max_memo_entries && sparse_memo_.count(idx) == 0)
      return fail("MG-PICKLE-LIMIT-MEMO", "more than max_memo_entries (" + std::to_string(lim_.max_memo_entries) +
                                              ") memo entries", kHintLimit);
    if (idx == memo_.size()) {
      memo_.push_back(v);
      sparse_memo_.erase(idx);
      return true;
    }
    error("MG-PICKLE-MEMO-PUT", "memo index " + std::to_string(idx) + " skips ahead of the next free slot " +
                                    std::to_string(memo_.size()) + " (torch writes dense indices)");
    if (!account(kMapEntry)) return false;
    sparse_memo_[idx] = v;
    return true;
  }
  bool memo_get(uint64_t idx) {
    ValueId v = kNoValue;
    if (idx < memo_.size()) {
      v = memo_[idx];
    } else if (auto it = sparse_memo_.find(idx); it != sparse_memo_.end()) {
      v = it->second;
    } else {
      return fail("MG-PICKLE-MEMO-GET", std::string(op_name()) + " of memo index " + std::to_string(idx) +
                                            ", which was never stored");
    }
    stack_.push_back(resolve(v));
    return true;
  }

  // ---- shared pieces of the opcode handlers
  bool push_int(int64_t v) {
    Value x = scalar(ValueKind::integer);
    x.i = v;
    return push_new(std::move(x));
  }
  bool push_big_int(std::string written, const std::string& why) {
    error("MG-PICKLE-LIMIT-INT", why, "integers in a checkpoint fit in int64; this one cannot be a size or count");
    Value x = scalar(ValueKind::integer);
    x.poisoned = true;
    x.s = std::move(written);
    return push_new(std::move(x));
  }
  bool push_long_bytes(std::string_view payload);
  bool push_text_int(std::string_view line, bool long_form);
  bool push_unicode(std::string text) {
    Value v = scalar(ValueKind::string);
    if (!valid_utf8(text)) {
      // The raw bytes are kept, but the value is poisoned: it is never a name, key, location or
      // STACK_GLOBAL part, so no later layer takes it for text without this finding.
      error("MG-PICKLE-UTF8", std::string(op_name()) + " string is not valid UTF-8 (invalid bytes or a surrogate)",
            "strings in a checkpoint are valid UTF-8; the file was altered or not written by Python 3");
      v.poisoned = true;
    }
    v.s = std::move(text);
    return push_new(std::move(v));
  }
  bool push_py2_string(std::string text) {
    Value v = scalar(ValueKind::string);
    if (!valid_utf8(text)) {
      error("MG-PICKLE-UTF8", std::string(op_name()) + " Python-2 string is not valid UTF-8 (torch.load decodes it as UTF-8); kept as bytes",
            "re-save the checkpoint with Python 3");
      v.kind = ValueKind::bytes;
    }
    v.s = std::move(text);
    return push_new(std::move(v));
  }
  bool push_bytes(std::string_view data) {
    Value v = scalar(ValueKind::bytes);
    v.s.assign(data);
    return push_new(std::move(v));
  }
  bool insert_pair(ValueId dict, ValueId key, ValueId value);
  bool set_items(ValueId target, const std::vector<ValueId>& kv);
  bool append_items(ValueId target, const std::vector<ValueId>& vals);
  bool add_set_items(ValueId target, const std::vector<ValueId>& vals);
  bool self_insert(ValueId target, ValueId child) {
    if (target != child) return false;
    error("MG-PICKLE-CYCLE", std::string(op_name()) + " puts a container into itself; skipped",
          "a checkpoint never contains self-referencing containers");
    return true;
  }
  bool frozen_target(ValueId target) {
    if (!r_.arena[target].frozen) return false;
    error("MG-PICKLE-CYCLE", std::string(op_name()) + " mutates a " + value_kind_name(r_.arena[target].kind) +
                                 " that is already inside another container (a cycle or back-reference); skipped",
          "a checkpoint never contains self-referencing containers");
    return true;
  }
  bool push_global(std::string module, std::string name);
  bool call(ValueId callable, ValueId args, bool newobj);
  bool call_allowed(const CanonicalGlobal& g, ValueId f, ValueId args, bool newobj);
  bool call_inert(const CanonicalGlobal& g, ValueId f, ValueId args);
  bool refuse_call(ValueId f, ValueId args);
  bool bad_call(const std::string& why, ValueId f, ValueId args) {
    error("MG-PICKLE-BAD-CALL", why, "a torch.save state dict never makes this call");
    return push_poisoned({f, args});
  }
  bool rebuild_tensor(const std::string& fn, ValueId f, ValueId args);
  bool rebuild_parameter(bool with_state, ValueId f, ValueId args);
  bool rebuild_fail(const std::string& fn, const std::string& why, ValueId f, ValueId args) {
    error("MG-PICKLE-REBUILD-ARGS", fn + ": " + why, "torch.save writes exactly the arguments of torch-save-format.md §3.4");
    return push_poisoned({f, args});
  }
  bool build(ValueId target, ValueId state);
  bool persistent_id(ValueId pid);
  const std::vector<ValueId>& tuple_items(ValueId id) const { return r_.arena[id].items; }
  bool is_kind(ValueId id, ValueKind k) const { return r_.arena[id].kind == k && !r_.arena[id].poisoned; }
  bool is_int(ValueId id) const { return is_kind(id, ValueKind::integer); }
  bool is_int_tuple(ValueId id) const {
    if (!is_kind(id, ValueKind::tuple)) return false;
    for (ValueId c : r_.arena[id].items)
      if (!is_int(c)) return false;
    return true;
  }
  bool is_empty_ordered_dict(ValueId id) const {
    const Value& v = r_.arena[id];
    return v.kind == ValueKind::dict && v.ordered_dict && v.items.empty() && !v.poisoned;
  }
  const GlobalUse* allowed_global(ValueId id) const {
    const Value& v = r_.arena[id];
    if (v.kind != ValueKind::global || v.poisoned) return nullptr;
    const GlobalUse& g = r_.globals[static_cast<size_t>(v.i)];
    return g.cls == GlobalClass::allowed ? &g : nullptr;
  }

  // ---- opcode handlers
  bool op_mark();
  bool op_stop();
  bool op_pop();
  bool op_pop_mark();
  bool op_dup();
  bool op_float();
  bool op_binfloat();
  bool op_int();
  bool op_binint();
  bool op_binint1();
  bool op_binint2();
  bool op_long();
  bool op_long1();
  bool op_long4();
  bool op_none();
  bool op_newtrue();
  bool op_newfalse();
  bool op_string();
  bool op_binstring();
  bool op_short_binstring();
  bool op_unicode();
  bool op_binunicode();
  bool op_short_binunicode();
  bool op_binunicode8();
  bool op_binbytes();
  bool op_short_binbytes();
  bool op_binbytes8();
  bool op_bytearray8();
  bool op_empty_list();
  bool op_empty_tuple();
  bool op_empty_dict();
  bool op_empty_set();
  bool op_list();
  bool op_tuple();
  bool op_dict();
  bool op_frozenset();
  bool op_tuple1();
  bool op_tuple2();
  bool op_tuple3();
  bool op_append();
  bool op_appends();
  bool op_setitem();
  bool op_setitems();
  bool op_additems();
  bool op_get();
  bool op_binget();
  bool op_long_binget();
  bool op_put();
  bool op_binput();
  bool op_long_binput();
  bool op_memoize();
  bool op_persid();
  bool op_binpersid();
  bool op_global();
  bool op_stack_global();
  bool op_inst();
  bool op_obj();
  bool op_reduce();
  bool op_newobj();
  bool op_newobj_ex();
  bool op_build();
  bool op_ext1();
  bool op_ext2();
  bool op_ext4();
  bool op_proto();
  bool op_frame();
  bool op_next_buffer();
  bool op_readonly_buffer();
  bool tuple_n(size_t n);
  bool ext(uint64_t code);

  std::span<const uint8_t> in_;
  const PickleOptions& opts_;
  const Limits& lim_;
  Findings& out_;
  PickleResult r_;
  size_t pos_ = 0;     // next byte to read
  size_t op_pos_ = 0;  // position of the opcode being executed
  uint8_t op_ = 0;
  bool stopped_ = false;
  uint64_t frame_end_ = 0;
  uint64_t charged_ = 0;  // items copied by set()/frozenset()/copy-on-build, counted as objects
  uint64_t mem_ = 0;      // working memory charged so far (account())
  size_t stack_cap_ = 0;  // stack_ capacity already charged
  size_t memo_cap_ = 0;   // memo_ capacity already charged
  std::optional<Finding> fatal_;
  std::vector<ValueId> stack_;
  std::vector<size_t> marks_;  // stack size at each open MARK
  std::vector<ValueId> memo_;
  std::unordered_map<uint64_t, ValueId> sparse_memo_;   // indices that skipped ahead (already a finding)
  std::unordered_map<ValueId, ValueId> rebuilt_;        // copy-on-build: shell → built copy
  std::unordered_map<ValueId, ValueId> encoded_;        // _codecs.encode: str value → bytes value
  std::unordered_multimap<uint64_t, size_t> dict_keys_; // hash(dict, key) → position of the key in items
  std::unordered_map<std::string, uint32_t> storage_by_key_;
  std::vector<bool> storage_untyped_;                   // parallel to r_.storages
};

const std::array<PickleMachine::Op, 256>& PickleMachine::table() {
  static const std::array<Op, 256> t = [] {
    std::array<Op, 256> a{};
    auto set = [&a](uint8_t code, const char* name, Handler fn) { a[code] = Op{name, fn}; };
    using M = PickleMachine;
    set('(', "MARK", &M::op_mark);
    set('.', "STOP", &M::op_stop);
    set('0', "POP", &M::op_pop);
    set('1', "POP_MARK", &M::op_pop_mark);
    set('2', "DUP", &M::op_dup);
    set('F', "FLOAT", &M::op_float);
    set('G', "BINFLOAT", &M::op_binfloat);
    set('I', "INT", &M::op_int);
    set('J', "BININT", &M::op_binint);
    set('K', "BININT1", &M::op_binint1);
    set('M', "BININT2", &M::op_binint2);
    set('L', "LONG", &M::op_long);
    set(0x8a, "LONG1", &M::op_long1);
    set(0x8b, "LONG4", &M::op_long4);
    set('N', "NONE", &M::op_none);
    set(0x88, "NEWTRUE", &M::op_newtrue);
    set(0x89, "NEWFALSE", &M::op_newfalse);
    set('S', "STRING", &M::op_string);
    set('T', "BINSTRING", &M::op_binstring);
    set('U', "SHORT_BINSTRING", &M::op_short_binstring);
    set('V', "UNICODE", &M::op_unicode);
    set('X', "BINUNICODE", &M::op_binunicode);
    set(0x8c, "SHORT_BINUNICODE", &M::op_short_binunicode);
    set(0x8d, "BINUNICODE8", &M::op_binunicode8);
    set('B', "BINBYTES", &M::op_binbytes);
    set('C', "SHORT_BINBYTES", &M::op_short_binbytes);
    set(0x8e, "BINBYTES8", &M::op_binbytes8);
    set(0x96, "BYTEARRAY8", &M::op_bytearray8);
    set(']', "EMPTY_LIST", &M::op_empty_list);
    set(')', "EMPTY_TUPLE", &M::op_empty_tuple);
    set('}', "EMPTY_DICT", &M::op_empty_dict);
    set(0x8f, "EMPTY_SET", &M::op_empty_set);
    set('l', "LIST", &M::op_list);
    set('t', "TUPLE", &M::op_tuple);
    set('d', "DICT", &M::op_dict);
    set(0x91, "FROZENSET", &M::op_frozenset);
    set(0x85, "TUPLE1", &M::op_tuple1);
    set(0x86, "TUPLE2", &M::op_tuple2);
    set(0x87, "TUPLE3", &M::op_tuple3);
    set('a', "APPEND", &M::op_append);
    set('e', "APPENDS", &M::op_appends);
    set('s', "SETITEM", &M::op_setitem);
    set('u', "SETITEMS", &M::op_setitems);
    set(0x90, "ADDITEMS", &M::op_additems);
    set('g', "GET", &M::op_get);
    set('h', "BINGET", &M::op_binget);
    set('j', "LONG_BINGET", &M::op_long_binget);
    set('p', "PUT", &M::op_put);
    set('q', "BINPUT", &M::op_binput);
    set('r', "LONG_BINPUT", &M::op_long_binput);
    set(0x94, "MEMOIZE", &M::op_memoize);
    set('P', "PERSID", &M::op_persid);
    set('Q', "BINPERSID", &M::op_binpersid);
    set('c', "GLOBAL", &M::op_global);
    set(0x93, "STACK_GLOBAL", &M::op_stack_global);
    set('i', "INST", &M::op_inst);
    set('o', "OBJ", &M::op_obj);
    set('R', "REDUCE", &M::op_reduce);
    set(0x81, "NEWOBJ", &M::op_newobj);
    set(0x92, "NEWOBJ_EX", &M::op_newobj_ex);
    set('b', "BUILD", &M::op_build);
    set(0x82, "EXT1", &M::op_ext1);
    set(0x83, "EXT2", &M::op_ext2);
    set(0x84, "EXT4", &M::op_ext4);
    set(0x80, "PROTO", &M::op_proto);
    set(0x95, "FRAME", &M::op_frame);
    set(0x97, "NEXT_BUFFER", &M::op_next_buffer);
    set(0x98, "READONLY_BUFFER", &M::op_readonly_buffer);
    // Opcodes CPython 3's pickler (C _pickle and pickle.py, protocols 0-5) never writes for the values
    // a checkpoint holds: each use is MG-PICKLE-OPCODE-UNUSED (the run goes on). EXT1/2/4, PERSID and the
    // out-of-band buffer opcodes have codes of their own.
    for (uint8_t code : {uint8_t{'2'}, uint8_t{'i'}, uint8_t{'o'}, uint8_t{'S'}, uint8_t{'T'}, uint8_t{'U'},
                         uint8_t{0x92}})
      a[code].unused = true;
    for (auto& e : a)
      if (e.name == nullptr) e.name = "unknown opcode";
    return a;
  }();
  return t;
}

Result<PickleResult> PickleMachine::run() {
  const auto& ops = table();
  while (!stopped_) {
    if (pos_ >= in_.size()) {
      op_pos_ = pos_;
      fail("MG-PICKLE-TRUNCATED", "the pickle ends without STOP");
      return std::move(*fatal_);
    }
    op_pos_ = pos_;
    op_ = in_[pos_++];
    if (++r_.opcodes > lim_.max_pickle_opcodes) {
      fail("MG-PICKLE-LIMIT-OPCODES", "more than max_pickle_opcodes (" + std::to_string(lim_.max_pickle_opcodes) +
                                          ") opcodes", kHintLimit);
      return std::move(*fatal_);
    }
    const Op& op = ops[op_];
    if (op.fn == nullptr) {
      fail("MG-PICKLE-UNKNOWN-OPCODE", "unknown opcode " + hex_string(op_, 2) + " at offset " + std::to_string(file_offset()));
      return std::move(*fatal_);
    }
    if (op.unused)
      error("MG-PICKLE-OPCODE-UNUSED", std::string(op.name) + " (" + hex_string(op_, 2) + ") at offset " +
                                           std::to_string(file_offset()) +
                                           " is an opcode CPython's pickler never writes for checkpoint values",
            "torch.save does not write this opcode: the pickle was made by hand or by another tool");
    if (!(this->*op.fn)()) return std::move(*fatal_);
    if (!charge_growth(stack_.capacity(), stack_cap_) || !charge_growth(memo_.capacity(), memo_cap_))
      return std::move(*fatal_);
  }
  r_.end = pos_;
  r_.memory_bytes = mem_;
  if (opts_.require_stop_at_end && pos_ < in_.size()) {
    op_pos_ = pos_;
    error("MG-PICKLE-TRAILING", std::to_string(in_.size() - pos_) + " bytes follow STOP",
          "data.pkl ends at STOP; extra bytes are a hidden payload or damage");
  }
  return std::move(r_);
}

// ---------------------------------------------------------------- stack and frame opcodes

bool PickleMachine::op_mark() {
  if (marks_.size() >= lim_.max_nesting_depth)
    return fail("MG-PICKLE-LIMIT-DEPTH", "more than max_nesting_depth (" + std::to_string(lim_.max_nesting_depth) +
                                             ") MARKs open at once", kHintLimit);
  marks_.push_back(stack_.size());
  return true;
}

bool PickleMachine::op_stop() {
  if (!marks_.empty())
    return fail("MG-PICKLE-STACK", "STOP with " + std::to_string(marks_.size()) + " MARK frame(s) still open");
  if (stack_.size() != 1)
    return fail("MG-PICKLE-STACK", "STOP leaves " + std::to_string(stack_.size()) + " values on the stack instead of 1");
  if (pos_ < frame_end_) {
    // The C unpickler reading a file has consumed the whole frame: the next read (a legacy file's next
    // pickle) starts at the frame's end, not after STOP. CPython's pickler always ends a frame at STOP.
    fatal_ = located(make_unsafe("MG-PICKLE-FRAME-STRADDLE",
                                 "STOP leaves " + std::to_string(frame_end_ - pos_) +
                                     " bytes of its FRAME unread; unpicklers disagree on where the pickle ends",
                                 "a frame that runs past STOP hides bytes from scanners; do not load this file"));
    return false;
  }
  r_.root = stack_.back();
  stopped_ = true;
  return true;
}

bool PickleMachine::op_pop() {
  // As CPython: POP on an empty MARK frame discards the MARK.
  if (stack_.size() > frame_base()) {
    stack_.pop_back();
    return true;
  }
  std::vector<ValueId> discard;
  return pop_mark(discard);
}

bool PickleMachine::op_pop_mark() {
  std::vector<ValueId> discard;
  return pop_mark(discard);
}

bool PickleMachine::op_dup() {
  ValueId v;
  if (!peek(v)) return false;
  stack_.push_back(v);
  return true;
}

bool PickleMachine::op_proto() {
  uint64_t v;
  if (!read_le(1, v)) return false;
  if (v > 5) return fail("MG-PICKLE-PROTOCOL", "pickle protocol " + std::to_string(v) + " is newer than 5");
  r_.protocol = static_cast<int>(v);
  return true;
}

bool PickleMachine::op_frame() {
  if (r_.protocol < 4)
    return fail("MG-PICKLE-FRAME", "FRAME in a pickle of protocol " + std::to_string(r_.protocol) +
                                       " (frames exist from protocol 4, after PROTO)");
  uint64_t len;
  if (!read_le(8, len)) return false;
  if (pos_ < frame_end_) return fail("MG-PICKLE-FRAME", "FRAME starts before the previous frame ends");
  if (!fits(pos_, len, in_.size()))
    return fail("MG-PICKLE-TRUNCATED", "FRAME of " + std::to_string(len) + " bytes runs past the end of the pickle");
  frame_end_ = pos_ + len;
  return true;
}

// ---------------------------------------------------------------- scalars

bool PickleMachine::op_none() { return push_new(scalar(ValueKind::none)); }

bool PickleMachine::op_newtrue() {
  Value v = scalar(ValueKind::boolean);
  v.i = 1;
  return push_new(std::move(v));
}

bool PickleMachine::op_newfalse() { return push_new(scalar(ValueKind::boolean)); }

bool PickleMachine::op_binint() {
  uint64_t v;
  if (!read_le(4, v)) return false;
  return push_int(static_cast<int32_t>(static_cast<uint32_t>(v)));
}

bool PickleMachine::op_binint1() {
  uint64_t v;
  if (!read_le(1, v)) return false;
  return push_int(static_cast<int64_t>(v));
}

bool PickleMachine::op_binint2() {
  uint64_t v;
  if (!read_le(2, v)) return false;
  return push_int(static_cast<int64_t>(v));
}

bool PickleMachine::push_text_int(std::string_view line, bool long_form) {
  std::string_view digits = trim(line);
  if (long_form && !digits.empty() && digits.back() == 'L') digits.remove_suffix(1);
  bool big = false;
  auto v = parse_decimal(digits, big);
  if (!v) return fail("MG-PICKLE-BAD-ARG", std::string(op_name()) + " argument is not a decimal integer");
  if (big) return push_big_int(std::string(digits), std::string(op_name()) + " integer does not fit in int64");
  return push_int(*v);
}

bool PickleMachine::op_int() {
  std::string_view line;
  if (!read_line(line)) return false;
  if (line == "00" || line == "01") {  // protocol 0 booleans
    Value v = scalar(ValueKind::boolean);
    v.i = line == "01";
    return push_new(std::move(v));
  }
  return push_text_int(line, false);
}

bool PickleMachine::op_long() {
  std::string_view line;
  if (!read_line(line)) return false;
  return push_text_int(line, true);
}

bool PickleMachine::push_long_bytes(std::string_view p) {
  const size_t n = p.size();
  const auto byte = [&p](size_t k) { return static_cast<uint8_t>(p[k]); };
  bool fits64 = true;
  if (n > 8) {
    const uint8_t ext = (byte(7) & 0x80) ? 0xFF : 0x00;
    for (size_t k = 8; k < n; ++k)
      if (byte(k) != ext) fits64 = false;
  }
  if (!fits64 || n > lim_.max_int_bytes) {
    std::string raw = n <= 64 ? std::string(p) : std::string();
    return push_big_int(std::move(raw), std::string(op_name()) + " integer of " + std::to_string(n) + " bytes " +
                                            (fits64 ? "exceeds max_int_bytes" : "does not fit in int64"));
  }
  uint64_t u = 0;
  const size_t m = n < 8 ? n : 8;
  for (size_t k = 0; k < m; ++k) u |= static_cast<uint64_t>(byte(k)) << (8 * k);
  if (m > 0 && m < 8 && (byte(m - 1) & 0x80)) u |= ~uint64_t{0} << (8 * m);  // sign-extend
  return push_int(static_cast<int64_t>(u));
}

bool PickleMachine::op_long1() {
  uint64_t n;
  std::string_view p;
  if (!read_le(1, n) || !read_payload(n, p)) return false;
  return push_long_bytes(p);
}

bool PickleMachine::op_long4() {
  uint64_t n;
  if (!read_le(4, n)) return false;
  if (static_cast<int32_t>(static_cast<uint32_t>(n)) < 0) return fail("MG-PICKLE-BAD-ARG", "LONG4 with a negative length");
  std::string_view p;
  if (!read_payload(n, p)) return false;
  return push_long_bytes(p);
}

bool PickleMachine::op_float() {
  std::string_view line;
  if (!read_line(line)) return false;
  std::string_view t = trim(line);
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  double d = 0;
  auto res = std::from_chars(t.data(), t.data() + t.size(), d);
  if (t.empty() || res.ec != std::errc() || res.ptr != t.data() + t.size())
    return fail("MG-PICKLE-BAD-ARG", "FLOAT argument is not a number");
  Value v = scalar(ValueKind::floating);
  v.f = d;
  return push_new(std::move(v));
}

bool PickleMachine::op_binfloat() {
  if (!need(8)) return false;
  uint64_t bits = 0;
  for (size_t k = 0; k < 8; ++k) bits = (bits << 8) | in_[pos_ + k];  // big-endian
  pos_ += 8;
  Value v = scalar(ValueKind::floating);
  std::memcpy(&v.f, &bits, sizeof bits);
  return push_new(std::move(v));
}

// ---------------------------------------------------------------- strings and bytes

bool PickleMachine::op_string() {
  std::string_view line;
  if (!read_line(line)) return false;
  if (line.size() < 2 || line.front() != line.back() || (line.front() != '\'' && line.front() != '"'))
    return fail("MG-PICKLE-BAD-ARG", "STRING argument is not quoted");
  std::string text;
  if (!decode_string_escape(line.substr(1, line.size() - 2), text))
    return fail("MG-PICKLE-BAD-ARG", "STRING argument has a malformed escape");
  return push_py2_string(std::move(text));
}

bool PickleMachine::op_binstring() {
  uint64_t n;
  if (!read_le(4, n)) return false;
  if (static_cast<int32_t>(static_cast<uint32_t>(n)) < 0) return fail("MG-PICKLE-BAD-ARG", "BINSTRING with a negative length");
  std::string_view p;
  if (!read_payload(n, p)) return false;
  return push_py2_string(std::string(p));
}

bool PickleMachine::op_short_binstring() {
  uint64_t n;
  std::string_view p;
  if (!read_le(1, n) || !read_payload(n, p)) return false;
  return push_py2_string(std::string(p));
}

bool PickleMachine::op_unicode() {
  std::string_view line;
  if (!read_line(line)) return false;
  std::string text;
  if (!decode_raw_unicode_escape(line, text))
    return fail("MG-PICKLE-BAD-ARG", "UNICODE argument has a malformed \\u escape");
  return push_unicode(std::move(text));
}

bool PickleMachine::op_binunicode() {
  uint64_t n;
  std::string_view p;
  if (!read_le(4, n) || !read_payload(n, p)) return false;
  return push_unicode(std::string(p));
}

bool PickleMachine::op_short_binunicode() {
  uint64_t n;
  std::string_view p;
  if (!read_le(1, n) || !read_payload(n, p)) return false;
  return push_unicode(std::string(p));
}

bool PickleMachine::op_binunicode8() {
  uint64_t n;
  std::string_view p;
  if (!read_le(8, n) || !read_payload(n, p)) return false;
  return push_unicode(std::string(p));
}

bool PickleMachine::op_binbytes() {
  uint64_t n;
  std::string_view p;
  if (!read_le(4, n) || !read_payload(n, p)) return false;
  return push_bytes(p);
}

bool PickleMachine::op_short_binbytes() {
  uint64_t n;
  std::string_view p;
  if (!read_le(1, n) || !read_payload(n, p)) return false;
  return push_bytes(p);
}

bool PickleMachine::op_binbytes8() {
  uint64_t n;
  std::string_view p;
  if (!read_le(8, n) || !read_payload(n, p)) return false;
  return push_bytes(p);
}

bool PickleMachine::op_bytearray8() { return op_binbytes8(); }

// ---------------------------------------------------------------- containers

bool PickleMachine::op_empty_list() { return push_new(scalar(ValueKind::list)); }
bool PickleMachine::op_empty_tuple() { return push_new(scalar(ValueKind::tuple)); }
bool PickleMachine::op_empty_dict() { return push_new(scalar(ValueKind::dict)); }
bool PickleMachine::op_empty_set() { return push_new(scalar(ValueKind::set)); }

bool PickleMachine::op_list() {
  std::vector<ValueId> items;
  ValueId id;
  if (!pop_mark(items) || !make_container(ValueKind::list, items, id)) return false;
  stack_.push_back(id);
  return true;
}

bool PickleMachine::op_tuple() {
  std::vector<ValueId> items;
  ValueId id;
  if (!pop_mark(items) || !make_container(ValueKind::tuple, items, id)) return false;
  stack_.push_back(id);
  return true;
}

bool PickleMachine::tuple_n(size_t n) {
  std::vector<ValueId> items(n);
  for (size_t k = n; k-- > 0;)
    if (!pop(items[k])) return false;
  ValueId id;
  if (!make_container(ValueKind::tuple, items, id)) return false;
  stack_.push_back(id);
  return true;
}

bool PickleMachine::op_tuple1() { return tuple_n(1); }
bool PickleMachine::op_tuple2() { return tuple_n(2); }
bool PickleMachine::op_tuple3() { return tuple_n(3); }

bool PickleMachine::op_dict() {
  std::vector<ValueId> items;
  ValueId id;
  if (!pop_mark(items) || !make(scalar(ValueKind::dict), id)) return false;
  stack_.push_back(id);
  return set_items(id, items);
}

bool PickleMachine::op_frozenset() {
  std::vector<ValueId> items;
  ValueId id;
  if (!pop_mark(items) || !make_container(ValueKind::set, items, id)) return false;
  r_.arena[id].frozen = true;  // frozenset: immutable from birth
  stack_.push_back(id);
  return true;
}

bool PickleMachine::insert_pair(ValueId dict, ValueId key, ValueId value) {
  const Value& k = r_.arena[key];
  if (k.kind != ValueKind::string && k.kind != ValueKind::integer && k.kind != ValueKind::tuple)
    error("MG-PICKLE-DICT-KEY", std::string("dict key of type ") + value_kind_name(k.kind) + " (only str, int or tuple keys are expected)");
  if ((k.kind == ValueKind::string || k.kind == ValueKind::integer) && !k.poisoned) {
    const uint64_t content = k.kind == ValueKind::string ? std::hash<std::string_view>{}(k.s)
                                                         : std::hash<int64_t>{}(k.i) * 0x9E3779B97F4A7C15ull;
    const uint64_t h = content ^ (static_cast<uint64_t>(dict) * 0xC2B2AE3D27D4EB4Full) ^ static_cast<uint64_t>(k.kind);
    auto [lo, hi] = dict_keys_.equal_range(h);
    for (auto it = lo; it != hi; ++it) {
      const Value& other = r_.arena[r_.arena[dict].items[it->second]];
      if (other.kind == k.kind && !other.poisoned && other.s == k.s && other.i == k.i) {
        error("MG-PICKLE-DUP-KEY", "duplicate dict key " + (k.kind == ValueKind::string ? "'" + k.s + "'" : std::to_string(k.i)) +
                                       "; Python would silently keep the later value",
              "a checkpoint dict has unique keys; the file was altered");
        const size_t slot = it->second + 1;
        Value& c = r_.arena[value];
        if (is_container(c.kind)) c.frozen = true;
        if (c.depth + 1 > lim_.max_nesting_depth)
          return fail("MG-PICKLE-LIMIT-DEPTH", "containers nested deeper than max_nesting_depth", kHintLimit);
        if (c.depth + 1 > r_.arena[dict].depth) r_.arena[dict].depth = c.depth + 1;
        r_.arena[dict].items[slot] = value;
        return true;
      }
    }
    if (!account(kMapEntry)) return false;
    dict_keys_.emplace(h, r_.arena[dict].items.size());
  }
  return add_item(dict, key) && add_item(dict, value);
}

bool PickleMachine::set_items(ValueId target, const std::vector<ValueId>& kv) {
  if (kv.size() % 2 != 0) return fail("MG-PICKLE-STACK", std::string(op_name()) + " with an odd number of items");
  const Value& t = r_.arena[target];
  if (t.kind != ValueKind::dict || t.poisoned) {
    unsafe("MG-PICKLE-BAD-TARGET", std::string(op_name()) + " applied to " + describe(target) +
                                       " (only dicts take items; torch would run that object's __setitem__)");
    return true;
  }
  if (frozen_target(target)) return true;
  for (size_t k = 0; k < kv.size(); k += 2) {
    if (self_insert(target, kv[k]) || self_insert(target, kv[k + 1])) continue;
    if (!insert_pair(target, kv[k], kv[k + 1])) return false;
  }
  return true;
}

bool PickleMachine::append_items(ValueId target, const std::vector<ValueId>& vals) {
  const Value& t = r_.arena[target];
  if (t.kind != ValueKind::list || t.poisoned) {
    unsafe("MG-PICKLE-BAD-TARGET", std::string(op_name()) + " applied to " + describe(target) +
                                       " (only lists take APPEND; torch would call that object's append/extend)");
    return true;
  }
  if (frozen_target(target)) return true;
  for (ValueId v : vals) {
    if (self_insert(target, v)) continue;
    if (!add_item(target, v)) return false;
  }
  return true;
}

bool PickleMachine::add_set_items(ValueId target, const std::vector<ValueId>& vals) {
  const Value& t = r_.arena[target];
  if (t.kind != ValueKind::set || t.poisoned) {
    unsafe("MG-PICKLE-BAD-TARGET", std::string(op_name()) + " applied to " + describe(target) +
                                       " (only sets take ADDITEMS; torch would call that object's add)");
    return true;
  }
  if (frozen_target(target)) return true;
  for (ValueId v : vals) {
    if (self_insert(target, v)) continue;
    if (!add_item(target, v)) return false;
  }
  return true;
}

bool PickleMachine::op_append() {
  ValueId v, target;
  if (!pop(v) || !peek(target)) return false;
  return append_items(target, {v});
}

bool PickleMachine::op_appends() {
  std::vector<ValueId> items;
  ValueId target;
  if (!pop_mark(items) || !peek(target)) return false;
  return append_items(target, items);
}

bool PickleMachine::op_setitem() {
  ValueId k, v, target;
  if (!pop(v) || !pop(k) || !peek(target)) return false;
  return set_items(target, {k, v});
}

bool PickleMachine::op_setitems() {
  std::vector<ValueId> items;
  ValueId target;
  if (!pop_mark(items) || !peek(target)) return false;
  return set_items(target, items);
}

bool PickleMachine::op_additems() {
  std::vector<ValueId> items;
  ValueId target;
  if (!pop_mark(items) || !peek(target)) return false;
  return add_set_items(target, items);
}

// ---------------------------------------------------------------- memo

bool PickleMachine::op_get() {
  std::string_view line;
  if (!read_line(line)) return false;
  bool big = false;
  auto v = parse_decimal(line, big);
  if (!v || big || *v < 0) return fail("MG-PICKLE-BAD-ARG", "GET argument is not a memo index");
  return memo_get(static_cast<uint64_t>(*v));
}

bool PickleMachine::op_binget() {
  uint64_t idx;
  return read_le(1, idx) && memo_get(idx);
}

bool PickleMachine::op_long_binget() {
  uint64_t idx;
  return read_le(4, idx) && memo_get(idx);
}

bool PickleMachine::op_put() {
  std::string_view line;
  if (!read_line(line)) return false;
  bool big = false;
  auto v = parse_decimal(line, big);
  if (!v || big || *v < 0) return fail("MG-PICKLE-BAD-ARG", "PUT argument is not a memo index");
  return memo_put(static_cast<uint64_t>(*v));
}

bool PickleMachine::op_binput() {
  uint64_t idx;
  return read_le(1, idx) && memo_put(idx);
}

bool PickleMachine::op_long_binput() {
  uint64_t idx;
  return read_le(4, idx) && memo_put(idx);
}

bool PickleMachine::op_memoize() { return memo_put(memo_.size() + sparse_memo_.size()); }

// ---------------------------------------------------------------- globals

bool PickleMachine::push_global(std::string module, std::string name) {
  GlobalUse g;
  g.cls = classify_global(module, name);
  g.offset = file_offset();
  g.module = std::move(module);
  g.name = std::move(name);
  const std::string dotted = g.module + "." + g.name;
  if (g.cls == GlobalClass::unsafe)
    unsafe("MG-PICKLE-UNSAFE-GLOBAL", std::string(op_name()) + " " + dotted + " is not on the allowlist",
           "only tensors, dicts and plain values belong in a checkpoint; do not torch.load this file");
  else if (g.cls == GlobalClass::inert)
    out_.push(located(make_note("MG-PICKLE-INERT-GLOBAL", std::string(op_name()) + " " + dotted +
                                                              " is a training-checkpoint class, kept as inert data",
                                "export the model (audiocraft.utils.export) to get a plain state dict")));
  if (!account(2 * sizeof(GlobalUse) + heap_bytes(g.module) + heap_bytes(g.name))) return false;
  Value v = scalar(ValueKind::global);
  v.s = dotted;
  v.poisoned = g.cls == GlobalClass::unsafe;
  v.i = static_cast<int64_t>(r_.globals.size());
  r_.globals.push_back(std::move(g));
  return push_new(std::move(v));
}

bool PickleMachine::op_global() {
  std::string_view module, name;
  if (!read_line(module) || !read_line(name)) return false;
  if (!valid_utf8(module) || !valid_utf8(name)) return fail("MG-PICKLE-BAD-ARG", "GLOBAL name is not valid UTF-8");
  return push_global(std::string(module), std::string(name));
}

bool PickleMachine::op_stack_global() {
  ValueId name, module;
  if (!pop(name) || !pop(module)) return false;
  if (!is_kind(name, ValueKind::string) || !is_kind(module, ValueKind::string))
    return fail("MG-PICKLE-BAD-ARG", "STACK_GLOBAL needs two str values on the stack");
  return push_global(r_.arena[module].s, r_.arena[name].s);
}

bool PickleMachine::op_inst() {
  std::string_view module, name;
  if (!read_line(module) || !read_line(name)) return false;
  if (!valid_utf8(module) || !valid_utf8(name)) return fail("MG-PICKLE-BAD-ARG", "INST name is not valid UTF-8");
  std::vector<ValueId> args;
  if (!pop_mark(args)) return false;
  if (!push_global(std::string(module), std::string(name))) return false;
  const ValueId cls = stack_.back();
  stack_.pop_back();
  ValueId tuple;
  if (!make_container(ValueKind::tuple, args, tuple)) return false;
  return call(cls, tuple, false);
}

bool PickleMachine::op_obj() {
  std::vector<ValueId> items;
  if (!pop_mark(items)) return false;
  if (items.empty()) return fail("MG-PICKLE-STACK", "OBJ without a class in its MARK frame");
  ValueId tuple;
  if (!make_container(ValueKind::tuple, std::vector<ValueId>(items.begin() + 1, items.end()), tuple)) return false;
  return call(items[0], tuple, true);
}

bool PickleMachine::ext(uint64_t code) {
  unsafe("MG-PICKLE-EXT", std::string(op_name()) + " " + std::to_string(code) +
                              " names a global through the copyreg extension registry",
         "extension codes are never written by torch.save; do not load this file");
  return push_poisoned();
}

bool PickleMachine::op_ext1() {
  uint64_t c;
  return read_le(1, c) && ext(c);
}
bool PickleMachine::op_ext2() {
  uint64_t c;
  return read_le(2, c) && ext(c);
}
bool PickleMachine::op_ext4() {
  uint64_t c;
  return read_le(4, c) && ext(c);
}

// ---------------------------------------------------------------- calls

bool PickleMachine::op_reduce() {
  ValueId f, args;
  if (!pop(args) || !pop(f)) return false;
  return call(f, args, false);
}

bool PickleMachine::op_newobj() {
  ValueId cls, args;
  if (!pop(args) || !pop(cls)) return false;
  return call(cls, args, true);
}

bool PickleMachine::op_newobj_ex() {
  ValueId cls, args, kwargs;
  if (!pop(kwargs) || !pop(args) || !pop(cls)) return false;
  const Value& kw = r_.arena[kwargs];
  const bool no_kwargs = kw.kind == ValueKind::dict && kw.items.empty() && !kw.poisoned;
  if (!no_kwargs && r_.arena[cls].kind == ValueKind::global && !r_.arena[cls].poisoned)
    return bad_call("NEWOBJ_EX with keyword arguments for " + describe(cls), cls, args);
  return call(cls, args, true);
}

bool PickleMachine::refuse_call(ValueId f, ValueId args) {
  unsafe("MG-PICKLE-UNSAFE-CALL", std::string(op_name()) + " calls " + describe(f) + ", which is not allowlisted");
  return push_poisoned({f, args});
}

bool PickleMachine::call(ValueId f, ValueId args, bool newobj) {
  const Value& fv = r_.arena[f];
  if (fv.kind != ValueKind::global || fv.poisoned) return refuse_call(f, args);
  const GlobalUse& g = r_.globals[static_cast<size_t>(fv.i)];
  const CanonicalGlobal cg = canonical_global(g.module, g.name);
  if (g.cls == GlobalClass::allowed) return call_allowed(cg, f, args, newobj);
  if (g.cls == GlobalClass::inert) return call_inert(cg, f, args);
  return refuse_call(f, args);
}

bool PickleMachine::call_allowed(const CanonicalGlobal& g, ValueId f, ValueId args, bool newobj) {
  const std::string dotted = g.module + "." + g.name;
  if (!is_kind(args, ValueKind::tuple)) return bad_call(dotted + " called with non-tuple arguments", f, args);
  const std::vector<ValueId> a = tuple_items(args);
  if (g.module == "collections" && g.name == "OrderedDict") {
    if (!a.empty()) return bad_call("OrderedDict called with arguments", f, args);
    Value d = scalar(ValueKind::dict);
    d.ordered_dict = true;
    return push_new(std::move(d));
  }
  if (newobj) return bad_call(std::string(op_name()) + " on " + dotted, f, args);
  if (g.module == "torch._utils") {
    if (g.name == "_rebuild_parameter") return rebuild_parameter(false, f, args);
    if (g.name == "_rebuild_parameter_with_state") return rebuild_parameter(true, f, args);
    return rebuild_tensor(g.name, f, args);
  }
  if (g.module == "_codecs" && g.name == "encode") {
    if (a.size() != 2 || !is_kind(a[0], ValueKind::string) || !is_kind(a[1], ValueKind::string) ||
        (r_.arena[a[1]].s != "latin1" && r_.arena[a[1]].s != "latin-1"))
      return bad_call("_codecs.encode called with arguments other than (str, 'latin1')", f, args);
    if (auto it = encoded_.find(a[0]); it != encoded_.end()) {  // no repeated copies of one shared str
      stack_.push_back(it->second);
      return true;
    }
    const std::string& s = r_.arena[a[0]].s;
    std::string out;
    out.reserve(s.size());
    for (size_t k = 0; k < s.size(); ++k) {
      const auto c = static_cast<uint8_t>(s[k]);
      if (c < 0x80) { out += static_cast<char>(c); continue; }
      if ((c == 0xC2 || c == 0xC3) && k + 1 < s.size()) {
        out += static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(s[k + 1]) & 0x3F));
        ++k;
        continue;
      }
      return bad_call("_codecs.encode of a str with characters outside latin-1", f, args);
    }
    Value b = scalar(ValueKind::bytes);
    b.s = std::move(out);
    ValueId id;
    if (!make(std::move(b), id)) return false;
    if (!account(kMapEntry)) return false;
    encoded_[a[0]] = id;
    stack_.push_back(id);
    return true;
  }
  if (g.module == "builtins") {
    if (g.name == "bytes" || g.name == "bytearray") {
      if (a.empty()) return push_new(scalar(ValueKind::bytes));
      if (g.name == "bytearray" && a.size() == 1 && is_kind(a[0], ValueKind::bytes)) {
        stack_.push_back(a[0]);  // values are immutable here: share instead of copying
        return true;
      }
      return bad_call(g.name + " called with unexpected arguments", f, args);
    }
    if (g.name == "set" || g.name == "frozenset") {
      std::vector<ValueId> items;
      if (a.size() == 1) {
        const Value& src = r_.arena[a[0]];
        if ((src.kind != ValueKind::list && src.kind != ValueKind::tuple && src.kind != ValueKind::set) || src.poisoned)
          return bad_call(g.name + " of " + describe(a[0]), f, args);
        items = src.items;
        if (!charge(items.size())) return false;
      } else if (!a.empty()) {
        return bad_call(g.name + " called with more than one argument", f, args);
      }
      ValueId id;
      if (!make_container(ValueKind::set, items, id)) return false;
      r_.arena[id].frozen = g.name == "frozenset";
      stack_.push_back(id);
      return true;
    }
    if (g.name == "complex") {
      if (a.empty() || a.size() > 2) return bad_call("complex called with unexpected arguments", f, args);
      for (ValueId x : a)
        if (!is_kind(x, ValueKind::floating) && !is_int(x)) return bad_call("complex of a non-number", f, args);
      ValueId id;
      if (!make_container(ValueKind::object, {f, args}, id)) return false;
      stack_.push_back(id);
      return true;
    }
  }
  // Storage classes, UntypedStorage and dtypes are names, not callables, in a state dict.
  return bad_call(std::string(op_name()) + " calls " + dotted + ", which a state dict only names", f, args);
}

bool PickleMachine::call_inert(const CanonicalGlobal& g, ValueId f, ValueId args) {
  const bool plain_args = is_kind(args, ValueKind::tuple);
  const size_t n = plain_args ? r_.arena[args].items.size() : 0;
  // mirrors omegaconf's pickled metadata (resolver_cache is a defaultdict(dict)): rebuilt as a plain dict
  if (plain_args && ((g.module == "collections" && g.name == "defaultdict" && n <= 1) ||
                     (g.module == "builtins" && g.name == "dict" && n == 0)))
    return push_new(scalar(ValueKind::dict));
  if (plain_args && g.module == "builtins" && g.name == "list" && n == 0) return push_new(scalar(ValueKind::list));
  ValueId id;
  if (!make_container(ValueKind::object, {f, args}, id)) return false;
  stack_.push_back(id);
  return true;
}

bool PickleMachine::rebuild_tensor(const std::string& fn, ValueId f, ValueId args) {
  const std::vector<ValueId> a = tuple_items(args);
  const bool v2 = fn == "_rebuild_tensor_v2", v3 = fn == "_rebuild_tensor_v3";
  const size_t base = v3 ? 7 : v2 ? 6 : 4;
  const bool has_meta = (v2 || v3) && a.size() == base + 1;
  if (a.size() != base && !has_meta)
    return rebuild_fail(fn, "takes " + std::to_string(base) + " arguments, got " + std::to_string(a.size()), f, args);
  if (!is_kind(a[0], ValueKind::storage)) return rebuild_fail(fn, "argument 1 is not a storage", f, args);
  const auto storage = static_cast<uint32_t>(r_.arena[a[0]].i);
  if (v3 != storage_untyped_[storage])
    return rebuild_fail(fn, v3 ? "needs an UntypedStorage" : "needs a typed storage, got an UntypedStorage", f, args);
  if (!is_int(a[1])) return rebuild_fail(fn, "storage_offset is not an int64", f, args);
  if (!is_int_tuple(a[2])) return rebuild_fail(fn, "size is not a tuple of int64", f, args);
  if (!is_int_tuple(a[3])) return rebuild_fail(fn, "stride is not a tuple of int64", f, args);
  if (r_.arena[a[2]].items.size() != r_.arena[a[3]].items.size())
    return rebuild_fail(fn, "size and stride have different lengths", f, args);
  TensorRef t;
  t.storage = storage;
  t.dtype = r_.storages[storage].dtype;
  t.storage_offset = r_.arena[a[1]].i;
  for (ValueId x : r_.arena[a[2]].items) t.sizes.push_back(r_.arena[x].i);
  for (ValueId x : r_.arena[a[3]].items) t.strides.push_back(r_.arena[x].i);
  t.offset = file_offset();
  if (v2 || v3) {
    if (!is_kind(a[4], ValueKind::boolean)) return rebuild_fail(fn, "requires_grad is not a bool", f, args);
    t.requires_grad = r_.arena[a[4]].i != 0;
    if (!is_empty_ordered_dict(a[5])) return rebuild_fail(fn, "backward_hooks is not an empty OrderedDict", f, args);
    if (v3) {
      const GlobalUse* g = allowed_global(a[6]);
      std::optional<DType> dt;
      if (g != nullptr && canonical_global(g->module, g->name).module == "torch") dt = dtype_from_name(g->name);
      if (!dt) return rebuild_fail(fn, "dtype is not a supported torch dtype", f, args);
      t.dtype = *dt;
    }
    if (has_meta) {
      const Value& m = r_.arena[a[base]];
      if (m.kind != ValueKind::none && !(m.kind == ValueKind::dict && m.items.empty()))
        return rebuild_fail(fn, "tensor metadata (conjugate/negative bit) is not supported", f, args);
    }
  }
  if (!account(2 * sizeof(TensorRef) + (t.sizes.capacity() + t.strides.capacity()) * sizeof(int64_t))) return false;
  Value v = scalar(ValueKind::tensor);
  v.i = static_cast<int64_t>(r_.tensors.size());
  r_.tensors.push_back(std::move(t));
  return push_new(std::move(v));
}

bool PickleMachine::rebuild_parameter(bool with_state, ValueId f, ValueId args) {
  const std::string fn = with_state ? "_rebuild_parameter_with_state" : "_rebuild_parameter";
  const std::vector<ValueId> a = tuple_items(args);
  if (a.size() != (with_state ? 4u : 3u))
    return rebuild_fail(fn, "takes " + std::to_string(with_state ? 4 : 3) + " arguments, got " + std::to_string(a.size()), f, args);
  if (!is_kind(a[0], ValueKind::tensor)) return rebuild_fail(fn, "argument 1 is not a tensor", f, args);
  if (!is_kind(a[1], ValueKind::boolean)) return rebuild_fail(fn, "requires_grad is not a bool", f, args);
  if (!is_empty_ordered_dict(a[2])) return rebuild_fail(fn, "backward_hooks is not an empty OrderedDict", f, args);
  if (with_state && !is_kind(a[3], ValueKind::dict) && !is_kind(a[3], ValueKind::none))
    return rebuild_fail(fn, "state is not a dict", f, args);  // attributes are kept out of the tree: never set
  TensorRef& t = r_.tensors[static_cast<size_t>(r_.arena[a[0]].i)];
  t.parameter = true;
  t.requires_grad = r_.arena[a[1]].i != 0;
  stack_.push_back(a[0]);
  return true;
}

bool PickleMachine::op_build() {
  ValueId state, target;
  if (!pop(state) || !peek(target)) return false;
  return build(target, state);
}

bool PickleMachine::build(ValueId target, ValueId state) {
  const Value& t = r_.arena[target];
  if (t.kind == ValueKind::dict && t.ordered_dict && !t.poisoned) {
    // nn.Module.state_dict(): OrderedDict with {'_metadata': ...} as instance state; ignored.
    const Value& s = r_.arena[state];
    const bool metadata_only = s.kind == ValueKind::dict && s.items.size() == 2 &&
                               r_.arena[s.items[0]].kind == ValueKind::string && r_.arena[s.items[0]].s == "_metadata";
    if (!metadata_only && s.kind != ValueKind::none)
      error("MG-PICKLE-BUILD-STATE", "BUILD on an OrderedDict with a state other than {'_metadata': ...}",
            "state dicts carry only _metadata as OrderedDict attributes");
    return true;
  }
  const bool inert_object = t.kind == ValueKind::object && !t.poisoned && !t.items.empty() &&
                            r_.arena[t.items[0]].kind == ValueKind::global &&
                            r_.globals[static_cast<size_t>(r_.arena[t.items[0]].i)].cls == GlobalClass::inert;
  if (!inert_object) {
    unsafe("MG-PICKLE-BAD-TARGET", "BUILD applied to " + describe(target) +
                                       " (torch would run its __setstate__ or set attributes on it)");
    return true;
  }
  if (self_insert(target, state)) return true;
  if (!t.frozen) return add_item(target, state);
  // Copy-on-build (pickle.h): earlier references keep the unbuilt shell; the stack slot and later GETs
  // see the built copy.
  const std::vector<ValueId> items = t.items;
  if (!charge(items.size())) return false;
  ValueId copy;
  if (!make(scalar(ValueKind::object), copy)) return false;
  r_.arena[copy].offset = r_.arena[target].offset;
  for (ValueId c : items)
    if (!add_item(copy, c)) return false;
  if (!add_item(copy, state)) return false;
  if (!account(kMapEntry)) return false;
  stack_.back() = copy;
  rebuilt_[target] = copy;
  return true;
}

// ---------------------------------------------------------------- persistent ids and out-of-band data

bool PickleMachine::op_persid() {
  std::string_view line;
  if (!read_line(line)) return false;
  error("MG-PICKLE-PERSID", "text PERSID '" + std::string(line.substr(0, 64)) + "' (torch.save writes BINPERSID tuples)");
  return push_poisoned();
}

bool PickleMachine::op_binpersid() {
  ValueId pid;
  if (!pop(pid)) return false;
  return persistent_id(pid);
}

bool PickleMachine::persistent_id(ValueId pid) {
  auto bad = [&](const std::string& why) {
    error("MG-PICKLE-PERSID", "persistent id " + why,
          "torch.save writes ('storage', StorageClass, key, location, numel)");
    return push_poisoned({pid});
  };
  if (!is_kind(pid, ValueKind::tuple)) return bad("is " + describe(pid) + ", not a tuple");
  const std::vector<ValueId> a = tuple_items(pid);
  if (!a.empty() && is_kind(a[0], ValueKind::string) && r_.arena[a[0]].s == "module") {
    unsafe("MG-PICKLE-PERSID-MODULE", "persistent id ('module', ...) carries a module's source code",
           "whole-module saves run code on load; save a state_dict instead");
    return push_poisoned({pid});
  }
  const size_t want = opts_.legacy_persistent_ids ? 6 : 5;
  if (a.size() != want) return bad("has " + std::to_string(a.size()) + " items, expected " + std::to_string(want));
  if (!is_kind(a[0], ValueKind::string) || r_.arena[a[0]].s != "storage") return bad("does not start with 'storage'");
  const GlobalUse* g = allowed_global(a[1]);
  std::optional<DType> dtype;
  bool untyped = false;
  if (g != nullptr) {
    const CanonicalGlobal cg = canonical_global(g->module, g->name);
    if (cg.module == "torch") dtype = dtype_from_storage_class(cg.name);
    if (cg.module == "torch.storage" && cg.name == "UntypedStorage") {
      dtype = DType::uint8;
      untyped = true;
    }
  }
  if (!dtype) return bad("names " + describe(a[1]) + ", not a torch storage class");
  if (!is_kind(a[2], ValueKind::string)) return bad("key is not a str");
  if (!is_kind(a[3], ValueKind::string)) return bad("location is not a str");
  if (!is_int(a[4]) || r_.arena[a[4]].i < 0) return bad("numel is not a non-negative int64");
  if (want == 6 && r_.arena[a[5]].kind != ValueKind::none) return bad("has view metadata (pre-0.4 storage views)");
  const std::string& key = r_.arena[a[2]].s;
  const std::string& location = r_.arena[a[3]].s;
  const auto numel = static_cast<uint64_t>(r_.arena[a[4]].i);
  uint32_t index;
  if (auto it = storage_by_key_.find(key); it != storage_by_key_.end()) {
    index = it->second;
    const StorageRef& s = r_.storages[index];
    if (s.dtype != *dtype || storage_untyped_[index] != untyped || s.location != location || s.numel != numel)
      error("MG-PICKLE-STORAGE-MISMATCH", "storage '" + key + "' is named again with a different class, location or numel",
            "torch uses the first occurrence silently; the file was altered");
  } else {
    if (!account(2 * sizeof(StorageRef) + kMapEntry + 2 * heap_bytes(key) + heap_bytes(location) + 1)) return false;
    StorageRef s;
    s.key = key;
    s.dtype = *dtype;
    s.location = location;
    s.numel = numel;
    s.offset = file_offset();
    index = static_cast<uint32_t>(r_.storages.size());
    r_.storages.push_back(std::move(s));
    storage_untyped_.push_back(untyped);
    storage_by_key_.emplace(key, index);
  }
  Value v = scalar(ValueKind::storage);
  v.i = index;
  return push_new(std::move(v));
}

bool PickleMachine::op_next_buffer() {
  error("MG-PICKLE-OOB-BUFFER", "NEXT_BUFFER refers to an out-of-band buffer, which a file cannot carry",
        "torch.save never uses pickle protocol 5 out-of-band buffers");
  return push_poisoned();
}

bool PickleMachine::op_readonly_buffer() {
  ValueId v;
  if (!peek(v)) return false;
  error("MG-PICKLE-OOB-BUFFER", "READONLY_BUFFER (out-of-band buffers are not supported)",
        "torch.save never uses pickle protocol 5 out-of-band buffers");
  return true;
}

}  // namespace

// ---------------------------------------------------------------- public entry points

Result<PickleResult> run_pickle(std::span<const uint8_t> bytes, const PickleOptions& opts, const Limits& limits,
                                Findings& findings) {
  PickleMachine m(bytes, opts, limits, findings);
  auto r = m.run();
  if (!r && opts.partial != nullptr) *opts.partial = m.take_partial();
  return r;
}

const GlobalUse* global_of(const PickleResult& r, ValueId id) noexcept {
  if (id == kNoValue || id >= r.arena.size()) return nullptr;
  const Value& v = r.arena[id];
  if (v.kind != ValueKind::global || v.i < 0 || static_cast<size_t>(v.i) >= r.globals.size()) return nullptr;
  return &r.globals[static_cast<size_t>(v.i)];
}

std::string object_class(const PickleResult& r, ValueId id) {
  if (id == kNoValue || id >= r.arena.size()) return "";
  const Value& v = r.arena[id];
  if (v.kind != ValueKind::object || v.items.empty()) return "";
  const GlobalUse* g = global_of(r, v.items[0]);
  if (g == nullptr) return "";
  const CanonicalGlobal cg = canonical_global(g->module, g->name);
  return cg.module + "." + cg.name;
}

ValueId object_state(const PickleResult& r, ValueId id) noexcept {
  if (id == kNoValue || id >= r.arena.size()) return kNoValue;
  const Value& v = r.arena[id];
  if (v.kind != ValueKind::object || v.items.size() < 3) return kNoValue;
  return v.items.back();
}

}  // namespace mgcheck::format
