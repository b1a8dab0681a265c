// Where the structures of a (valid) zip archive lie, for byte-patching corruptions: local headers,
// central-directory entries, ZIP64 end record, locator and classic end record. Little-endian field
// accessors patch them in place. Field offsets follow APPNOTE 4.3.7 / 4.3.12 / 4.3.14–4.3.16.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mgcheck::corpus {

inline uint64_t get_le(const std::vector<uint8_t>& b, uint64_t off, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{b.at(off + i)} << (8 * i);
  return v;
}
inline void put_le(std::vector<uint8_t>& b, uint64_t off, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.at(off + i) = static_cast<uint8_t>(v >> (8 * i));
}

struct ZipEntryAt {
  std::string name;
  uint64_t cd = 0;      // central-directory entry
  uint64_t local = 0;   // local header
  uint64_t data = 0;    // first data byte
  uint64_t size = 0;
};

struct ZipLayout {
  std::vector<ZipEntryAt> entries;
  uint64_t cd_offset = 0, cd_size = 0;
  uint64_t eocd64 = 0, locator = 0, eocd = 0;  // 0 when absent (eocd is never 0 in a valid file)
  bool has_zip64 = false;
};

// Walks the classic end record, the ZIP64 records when present, and the central directory.
// Precondition: `b` is a valid archive (built by the writer); anything else throws std::out_of_range.
inline ZipLayout zip_layout(const std::vector<uint8_t>& b) {
  ZipLayout L;
  for (uint64_t p = b.size() - 22;; --p) {
    if (get_le(b, p, 4) == 0x06054b50) { L.eocd = p; break; }
    if (p == 0) throw std::out_of_range("no EOCD");
  }
  L.cd_size = get_le(b, L.eocd + 12, 4);
  L.cd_offset = get_le(b, L.eocd + 16, 4);
  if (L.eocd >= 20 && get_le(b, L.eocd - 20, 4) == 0x07064b50) {
    L.has_zip64 = true;
    L.locator = L.eocd - 20;
    L.eocd64 = get_le(b, L.locator + 8, 8);
    L.cd_size = get_le(b, L.eocd64 + 40, 8);
    L.cd_offset = get_le(b, L.eocd64 + 48, 8);
  }
  for (uint64_t p = L.cd_offset; p < L.cd_offset + L.cd_size;) {
    ZipEntryAt e;
    e.cd = p;
    uint64_t nlen = get_le(b, p + 28, 2), xlen = get_le(b, p + 30, 2), clen = get_le(b, p + 32, 2);
    e.name.assign(reinterpret_cast<const char*>(b.data() + p + 46), nlen);
    e.local = get_le(b, p + 42, 4);
    e.size = get_le(b, p + 24, 4);
    e.data = e.local + 30 + get_le(b, e.local + 26, 2) + get_le(b, e.local + 28, 2);
    L.entries.push_back(e);
    p += 46 + nlen + xlen + clen;
  }
  return L;
}

}  // namespace mgcheck::corpus
