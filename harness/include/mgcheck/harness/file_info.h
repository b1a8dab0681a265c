// Identity of an input file for reports: size and SHA-256 (OpenSSL, SHA-NI where the CPU has it).
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace mgcheck::harness {

std::string sha256_hex(std::span<const uint8_t> bytes);

}  // namespace mgcheck::harness
