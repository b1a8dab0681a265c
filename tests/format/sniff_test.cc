// Container detection from the first bytes, against files written by torch 1.13, Python's tarfile and
// pickle, and the look-alikes users actually feed checkpoint loaders (LFS pointers, HTML pages).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <utility>

#include "mgcheck/format/container.h"
#include "test_support.h"

namespace mf = mgcheck::format;
namespace mt = mgcheck::test;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

mf::Finding refuse(const std::vector<uint8_t>& head) {
  return mf::unsupported_container_finding(mf::sniff_container(head), head, "x.bin");
}

}  // namespace

TEST(Sniff, TorchWrittenFiles) {
  ASSERT_TRUE(mt::python_torch_available());
  mt::TempDir dir("sniff");
  auto r = mt::run_python(
      "import sys, torch, tarfile, pickle, io\n"
      "d = sys.argv[1]\n"
      "t = {'w': torch.ones(3)}\n"
      "torch.save(t, d + '/zip.pt')\n"
      "torch.save(t, d + '/legacy.pt', _use_new_zipfile_serialization=False)\n"
      "open(d + '/pickle.pkl', 'wb').write(pickle.dumps({'a': 1}, protocol=2))\n"
      "with tarfile.open(d + '/old.tar', 'w', format=tarfile.USTAR_FORMAT) as tf:\n"
      "    info = tarfile.TarInfo('sys_info'); data = pickle.dumps({}); info.size = len(data)\n"
      "    tf.addfile(info, io.BytesIO(data))\n"
      "with tarfile.open(d + '/gnu.tar', 'w', format=tarfile.GNU_FORMAT) as tf:\n"
      "    info = tarfile.TarInfo('pickle'); info.size = 0; tf.addfile(info, io.BytesIO(b''))\n",
      {dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mf::sniff_container(mt::read_file(dir.file("zip.pt"))), mf::ContainerKind::zip);
  EXPECT_EQ(mf::sniff_container(mt::read_file(dir.file("legacy.pt"))), mf::ContainerKind::legacy);
  EXPECT_EQ(mf::sniff_container(mt::read_file(dir.file("old.tar"))), mf::ContainerKind::tar);
  EXPECT_EQ(mf::sniff_container(mt::read_file(dir.file("gnu.tar"))), mf::ContainerKind::tar);
  auto pkl = mt::read_file(dir.file("pickle.pkl"));
  EXPECT_EQ(mf::sniff_container(pkl), mf::ContainerKind::unknown);
  mf::Finding f = refuse(pkl);
  EXPECT_EQ(f.code, "MG-IO-UNKNOWN-FORMAT");
  EXPECT_NE(f.message.find("pickle"), std::string::npos);
  f = refuse(mt::read_file(dir.file("old.tar")));
  EXPECT_EQ(f.code, "MG-IO-TAR");
  EXPECT_EQ(f.impact, mf::Impact::normal);
  EXPECT_EQ(f.file, "x.bin");
  EXPECT_EQ(f.offset, 0u);
}

TEST(Sniff, EveryCorpusFileIsAZip) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& d : fs::recursive_directory_iterator(mt::corpus_dir() + "/audiocraft-tiny")) {
    auto ext = d.path().extension().string();
    if (ext != ".bin" && ext != ".pt" && ext != ".th") continue;
    EXPECT_EQ(mf::sniff_container(mt::read_file(d.path().string())), mf::ContainerKind::zip) << d.path();
    ++n;
  }
  EXPECT_GE(n, 13);
}

TEST(Sniff, PreviewFormatIsRefused) {
  auto b = bytes_of("PYTORCH1 whatever follows");
  EXPECT_EQ(mf::sniff_container(b), mf::ContainerKind::preview_pytorch1);
  EXPECT_EQ(refuse(b).code, "MG-IO-PYTORCH1");
}

TEST(Sniff, LfsPointerAndHtmlGetSpecificFindings) {
  auto lfs = bytes_of(
      "version https://git-lfs.github.com/spec/v1\n"
      "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n");
  EXPECT_EQ(mf::sniff_container(lfs), mf::ContainerKind::unknown);
  mf::Finding f = refuse(lfs);
  EXPECT_EQ(f.code, "MG-IO-LFS-POINTER");
  EXPECT_EQ(f.severity, mf::Severity::error);
  EXPECT_FALSE(f.hint.empty());
  for (std::string html : {"<!DOCTYPE html><html>", "<html><body>404</body></html>", "\xEF\xBB\xBF  \n<html>"}) {
    auto b = bytes_of(html);
    EXPECT_EQ(mf::sniff_container(b), mf::ContainerKind::unknown);
    EXPECT_EQ(refuse(b).code, "MG-IO-HTML") << html;
  }
}

