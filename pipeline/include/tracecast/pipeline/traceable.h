// A mold that can be traced: made only for an open run and a consenting subject, stamped with the
// identifier the workshop's ledger allocates, and recorded there with its input and output files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/mesh.h"
#include "tracecast/print/casting.h"
#include "tracecast/print/mold.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::pipeline {

//! Who a mold is made for and under which keys.
struct Production {
  std::filesystem::path ledger;       //!< the workshop's ledger file
  std::filesystem::path signing_key;  //!< the workshop's signing key
  std::filesystem::path mark_key;     //!< the marking key the identifier is stamped under
  std::uint32_t run = 0;              //!< an open run
  std::string subject;                //!< subject code, with a consent covering the run's use
  std::string likeness;               //!< the subject whose face the piece copies, if not the subject's own (a likeness mask), with a consent too
};

//! The ledger opened for writing and the keys read, after the checks every mold needs: the run is
//! open and the subject's consent covers its use today. Throws InputError naming what is missing;
//! nothing is recorded.
class Workshop {
 public:
  explicit Workshop(const Production& p);
  const Production& production() const { return production_; }
  ledger::Ledger& book() { return book_; }
  const ledger::Ledger& book() const { return book_; }
  const watermark::Key& mark_key() const { return mark_key_; }

 private:
  Production production_;
  ledger::SigningKey signer_;
  ledger::Ledger book_;
  watermark::Key mark_key_;
};

struct TraceableMold {
  print::Mold mold;
  Mesh marked;                          //!< the appliance with the mark, as the cavity carries it
  watermark::StampReport stamp;
  std::uint64_t id = 0;
  std::int64_t entry = 0;               //!< the piece's ledger entry
  nlohmann::json outputs;               //!< file → SHA-256, as recorded
};

//! Checks the inputs (print::stages::inspect_inputs, carried to the stamped appliance), allocates the run's next identifier and records
//! the piece with `inputs` (file → SHA-256) and the mold parameters in one transaction, stamps the
//! identifier into the appliance's outer surface, designs the mold, calls `write` to write its
//! files (it returns their paths), and records their SHA-256. If anything fails after the
//! allocation, the piece is recorded as rejected with the error, and the error is rethrown.
//! `stage` is called with "stamping", "designing", "writing" as the work goes. `face_analysis`:
//! the face's analysis when the caller has it (design_mold()).
TraceableMold make_traceable_mold(Workshop& shop, const Mesh& appliance, const Mesh& face, const print::MoldOptions& options,
                                  const nlohmann::json& inputs,
                                  const std::function<std::vector<std::string>(const print::Mold&)>& write,
                                  const std::function<void(const std::string&)>& stage = {},
                                  const FaceAnalysis* face_analysis = nullptr);

//! The mold parameters as the ledger and the reports record them.
nlohmann::json mold_options_json(const print::MoldOptions& o);
//! The mold report (casting sheet) without its inputs and files: pull, undercuts, options, mold
//! frame, casting, parts, warnings, timings (docs/formats.md#mold-report).
nlohmann::json mold_report_json(const print::Mold& mold, const print::MoldOptions& o, const print::SiliconeMix& mix);
//! The report's `mark` object: identifier, key, stamp figures, ledger entry, run and subject.
nlohmann::json mark_json(const TraceableMold& made, const Workshop& shop);

}  // namespace tracecast::pipeline
