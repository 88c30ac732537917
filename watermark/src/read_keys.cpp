#include "tracecast/mesh/errors.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::watermark {

KeyedReading read_under_keys(const Analysis& analysis, const std::vector<Key>& keys) {
  if (keys.empty()) throw InputError("reading a mark needs at least one key");
  KeyedReading out;
  out.detection = analysis.base;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    Detection d = read(analysis, keys[k]);
    ++out.keys_tried;
    const bool found = d.outcome == Outcome::found;
    if (found || k == 0) {
      out.detection = std::move(d);
      out.key = k;
    }
    if (found) break;
  }
  out.detection.false_positive_bound *= static_cast<double>(keys.size());
  return out;
}

}  // namespace tracecast::watermark