TEST(Sniff, EmptyShortAndNearMisses) {
  EXPECT_EQ(mf::sniff_container({}), mf::ContainerKind::unknown);
  EXPECT_EQ(refuse({}).code, "MG-IO-EMPTY");
  for (std::string s : {std::string("P"), std::string("PK\x03", 3), std::string("PK\x05\x06", 4),
                        std::string("\x80\x02\x8A\x0A\x6C\xFC\x9C\x46\xF9\x20\x6A\xA8\x50\x19", 14),
                        std::string("\x80\x02\x8A\x0A\x6C\xFC\x9C\x46\xF9\x20\x6A\xA8\x50\x18\x2E", 15),
                        std::string("PYTORCH")}) {
    auto b = bytes_of(s);
    EXPECT_EQ(mf::sniff_container(b), mf::ContainerKind::unknown) << s.size();
    EXPECT_EQ(refuse(b).code, "MG-IO-UNKNOWN-FORMAT");
  }
  // Exactly the legacy magic pickle and nothing else still sniffs as legacy (read_legacy then fails).
  EXPECT_EQ(mf::sniff_container(bytes_of(std::string("\x80\x02\x8A\x0A\x6C\xFC\x9C\x46\xF9\x20\x6A\xA8\x50\x19\x2E", 15))),
            mf::ContainerKind::legacy);
  // A zip with bytes in front is not a zip to torch, nor to us.
  auto z = bytes_of(std::string("junkPK\x03\x04", 8));
  EXPECT_EQ(mf::sniff_container(z), mf::ContainerKind::unknown);
}

TEST(Sniff, TorchScriptFindingIsUnsafe) {
  mf::Finding f = mf::unsupported_container_finding(mf::ContainerKind::torchscript, {}, "m.pt");
  EXPECT_EQ(f.code, "MG-ZIP-TORCHSCRIPT");
  EXPECT_EQ(f.impact, mf::Impact::unsafe);
  EXPECT_EQ(f.file, "m.pt");
}

TEST(Sniff, KindNames) {
  EXPECT_STREQ(mf::container_kind_name(mf::ContainerKind::zip), "zip");
  EXPECT_STREQ(mf::container_kind_name(mf::ContainerKind::legacy), "legacy");
  EXPECT_STREQ(mf::container_kind_name(mf::ContainerKind::torchscript), "torchscript");
  EXPECT_STREQ(mf::container_kind_name(mf::ContainerKind::tar), "tar");
  EXPECT_STREQ(mf::container_kind_name(mf::ContainerKind::unknown), "unknown");
}

// The legacy magic number as CPython's pickler writes it at every protocol torch.save accepts (FRAME from
// protocol 4 on), the same pickle at protocols 3..5 without FRAME (pickle.loads accepts it), and FRAME
// lengths that do not cover exactly the magic number's opcodes.
TEST(Sniff, LegacyMagicAtEveryProtocol) {
  auto r = mt::run_python(
      "import pickle\n"
      "M = 0x1950a86a20f9469cfc6c\n"
      "for p in (2, 3, 4, 5):\n"
      "    b = pickle.dumps(M, protocol=p)\n"
      "    assert pickle.loads(b) == M\n"
      "    u = b[:2] + b[11:] if b[2] == 0x95 else b\n"
      "    assert pickle.loads(u) == M\n"
      "    print(p, b.hex(), u.hex())\n");
  MGCHECK_REQUIRE_PYTHON_OR_SKIP(r.exit_code == 0, "python3 not available");
  auto unhex = [](const std::string& h) {
    std::vector<uint8_t> b;
    for (size_t i = 0; i + 1 < h.size(); i += 2) b.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return b;
  };
  std::istringstream lines(r.out);
  int protocols = 0;
  for (int p; lines >> p;) {
    std::string framed_hex, unframed_hex;
    ASSERT_TRUE(lines >> framed_hex >> unframed_hex);
    SCOPED_TRACE(p);
    ++protocols;
    const auto framed = unhex(framed_hex), unframed = unhex(unframed_hex);
    ASSERT_GE(framed.size(), 15u);
    EXPECT_EQ(framed[1], p);
    EXPECT_EQ(framed[2] == 0x95, p >= 4);  // CPython frames from protocol 4 on
    EXPECT_EQ(mf::sniff_container(framed), mf::ContainerKind::legacy);
    EXPECT_EQ(mf::sniff_container(unframed), mf::ContainerKind::legacy);
    // Followed by the rest of a file (the protocol version pickle) it still sniffs the same.
    auto longer = framed;
    longer.insert(longer.end(), {0x80, static_cast<uint8_t>(p), 0x4D, 0xE9, 0x03, 0x2E});
    EXPECT_EQ(mf::sniff_container(longer), mf::ContainerKind::legacy);
    if (p < 4) continue;
    // A FRAME length other than 13 (the LONG1 and STOP it must hold), in the low or a high byte.
    for (auto [at, value] : {std::pair<size_t, uint8_t>{3, 12}, {3, 14}, {3, 0}, {10, 1}}) {
      auto b = framed;
      b[at] = value;
      EXPECT_EQ(mf::sniff_container(b), mf::ContainerKind::unknown) << at << " " << int(value);
      EXPECT_EQ(refuse(b).code, "MG-IO-UNKNOWN-FORMAT");
    }
    // A FRAME whose body is cut short.
    EXPECT_EQ(mf::sniff_container(std::vector<uint8_t>(framed.begin(), framed.end() - 1)), mf::ContainerKind::unknown);
  }
  EXPECT_EQ(protocols, 4);
}
