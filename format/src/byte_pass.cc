#include "mgcheck/format/byte_pass.h"

#include <algorithm>
#include <memory>
#include <thread>

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

// What one group of items produced (a thread's share).
struct Partial {
  Findings findings;
  uint64_t bytes_read = 0;
  uint32_t records_verified = 0;
  bool read_failed = false;
};

void finish(const Item& it, const ByteSource& src, Checkpoint& ck, BytePass& out, Partial& part) {
  if (it.is_crc) {
    ZipRecord& r = ck.records[it.index];
    r.crc_ok = it.crc == r.crc32;
    ++part.records_verified;
    if (auto f = crc_finding(r, it.crc, src.name())) part.findings.push(std::move(*f));
    return;
  }
  ScannedCounts sc;
  sc.counts = it.counts;
  const uint64_t isz = itemsize(it.dtype);
  if (sc.counts.first_nan) sc.first_nan_offset = it.begin + *sc.counts.first_nan * isz;
  if (sc.counts.first_inf) sc.first_inf_offset = it.begin + *sc.counts.first_inf * isz;
  out.counts[it.index] = sc;  // distinct tensor per item: groups never write the same element
}

// Reads items [first, last) (sorted by begin) span by span in chunk-aligned pieces.
void sweep(const ByteSource& src, Checkpoint& ck, std::vector<Item>& items, size_t first, size_t last_item,
           uint64_t chunk, BytePass& out, Partial& part) {
  // Ranges closer than this are read through (local headers between records are ~100 bytes).
  constexpr uint64_t kReadThrough = 64 * 1024;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[chunk]);
  std::vector<size_t> active;  // indices into items that started and have not ended
  size_t next = first;
  while (next < last_item) {
    uint64_t span_begin = items[next].begin;
    uint64_t span_end = items[next].end;
    size_t last = next + 1;
    while (last < last_item && items[last].begin <= span_end + kReadThrough) {
      span_end = std::max(span_end, items[last].end);
      ++last;
    }
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
        part.findings.push(std::move(f));
        part.read_failed = true;
        return;
      }
      part.bytes_read += n;
      while (started < last && items[started].begin < chunk_end) active.push_back(started++);
      for (size_t a : active) {
        Item& it = items[a];
        const uint64_t lo = std::max(pos, it.begin), hi = std::min(chunk_end, it.end);
        if (lo >= hi) continue;
        std::span<const uint8_t> piece(buf.get() + (lo - pos), static_cast<size_t>(hi - lo));
        if (it.is_crc)
          it.crc = crc32(piece, it.crc);
        else
          scan_float_bytes(it.dtype, piece, it.counts, (lo - it.begin) / itemsize(it.dtype));
      }
      // Items that ended within this chunk are complete.
      std::erase_if(active, [&](size_t a) {
        if (items[a].end > chunk_end) return false;
        finish(items[a], src, ck, out, part);
        return true;
      });
      pos = chunk_end;
    } while (pos < span_end);
    // Zero-length items at the span end (an empty record) were started but never overlapped.
    while (started < last) active.push_back(started++);
    std::erase_if(active, [&](size_t a) {
      finish(items[a], src, ck, out, part);
      return true;
    });
    next = last;
  }
}

// Cut points [0 = c0 < c1 < ... < cn = items.size()] splitting the bytes into ~equal groups, only where no
// earlier item reaches past the next one's start.
std::vector<size_t> cuts(const std::vector<Item>& items, unsigned groups) {
  std::vector<size_t> out{0};
  const uint64_t lo = items.front().begin;
  uint64_t hi = lo;
  for (const auto& it : items) hi = std::max(hi, it.end);
  uint64_t reach = 0;  // max end of items before index i
  unsigned g = 1;
  for (size_t i = 0; i < items.size() && g < groups; ++i) {
    const uint64_t target = lo + (hi - lo) / groups * g;
    if (i > 0 && reach <= items[i].begin && items[i].begin >= target) {
      out.push_back(i);
      ++g;
    }
    reach = std::max(reach, items[i].end);
  }
  out.push_back(items.size());
  return out;
}

}  // namespace

BytePass byte_pass(const ByteSource& src, Checkpoint& ck, const BytePassOptions& opts, Findings& findings) {
  BytePass out;
  out.counts.resize(ck.tensors.size());
  std::vector<Item> items = plan(src, ck, opts);
  if (items.empty()) return out;
  const uint64_t chunk = std::max<uint64_t>(64, (static_cast<uint64_t>(opts.chunk_bytes) + 63) / 64 * 64);
  uint64_t bytes = 0;
  for (const auto& it : items) bytes += it.end - it.begin;
  const unsigned groups = bytes >= opts.parallel_min_bytes ? std::max(1u, std::min(opts.threads, 16u)) : 1u;
  const std::vector<size_t> bounds = cuts(items, groups);
  std::vector<Partial> parts(bounds.size() - 1);
  if (parts.size() == 1) {
    sweep(src, ck, items, 0, items.size(), chunk, out, parts[0]);
  } else {
    std::vector<std::thread> pool;
    for (size_t g = 1; g < parts.size(); ++g)
      pool.emplace_back([&, g] { sweep(src, ck, items, bounds[g], bounds[g + 1], chunk, out, parts[g]); });
    sweep(src, ck, items, bounds[0], bounds[1], chunk, out, parts[0]);
    for (auto& t : pool) t.join();
  }
  for (auto& p : parts) {
    out.bytes_read += p.bytes_read;
    out.records_verified += p.records_verified;
    out.read_failed |= p.read_failed;
    for (auto& f : p.findings.items()) findings.push(std::move(f));
  }
  if (out.read_failed)
    for (auto& c : out.counts) c.reset();
  return out;
}

}  // namespace mgcheck::format
