// Fuzz target: the tensor table. The input is data.pkl of an otherwise valid torch.save zip: storage
// records data/0 .. data/3 (64 bytes each) exist, so persistent ids, rebuild arguments, views, storage
// sizes, dtypes and the named-tensor walk are reached without the fuzzer having to build a zip.
// The archive is assembled with the writer's own zip layer (extra_records + omit_records).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mgcheck::format;
  if (size > (1u << 20)) return 0;
  WriteOptions wo;
  wo.omit_records = {"data.pkl"};
  wo.extra_records.emplace_back("data.pkl", std::vector<uint8_t>(data, data + size));
  for (int i = 0; i < 4; ++i) {
    std::vector<uint8_t> storage(64);
    for (size_t b = 0; b < storage.size(); ++b) storage[b] = static_cast<uint8_t>(b * 7 + i);
    wo.extra_records.emplace_back("data/" + std::to_string(i), std::move(storage));
  }
  auto file = write_torch_save(WValue(WDict{}), wo);
  if (!file) return 0;
  MemorySource src(std::move(file).value(), "fuzz.pt");
  Limits limits;
  limits.max_pickle_opcodes = 1000000;
  Findings findings;
  auto ck = read_checkpoint(src, limits, ReadOptions{}, findings);
  if (ck) {
    for (const auto& t : ck->tensors)
      if (t.valid && t.numel > 0) {
        (void)element_as_double(t, 0);
        (void)element_as_int(t, t.numel - 1);
      }
  }
  return 0;
}
