#include "mgcheck/harness/file_info.h"

#include <openssl/evp.h>

#include <memory>

namespace mgcheck::harness {
namespace {

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::span<const uint8_t> bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  return to_hex(digest, len);
}

std::optional<std::string> sha256_hex(const format::ByteSource& src) {
  constexpr size_t kPiece = 4u << 20;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return std::nullopt;
  const uint64_t size = src.size();
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size < kPiece ? (size > 0 ? size : 1) : kPiece]);
  for (uint64_t off = 0; off < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kPiece, size - off));
    if (!src.copy_out(off, std::span<uint8_t>(buf.get(), n))) return std::nullopt;
    if (EVP_DigestUpdate(ctx.get(), buf.get(), n) != 1) return std::nullopt;
    off += n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return std::nullopt;
  return to_hex(digest, len);
}

}  // namespace mgcheck::harness
