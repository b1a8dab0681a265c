#include "mgcheck/format/byte_pass.h"

#include <algorithm>
#include <memory>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/container.h"

namespace mgcheck::format {
namespace {

// A byte range of the file and what to compute over it.
struct Item {
  uint64_t begin = 0, end = 0;  // absolute file offsets
  bool is_crc = false;
  uint32_t index = 0;           // record index (crc) or tensor index (scan)
  DType dtype = DType::float32;
  uint32_t crc = 0;
  FloatCounts counts;
};

bool is_scanned_float(DType d) {
  return d == DType::float16 || d == DType::bfloat16 || d == DType::float32 || d == DType::float64;
}

std::vector<Item> plan(const ByteSource& src, const Checkpoint& ck, const BytePassOptions& opts) {
  std::vector<Item> items;
  if (opts.verify_crc) {
    for (size_t i = 0; i < ck.records.size(); ++i) {
      const ZipRecord& r = ck.records[i];
      if (!r.crc_verifiable || !fits(r.data_offset, r.size, src.size())) continue;
      Item it;
      it.begin = r.data_offset;
      it.end = r.data_offset + r.size;
      it.is_crc = true;
      it.index = static_cast<uint32_t>(i);
      items.push_back(it);
    }
  }
  if (opts.scan) {
    std::vector<char> seen(ck.tensors.size(), 0);
    for (const auto& nt : ck.named) {
      if (!opts.path_prefix.empty() && nt.path.rfind(opts.path_prefix, 0) != 0) continue;
      if (nt.tensor >= ck.tensors.size() || seen[nt.tensor]) continue;
      seen[nt.tensor] = 1;
      const TensorView& t = ck.tensors[nt.tensor];
      if (!t.valid || !is_scanned_float(t.dtype) || t.numel == 0) continue;
      if (!(t.contiguous || t.sizes.empty())) continue;  // strided views: scan_weights walks them
      const uint64_t isz = itemsize(t.dtype);
      auto len = checked_mul(t.numel, isz);
      auto begin = checked_add(t.storage_file_offset, t.first_byte);
      if (!len || !begin || !fits(*begin, *len, src.size()) || !fits(t.first_byte, *len, t.storage.size())) continue;
      if (*begin % isz != 0) continue;  // an element could straddle two reads
      Item it;
      it.begin = *begin;
      it.end = *begin + *len;
      it.index = nt.tensor;
      it.dtype = t.dtype;
      items.push_back(it);
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.begin < b.begin; });
  return items;
}

void finish(const Item& it, const ByteSource& src, Checkpoint& ck, BytePass& out, Findings& findings) {
  if (it.is_crc) {
    ZipRecord& r = ck.records[it.index];
    r.crc_ok = it.crc == r.crc32;
    ++out.records_verified;
    if (auto f = crc_finding(r, it.crc, src.name())) findings.push(std::move(*f));
    return;
  }
  ScannedCounts sc;
  sc.counts = it.counts;
  const uint64_t isz = itemsize(it.dtype);
  if (sc.counts.first_nan) sc.first_nan_offset = it.begin + *sc.counts.first_nan * isz;
  if (sc.counts.first_inf) sc.first_inf_offset = it.begin + *sc.counts.first_inf * isz;
  out.counts[it.index] = sc;
}

}  // namespace

BytePass byte_pass(const ByteSource& src, Checkpoint& ck, const BytePassOptions& opts, Findings& findings) {
  BytePass out;
  out.counts.resize(ck.tensors.size());
  std::vector<Item> items = plan(src, ck, opts);
  if (items.empty()) return out;
  const uint64_t chunk = std::max<uint64_t>(64, (static_cast<uint64_t>(opts.chunk_bytes) + 63) / 64 * 64);
  // Ranges closer than this are read through (local headers between records are ~100 bytes).
  constexpr uint64_t kReadThrough = 64 * 1024;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[chunk]);

  std::vector<size_t> active;  // indices into items that started and have not ended
  size_t next = 0;
  // Merge the items into spans, then read each span in chunk-aligned pieces.
  while (next < items.size()) {
    uint64_t span_begin = items[next].begin;
    uint64_t span_end = items[next].end;
    size_t last = next + 1;
    while (last < items.size() && items[last].begin <= span_end + kReadThrough) {
      span_end = std::max(span_end, items[last].end);
      ++last;
    }
    // Items of this span: next .. last-1, sorted by begin.
    size_t started = next;
    uint64_t pos = span_begin;
    do {
      // Chunk ends fall on absolute multiples of `chunk` (or the span end): every scan item starts
      // element-aligned, so no element is split between two reads.
      const uint64_t chunk_end = std::min(span_end, (pos / chunk + 1) * chunk);
      const uint64_t n = chunk_end - pos;
      if (n > 0 && !src.copy_out(pos, std::span<uint8_t>(buf.get(), static_cast<size_t>(n)))) {
        Finding f = make_error("MG-IO-READ",
                               "reading " + std::to_string(n) + " bytes at offset " + std::to_string(pos) +
                                   " failed (the file shrank or the device returned an error)",
                               "make sure the file is not being written to, then check the storage it is on");
        f.file = src.name();
        f.offset = pos;
        findings.push(std::move(f));
        out.read_failed = true;
        for (auto& c : out.counts) c.reset();
        return out;
      }
      out.bytes_read += n;
      while (started < last && items[started].begin < chunk_end) active.push_back(started++);
      for (size_t a : active) {
        Item& it = items[a];
        const uint64_t lo = std::max(pos, it.begin), hi = std::min(chunk_end, it.end);
        if (lo >= hi) continue;
        std::span<const uint8_t> part(buf.get() + (lo - pos), static_cast<size_t>(hi - lo));
        if (it.is_crc)
          it.crc = crc32(part, it.crc);
        else
          scan_float_bytes(it.dtype, part, it.counts, (lo - it.begin) / itemsize(it.dtype));
      }
      // Items that ended within this chunk are complete.
      std::erase_if(active, [&](size_t a) {
        if (items[a].end > chunk_end) return false;
        finish(items[a], src, ck, out, findings);
        return true;
      });
      pos = chunk_end;
    } while (pos < span_end);
    // Zero-length items at the span end (an empty record) were started but never overlapped.
    while (started < last) active.push_back(started++);
    std::erase_if(active, [&](size_t a) {
      finish(items[a], src, ck, out, findings);
      return true;
    });
    next = last;
  }
  return out;
}

}  // namespace mgcheck::format
