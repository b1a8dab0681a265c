// Identity of an input file for reports: size and SHA-256 (OpenSSL, SHA-NI where the CPU has it).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "mgcheck/format/byte_source.h"

namespace mgcheck::harness {

std::string sha256_hex(std::span<const uint8_t> bytes);

// The digest of a whole source read through ByteSource::copy_out in 4 MiB pieces (pread for a file:
// no page faults of the mapping, 4 MiB of memory whatever the size). nullopt when a read fails.
std::optional<std::string> sha256_hex(const format::ByteSource& src);

}  // namespace mgcheck::harness
