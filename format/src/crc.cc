// CRC-32 (zlib polynomial) through libdeflate, whose folded/PCLMUL routine runs at memory speed.
#include <libdeflate.h>

#include "mgcheck/format/container.h"

namespace mgcheck::format {

uint32_t crc32(std::span<const uint8_t> bytes, uint32_t seed) noexcept {
  // libdeflate takes size_t lengths: feed huge spans in bounded pieces so nothing depends on its limits.
  constexpr size_t kChunk = size_t{1} << 30;
  uint32_t crc = seed;
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    size_t n = left < kChunk ? left : kChunk;
    crc = libdeflate_crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return crc;
}

}  // namespace mgcheck::format
